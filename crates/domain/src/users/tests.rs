//! Unit tests of the account use cases against mockall mocks of the user and ticket
//! repositories and of the password hasher. Refusals are checked to happen before the
//! port calls they must prevent (`.times(0)`).

use std::sync::Arc;

use time::macros::datetime;
use time::OffsetDateTime;

use super::*;
use crate::page::PageLimit;
use crate::ports::{Credentials, MockPasswordHasher, MockTicketRepository, MockUserRepository};
use crate::ticket::TicketVersion;
use crate::{Priority, TicketId, TicketStatus};

const CUSTOMER: i64 = 1;
const OTHER_CUSTOMER: i64 = 2;
const STAFF: i64 = 3;
const OTHER_STAFF: i64 = 4;
const SUPERUSER: i64 = 5;
const OTHER_SUPERUSER: i64 = 6;
const MISSING: i64 = 99;

const STORED_HASH: &str = "$2b$12$stored";
const NEW_HASH: &str = "$2b$12$new";

fn id(n: i64) -> UserId {
    UserId::new(n).unwrap()
}

fn caller(n: i64, role: Role) -> Caller {
    Caller { id: id(n), role }
}

fn user(n: i64, role: Role) -> User {
    User {
        id: id(n),
        created_at: OffsetDateTime::UNIX_EPOCH,
        username: format!("user{n}"),
        email: format!("user{n}@post.io"),
        role,
        is_active: true,
        tickets_count: n,
    }
}

/// An account of every role.
const ACCOUNTS: [(i64, Role); 3] = [
    (CUSTOMER, Role::Customer),
    (STAFF, Role::Staff),
    (SUPERUSER, Role::Superuser),
];

/// Every account of these tests, two of each role.
const EVERYONE: [(i64, Role); 6] = [
    (CUSTOMER, Role::Customer),
    (OTHER_CUSTOMER, Role::Customer),
    (STAFF, Role::Staff),
    (OTHER_STAFF, Role::Staff),
    (SUPERUSER, Role::Superuser),
    (OTHER_SUPERUSER, Role::Superuser),
];

fn everyone_but(me: Caller) -> impl Iterator<Item = User> {
    EVERYONE
        .into_iter()
        .filter(move |&(n, _)| n != me.id.get())
        .map(|(n, role)| user(n, role))
}

/// A caller acting on their own account.
fn myself((n, role): (i64, Role)) -> (Caller, User) {
    (caller(n, role), user(n, role))
}

/// The user as `update_user` returns it, so a test can tell it from the stored one.
fn updated(n: i64, role: Role) -> User {
    User {
        username: "renamed".to_owned(),
        ..user(n, role)
    }
}

fn name(raw: &str) -> Username {
    Username::parse(raw).unwrap()
}

fn password(raw: &str) -> Password {
    Password::parse(raw).unwrap()
}

fn registration(is_staff: bool) -> Registration {
    Registration {
        email: Email::parse("new.user@post.io").unwrap(),
        password: password("correct horse"),
        username: name("newbie"),
        is_staff,
    }
}

fn repository_failure() -> RepositoryError {
    RepositoryError::msg("connection refused")
}

/// The three ports of [`UserService`]. A mock without expectations panics on any
/// call, so a test sets up only the calls it allows.
#[derive(Default)]
struct Ports {
    users: MockUserRepository,
    tickets: MockTicketRepository,
    hasher: MockPasswordHasher,
}

impl Ports {
    fn service(self) -> UserService {
        UserService::new(
            Arc::new(self.users),
            Arc::new(self.tickets),
            Arc::new(self.hasher),
        )
    }

    fn expect_find_user(&mut self, n: i64, answer: Option<User>) {
        self.users
            .expect_find_user()
            .withf(move |got| *got == id(n))
            .times(1)
            .return_once(move |_| Ok(answer));
    }

    /// Expects `password` to be hashed once, into `NEW_HASH`.
    fn expect_hash_of(&mut self, password: &'static str) {
        self.hasher
            .expect_hash()
            .withf(move |p| p.expose() == password)
            .times(1)
            .returning(|_| Ok(NEW_HASH.to_owned()));
    }

    fn forbid_writes(&mut self) {
        self.users.expect_update_user().times(0);
        self.users.expect_find_password_hash().times(0);
        self.hasher.expect_hash().times(0);
        self.hasher.expect_verify().times(0);
    }
}

// ---- register ----------------------------------------------------------------------

/// The outcome of a registration, comparable with `assert_eq!`.
fn register_outcome(result: Result<User, RegisterError>) -> Result<User, &'static str> {
    result.map_err(|e| match e {
        RegisterError::StaffAuthorizationRequired => "staff authorization required",
        RegisterError::EmailTaken => "email taken",
        RegisterError::Unexpected(_) => "unexpected",
    })
}

/// Expects the password to be hashed and the user to be created with `role`.
fn expect_registration(ports: &mut Ports, role: Role) {
    ports.expect_hash_of("correct horse");
    ports
        .users
        .expect_create_user()
        .withf(move |new| {
            new.role == role
                && new.password_hash == NEW_HASH
                && new.email.as_str() == "new.user@post.io"
                && new.username.as_str() == "newbie"
        })
        .times(1)
        .returning(|new| Ok(user(7, new.role)));
}

#[tokio::test]
async fn only_the_staff_key_or_a_superuser_registers_staff() {
    use RegistrationAuthority::{Anonymous, StaffKey, User as LoggedIn};
    let customer = LoggedIn(caller(CUSTOMER, Role::Customer));
    let staff = LoggedIn(caller(STAFF, Role::Staff));
    let root = LoggedIn(caller(SUPERUSER, Role::Superuser));
    let refused = Err("staff authorization required");
    // (isStaff, authority, the role created or the error)
    let cases = [
        (true, Anonymous, refused),
        (true, customer, refused),
        (true, staff, refused),
        (true, StaffKey, Ok(Role::Staff)),
        (true, root, Ok(Role::Staff)),
        (false, Anonymous, Ok(Role::Customer)),
        (false, customer, Ok(Role::Customer)),
        (false, StaffKey, Ok(Role::Customer)),
        (false, root, Ok(Role::Customer)),
    ];
    for (is_staff, authority, expected) in cases {
        let mut ports = Ports::default();
        match expected {
            Ok(role) => expect_registration(&mut ports, role),
            // Refused before the (slow) hashing and before the repository.
            Err(_) => {
                ports.hasher.expect_hash().times(0);
                ports.users.expect_create_user().times(0);
            }
        }

        let outcome = ports
            .service()
            .register(registration(is_staff), authority)
            .await;

        let expected = expected.map(|role| user(7, role));
        assert_eq!(
            register_outcome(outcome),
            expected,
            "isStaff {is_staff}, {authority:?}"
        );
    }
}

#[tokio::test]
async fn register_maps_a_taken_email_and_failures() {
    let mut hashes = vec![
        Err(repository_failure()),
        Ok(NEW_HASH.to_owned()),
        Ok(NEW_HASH.to_owned()),
    ];
    let mut creations = vec![
        Err(CreateUserError::Repository(repository_failure())),
        Err(CreateUserError::EmailTaken),
    ];
    let mut ports = Ports::default();
    ports
        .hasher
        .expect_hash()
        .times(3)
        .returning(move |_| hashes.pop().unwrap());
    // The third registration, whose hashing fails, must not reach the repository.
    ports
        .users
        .expect_create_user()
        .times(2)
        .returning(move |_| creations.pop().unwrap());
    let service = ports.service();
    let register = || service.register(registration(false), RegistrationAuthority::Anonymous);

    let taken = register().await;
    let failed = register().await;
    let hashing_failed = register().await;

    assert_eq!(register_outcome(taken), Err("email taken"));
    assert_eq!(register_outcome(failed), Err("unexpected"));
    assert_eq!(register_outcome(hashing_failed), Err("unexpected"));
}

// ---- login -------------------------------------------------------------------------

fn credentials(is_active: bool) -> Credentials {
    Credentials {
        user_id: id(CUSTOMER),
        password_hash: STORED_HASH.to_owned(),
        is_active,
        role: Role::Customer,
    }
}

async fn log_in(ports: Ports) -> Result<UserId, &'static str> {
    let outcome = ports
        .service()
        .login(" user1@post.io ", "correct horse".to_owned())
        .await;
    outcome.map(|caller| caller.id).map_err(|e| match e {
        LoginError::InvalidCredentials => "invalid credentials",
        LoginError::TooManyFailures(_) => "throttled",
        LoginError::Unexpected(_) => "unexpected",
    })
}

#[tokio::test]
async fn login_lets_in_only_the_right_password_of_an_active_account() {
    let refused = Err("invalid credentials");
    let cases = [
        // An unknown e-mail is still checked against the dummy hash (`None`), so it
        // takes as long; even a hasher that accepted the dummy lets nobody in.
        ("unknown e-mail", None, false, refused),
        ("unknown e-mail, dummy accepted", None, true, refused),
        ("wrong password", Some(credentials(true)), false, refused),
        (
            "deactivated, right password",
            Some(credentials(false)),
            true,
            refused,
        ),
        (
            "deactivated, wrong password",
            Some(credentials(false)),
            false,
            refused,
        ),
        (
            "right password",
            Some(credentials(true)),
            true,
            Ok(id(CUSTOMER)),
        ),
    ];
    for (case, account, password_matches, expected) in cases {
        let checked_hash = account.is_some().then_some(STORED_HASH);
        let mut ports = Ports::default();
        ports
            .users
            .expect_find_credentials()
            .withf(|email| email == "user1@post.io")
            .times(1)
            .return_once(move |_| Ok(account));
        ports
            .hasher
            .expect_verify()
            .withf(move |given, hash| given == "correct horse" && hash.as_deref() == checked_hash)
            .times(1)
            .returning(move |_, _| Ok(password_matches));

        assert_eq!(log_in(ports).await, expected, "{case}");
    }
}

#[tokio::test]
async fn login_reports_failures_as_unexpected() {
    let mut ports = Ports::default();
    ports
        .users
        .expect_find_credentials()
        .times(1)
        .returning(|_| Err(repository_failure()));
    ports.hasher.expect_verify().times(0);
    assert_eq!(log_in(ports).await, Err("unexpected"));

    let mut ports = Ports::default();
    ports
        .users
        .expect_find_credentials()
        .times(1)
        .returning(|_| Ok(Some(credentials(true))));
    ports
        .hasher
        .expect_verify()
        .times(1)
        .returning(|_, _| Err(repository_failure()));
    assert_eq!(log_in(ports).await, Err("unexpected"));
}

// ---- authenticate, create_superuser -------------------------------------------------

#[tokio::test]
async fn authenticate_reads_the_caller_afresh() {
    let mut ports = Ports::default();
    ports
        .users
        .expect_find_active_caller()
        .withf(|got| *got == id(STAFF))
        .times(1)
        .returning(|n| Ok(Some(caller(n.get(), Role::Staff))));

    let found = ports.service().authenticate(id(STAFF)).await.unwrap();

    assert_eq!(found, Some(caller(STAFF, Role::Staff)));
}

#[tokio::test]
async fn create_superuser_stores_the_hash_with_the_superuser_role() {
    let mut ports = Ports::default();
    ports.expect_hash_of("correct horse");
    ports
        .users
        .expect_upsert_superuser()
        .withf(|new| {
            new.role == Role::Superuser
                && new.password_hash == NEW_HASH
                && new.email.as_str() == "root@post.io"
                && new.username.as_str() == "root"
        })
        .times(1)
        .returning(|_| Ok(user(SUPERUSER, Role::Superuser)));

    let created = ports
        .service()
        .create_superuser(
            Email::parse("root@post.io").unwrap(),
            name("root"),
            password("correct horse"),
        )
        .await;

    assert_eq!(created.unwrap(), user(SUPERUSER, Role::Superuser));
}

// ---- get_user, list_users ----------------------------------------------------------

fn created_page() -> PageRequest<CreatedKey> {
    PageRequest::first(PageLimit::parse("5").unwrap())
}

fn tickets_of(author: UserId) -> Page<Ticket, CreatedKey> {
    Page {
        items: vec![Ticket {
            id: TicketId::new(10).unwrap(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: datetime!(2026-11-28 11:14:10 UTC),
            author_id: author,
            author_email: format!("user{author}@post.io"),
            topic: "new discount".to_owned(),
            status: TicketStatus::Pending,
            priority: Priority::Normal,
            assignee: None,
            version: TicketVersion::FIRST,
        }],
        next: None,
    }
}

/// The outcome of a read, comparable with `assert_eq!`.
fn read_outcome<T>(result: Result<T, ReadUserError>) -> Result<T, &'static str> {
    result.map_err(|e| match e {
        ReadUserError::Forbidden => "forbidden",
        ReadUserError::NotFound => "not found",
        ReadUserError::Unexpected(_) => "unexpected",
    })
}

#[tokio::test]
async fn customers_may_not_read_others_and_missing_users_are_not_found() {
    let customer = caller(CUSTOMER, Role::Customer);
    // (reader, the user read, whether that user is looked up, the error)
    let cases = [
        (customer, OTHER_CUSTOMER, false, "forbidden"),
        (customer, STAFF, false, "forbidden"),
        (customer, SUPERUSER, false, "forbidden"),
        (caller(STAFF, Role::Staff), MISSING, true, "not found"),
        (
            caller(SUPERUSER, Role::Superuser),
            MISSING,
            true,
            "not found",
        ),
    ];
    for (who, n, looked_up, expected) in cases {
        let mut ports = Ports::default();
        if looked_up {
            ports.expect_find_user(n, None);
        } else {
            ports.users.expect_find_user().times(0);
        }
        ports.tickets.expect_list_by_author().times(0);

        let outcome = ports.service().get_user(who, id(n), created_page()).await;

        assert_eq!(read_outcome(outcome), Err(expected), "{who:?} reads {n}");
    }
}

#[tokio::test]
async fn users_read_themselves_and_staff_read_anyone_with_their_tickets() {
    let staff = caller(STAFF, Role::Staff);
    let cases = [
        myself(ACCOUNTS[0]),
        myself(ACCOUNTS[1]),
        (staff, user(OTHER_CUSTOMER, Role::Customer)),
        (staff, user(SUPERUSER, Role::Superuser)),
        (
            caller(SUPERUSER, Role::Superuser),
            user(OTHER_STAFF, Role::Staff),
        ),
    ];
    for (who, target) in cases {
        let target_id = target.id;
        let mut ports = Ports::default();
        ports.expect_find_user(target_id.get(), Some(target.clone()));
        ports
            .tickets
            .expect_list_by_author()
            .withf(move |author, page| *author == target_id && *page == created_page())
            .times(1)
            .returning(|author, _| Ok(tickets_of(author)));

        let found = ports
            .service()
            .get_user(who, target_id, created_page())
            .await
            .unwrap();

        assert_eq!(
            found,
            UserWithTickets {
                user: target,
                tickets: tickets_of(target_id),
            },
            "{who:?}"
        );
    }
}

#[tokio::test]
async fn get_user_reports_failures_as_unexpected() {
    let mut ports = Ports::default();
    ports
        .users
        .expect_find_user()
        .times(1)
        .returning(|_| Err(repository_failure()));
    let outcome = ports
        .service()
        .get_user(caller(STAFF, Role::Staff), id(CUSTOMER), created_page())
        .await;
    assert_eq!(read_outcome(outcome), Err("unexpected"));
}

fn users_page() -> Page<User, UsersKey> {
    Page {
        items: vec![user(STAFF, Role::Staff), user(CUSTOMER, Role::Customer)],
        next: Some(UsersKey {
            tickets_count: 1,
            id: CUSTOMER,
        }),
    }
}

#[tokio::test]
async fn a_customer_may_not_list_users() {
    let mut ports = Ports::default();
    ports.users.expect_list_users().times(0);

    let outcome = ports
        .service()
        .list_users(
            caller(CUSTOMER, Role::Customer),
            PageRequest::first(PageLimit::DEFAULT),
        )
        .await;

    assert_eq!(read_outcome(outcome), Err("forbidden"));
}

#[tokio::test]
async fn staff_list_users() {
    let page = PageRequest {
        limit: PageLimit::parse("2").unwrap(),
        after: Some(UsersKey {
            tickets_count: 3,
            id: STAFF,
        }),
    };
    for who in [
        caller(STAFF, Role::Staff),
        caller(SUPERUSER, Role::Superuser),
    ] {
        let mut ports = Ports::default();
        ports
            .users
            .expect_list_users()
            .withf(move |got| *got == page)
            .times(1)
            .returning(|_| Ok(users_page()));

        let listed = ports.service().list_users(who, page).await.unwrap();

        assert_eq!(listed, users_page(), "{who:?}");
    }
}

// ---- update_user: who may change what ----------------------------------------------

fn rename() -> UserUpdate {
    UserUpdate {
        username: Some(name("renamed")),
        ..UserUpdate::default()
    }
}

fn flags(is_staff: Option<bool>, is_active: Option<bool>) -> UserUpdate {
    UserUpdate {
        is_staff,
        is_active,
        ..UserUpdate::default()
    }
}

/// Updates that change the staff or the active flag (the last one the username too).
fn flag_updates() -> [UserUpdate; 5] {
    [
        flags(Some(true), None),
        flags(Some(false), None),
        flags(None, Some(false)),
        flags(None, Some(true)),
        UserUpdate {
            is_staff: Some(true),
            is_active: Some(false),
            ..rename()
        },
    ]
}

fn new_password(current: Option<&str>) -> UserUpdate {
    UserUpdate {
        password: Some(password("new password")),
        current_password: current.map(str::to_owned),
        ..UserUpdate::default()
    }
}

/// The outcome a case of the PATCH matrix must have.
#[derive(Debug)]
enum Expect {
    /// Applied, with exactly the changes asked for.
    Applied,
    /// Refused after reading the target user.
    Forbidden,
    /// Refused before any port call.
    ForbiddenUnread,
}

/// The outcome of a PATCH, comparable with `assert_eq!`.
fn update_outcome(result: Result<User, UpdateUserError>) -> Result<User, &'static str> {
    result.map_err(|e| match e {
        UpdateUserError::Forbidden => "forbidden",
        UpdateUserError::NotFound => "not found",
        UpdateUserError::CurrentPasswordRequired => "current password required",
        UpdateUserError::CurrentPasswordIncorrect => "current password incorrect",
        UpdateUserError::Unexpected(_) => "unexpected",
    })
}

/// Runs one PATCH of `target` by `who` and checks the outcome and the port calls.
async fn check_update(who: Caller, target: User, update: UserUpdate, expect: Expect) {
    let case = format!("{who:?} on {target:?} with {update:?}");
    let target_id = target.id;
    let changes = UserChanges {
        username: update.username.clone(),
        password_hash: None,
        is_staff: update.is_staff,
        is_active: update.is_active,
    };
    let mut ports = Ports::default();
    ports.users.expect_find_password_hash().times(0);
    ports.hasher.expect_hash().times(0);
    ports.hasher.expect_verify().times(0);
    match &expect {
        Expect::Applied => {
            ports.expect_find_user(target_id.get(), Some(target.clone()));
            let role = target.role;
            ports
                .users
                .expect_update_user()
                .withf(move |got_id, got| *got_id == target_id && *got == changes)
                .times(1)
                .returning(move |got_id, _| Ok(Some(updated(got_id.get(), role))));
        }
        Expect::Forbidden => {
            ports.expect_find_user(target_id.get(), Some(target.clone()));
            ports.users.expect_update_user().times(0);
        }
        Expect::ForbiddenUnread => {
            ports.users.expect_find_user().times(0);
            ports.users.expect_update_user().times(0);
        }
    }

    let outcome = ports.service().update_user(who, target_id, update).await;

    let expected = match expect {
        Expect::Applied => Ok(updated(target_id.get(), target.role)),
        Expect::Forbidden | Expect::ForbiddenUnread => Err("forbidden"),
    };
    assert_eq!(update_outcome(outcome), expected, "{case}");
}

#[tokio::test]
async fn users_rename_themselves_but_never_change_their_own_flags() {
    for (n, role) in ACCOUNTS {
        let me = caller(n, role);
        check_update(me, user(n, role), rename(), Expect::Applied).await;
        for update in flag_updates() {
            check_update(me, user(n, role), update, Expect::Forbidden).await;
        }
    }
}

#[tokio::test]
async fn staff_rename_customers_only_and_never_change_flags() {
    let staff = caller(STAFF, Role::Staff);
    for target in everyone_but(staff) {
        let may_rename = if target.role == Role::Customer {
            Expect::Applied
        } else {
            Expect::Forbidden
        };
        check_update(staff, target.clone(), rename(), may_rename).await;
        for update in flag_updates() {
            check_update(staff, target.clone(), update, Expect::Forbidden).await;
        }
    }
}

#[tokio::test]
async fn superusers_change_the_flags_and_username_of_anyone_else() {
    let root = caller(SUPERUSER, Role::Superuser);
    for target in everyone_but(root) {
        for update in flag_updates().into_iter().chain([rename()]) {
            check_update(root, target.clone(), update, Expect::Applied).await;
        }
    }
}

#[tokio::test]
async fn nobody_sets_another_users_password() {
    let staff = caller(STAFF, Role::Staff);
    let root = caller(SUPERUSER, Role::Superuser);
    for who in [staff, root] {
        for target in everyone_but(who) {
            for current in [None, Some("old password")] {
                let update = new_password(current);
                check_update(who, target.clone(), update, Expect::Forbidden).await;
            }
        }
    }
    let customer = caller(CUSTOMER, Role::Customer);
    let other = user(OTHER_CUSTOMER, Role::Customer);
    let update = new_password(Some("old password"));
    check_update(customer, other, update, Expect::ForbiddenUnread).await;
}

#[tokio::test]
async fn a_customer_touching_another_user_is_refused_before_any_lookup() {
    let customer = caller(CUSTOMER, Role::Customer);
    for target in everyone_but(customer) {
        let updates = flag_updates()
            .into_iter()
            .chain([rename(), UserUpdate::default()]);
        for update in updates {
            check_update(customer, target.clone(), update, Expect::ForbiddenUnread).await;
        }
    }
}

#[tokio::test]
async fn an_empty_update_returns_the_user_without_writing() {
    let cases = [
        myself(ACCOUNTS[0]),
        (caller(STAFF, Role::Staff), user(OTHER_STAFF, Role::Staff)),
        myself(ACCOUNTS[2]),
    ];
    for (who, target) in cases {
        // `current_password` alone changes nothing either.
        for update in [
            UserUpdate::default(),
            UserUpdate {
                current_password: Some("old password".to_owned()),
                ..UserUpdate::default()
            },
        ] {
            let mut ports = Ports::default();
            ports.expect_find_user(target.id.get(), Some(target.clone()));
            ports.forbid_writes();

            let got = ports.service().update_user(who, target.id, update).await;

            assert_eq!(got.unwrap(), target, "{who:?}");
        }
    }
}

#[tokio::test]
async fn updating_a_missing_user_is_not_found() {
    let mut ports = Ports::default();
    ports.expect_find_user(MISSING, None);
    ports.forbid_writes();
    let outcome = ports
        .service()
        .update_user(caller(STAFF, Role::Staff), id(MISSING), rename())
        .await;
    assert_eq!(update_outcome(outcome), Err("not found"));

    // Deleted between the read and the write.
    let mut ports = Ports::default();
    ports.expect_find_user(CUSTOMER, Some(user(CUSTOMER, Role::Customer)));
    ports
        .users
        .expect_update_user()
        .times(1)
        .returning(|_, _| Ok(None));
    let outcome = ports
        .service()
        .update_user(caller(SUPERUSER, Role::Superuser), id(CUSTOMER), rename())
        .await;
    assert_eq!(update_outcome(outcome), Err("not found"));
}

#[tokio::test]
async fn update_user_reports_failures_as_unexpected() {
    let mut ports = Ports::default();
    ports
        .users
        .expect_find_user()
        .times(1)
        .returning(|_| Err(repository_failure()));
    ports.forbid_writes();
    let outcome = ports
        .service()
        .update_user(caller(CUSTOMER, Role::Customer), id(CUSTOMER), rename())
        .await;
    assert_eq!(update_outcome(outcome), Err("unexpected"));
}

// ---- update_user: one's own password -----------------------------------------------

impl Ports {
    /// Expects the stored hash of `n` to be read once, answering `stored`.
    fn expect_stored_hash(&mut self, n: i64, stored: Option<&'static str>) {
        self.users
            .expect_find_password_hash()
            .withf(move |got| *got == id(n))
            .times(1)
            .returning(move |_| Ok(stored.map(str::to_owned)));
    }

    /// Expects `old password` to be checked once against the stored hash.
    fn expect_current_password_check(&mut self, matches: bool) {
        self.hasher
            .expect_verify()
            .withf(|given, hash| given == "old password" && hash.as_deref() == Some(STORED_HASH))
            .times(1)
            .returning(move |_, _| Ok(matches));
    }
}

#[tokio::test]
async fn a_refused_password_change_changes_nothing() {
    // (case, current_password, the stored hash if it is read, the check's answer
    // if it is made, the error)
    let cases = [
        (
            "current password missing",
            None,
            None,
            None,
            "current password required",
        ),
        (
            "current password wrong",
            Some("old password"),
            Some(Some(STORED_HASH)),
            Some(false),
            "current password incorrect",
        ),
        (
            "no stored hash",
            Some("old password"),
            Some(None),
            None,
            "not found",
        ),
    ];
    for (n, role) in [ACCOUNTS[0], ACCOUNTS[1]] {
        for (case, current, stored, check, expected) in cases {
            let mut ports = Ports::default();
            ports.expect_find_user(n, Some(user(n, role)));
            match stored {
                Some(stored) => ports.expect_stored_hash(n, stored),
                None => {
                    ports.users.expect_find_password_hash().times(0);
                }
            }
            match check {
                Some(matches) => ports.expect_current_password_check(matches),
                None => {
                    ports.hasher.expect_verify().times(0);
                }
            }
            ports.hasher.expect_hash().times(0);
            ports.users.expect_update_user().times(0);

            let outcome = ports
                .service()
                .update_user(caller(n, role), id(n), new_password(current))
                .await;

            assert_eq!(update_outcome(outcome), Err(expected), "{role:?}: {case}");
        }
    }
}

#[tokio::test]
async fn the_right_current_password_stores_the_new_hash() {
    for (n, role) in ACCOUNTS {
        let mut ports = Ports::default();
        ports.expect_find_user(n, Some(user(n, role)));
        ports.expect_stored_hash(n, Some(STORED_HASH));
        ports.expect_current_password_check(true);
        ports.expect_hash_of("new password");
        let expected = UserChanges {
            username: Some(name("renamed")),
            password_hash: Some(NEW_HASH.to_owned()),
            ..UserChanges::default()
        };
        ports
            .users
            .expect_update_user()
            .withf(move |got_id, changes| *got_id == id(n) && *changes == expected)
            .times(1)
            .returning(move |_, _| Ok(Some(updated(n, role))));
        let update = UserUpdate {
            username: Some(name("renamed")),
            ..new_password(Some("old password"))
        };

        let outcome = ports
            .service()
            .update_user(caller(n, role), id(n), update)
            .await;

        assert_eq!(update_outcome(outcome), Ok(updated(n, role)), "{role:?}");
    }
}
