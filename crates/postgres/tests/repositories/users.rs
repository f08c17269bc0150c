//! `PgUserRepository`.

use domain::ports::{CreateUserError, UserChanges, UserRepository};
use domain::values::Username;
use domain::{Role, UserId};

use super::support::{new_user, Fixture};

#[tokio::test]
async fn create_user_stores_the_user_with_its_role() {
    let fx = Fixture::new().await;
    let customer = fx.user("Mixed.Case@Post.io", Role::Customer).await;
    assert_eq!(
        customer.email, "Mixed.Case@Post.io",
        "case is kept as given"
    );
    assert_eq!(customer.username, "someone");
    assert_eq!(customer.role, Role::Customer);
    assert!(customer.is_active);
    assert_eq!(customer.tickets_count, 0);

    let staff = fx.user("staff@post.io", Role::Staff).await;
    let superuser = fx.user("root@post.io", Role::Superuser).await;
    assert_eq!(staff.role, Role::Staff);
    assert_eq!(superuser.role, Role::Superuser);
    assert!(staff.id > customer.id);

    assert_eq!(
        fx.users.find_user(staff.id).await.expect("find"),
        Some(staff)
    );
    let flags: Vec<(bool, bool)> = {
        let client = fx.db.pool().get().await.expect("connection");
        client
            .query("SELECT is_staff, is_superuser FROM users ORDER BY id", &[])
            .await
            .expect("query")
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect()
    };
    assert_eq!(flags, vec![(false, false), (true, false), (true, true)]);
}

#[tokio::test]
async fn an_email_taken_in_another_case_is_refused() {
    let fx = Fixture::new().await;
    fx.user("user@post.io", Role::Customer).await;
    let duplicate = fx
        .users
        .create_user(new_user("USER@Post.IO", Role::Staff))
        .await;
    assert!(
        matches!(duplicate, Err(CreateUserError::EmailTaken)),
        "{duplicate:?}"
    );
    let count: i64 = fx.scalar("SELECT count(*) FROM users", &[]).await;
    assert_eq!(count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_registrations_of_one_email_exactly_one_succeeds() {
    let fx = Fixture::new().await;
    let emails = [
        "race@post.io",
        "RACE@post.io",
        "Race@Post.io",
        "race@POST.IO",
        "rAcE@post.io",
        "racE@pOst.io",
    ];
    let attempts = emails.map(|email| {
        let users = fx.users.clone();
        tokio::spawn(async move { users.create_user(new_user(email, Role::Customer)).await })
    });
    let mut created = 0;
    let mut taken = 0;
    for attempt in futures_util::future::join_all(attempts).await {
        match attempt.expect("task") {
            Ok(_) => created += 1,
            Err(CreateUserError::EmailTaken) => taken += 1,
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!((created, taken), (1, emails.len() - 1));
    let count: i64 = fx
        .scalar(
            "SELECT count(*) FROM users WHERE lower(email) = 'race@post.io'",
            &[],
        )
        .await;
    assert_eq!(count, 1);
}

#[tokio::test]
async fn credentials_are_found_without_regard_to_case() {
    let fx = Fixture::new().await;
    let user = fx.user("Login@Post.io", Role::Customer).await;
    for email in ["Login@Post.io", "login@post.io", "LOGIN@POST.IO"] {
        let credentials = fx
            .users
            .find_credentials(email)
            .await
            .expect("query")
            .expect("found");
        assert_eq!(credentials.user_id, user.id);
        assert_eq!(credentials.password_hash, "hash-of-Login@Post.io");
        assert!(credentials.is_active);
    }
    assert_eq!(
        fx.users
            .find_credentials("other@post.io")
            .await
            .expect("query"),
        None
    );
}

#[tokio::test]
async fn only_active_users_are_callers() {
    let fx = Fixture::new().await;
    let staff = fx.user("staff@post.io", Role::Staff).await;
    let caller = fx
        .users
        .find_active_caller(staff.id)
        .await
        .expect("query")
        .expect("active");
    assert_eq!((caller.id, caller.role), (staff.id, Role::Staff));

    let deactivated = fx
        .users
        .update_user(
            staff.id,
            UserChanges {
                is_active: Some(false),
                ..UserChanges::default()
            },
        )
        .await
        .expect("update")
        .expect("exists");
    assert!(!deactivated.is_active);
    assert_eq!(
        fx.users.find_active_caller(staff.id).await.expect("query"),
        None
    );
    let credentials = fx
        .users
        .find_credentials("staff@post.io")
        .await
        .expect("query")
        .expect("still found");
    assert!(!credentials.is_active);

    let missing = UserId::new(staff.id.get() + 1000).expect("positive");
    assert_eq!(
        fx.users.find_active_caller(missing).await.expect("query"),
        None
    );
    assert_eq!(fx.users.find_user(missing).await.expect("query"), None);
    assert_eq!(
        fx.users.find_password_hash(missing).await.expect("query"),
        None
    );
}

#[tokio::test]
async fn upsert_superuser_creates_then_promotes_and_reactivates() {
    let fx = Fixture::new().await;
    let created = fx
        .users
        .upsert_superuser(new_user("admin@post.io", Role::Superuser))
        .await
        .expect("create");
    assert_eq!(created.role, Role::Superuser);

    let customer = fx.user("Boss@Post.io", Role::Customer).await;
    fx.users
        .update_user(
            customer.id,
            UserChanges {
                is_active: Some(false),
                ..UserChanges::default()
            },
        )
        .await
        .expect("deactivate");
    let mut promotion = new_user("boss@post.io", Role::Superuser);
    promotion.username = Username::parse("the boss").expect("valid");
    promotion.password_hash = "new-hash".to_owned();
    let promoted = fx.users.upsert_superuser(promotion).await.expect("promote");
    assert_eq!(promoted.id, customer.id, "the existing user, not a new one");
    assert_eq!(promoted.role, Role::Superuser);
    assert!(promoted.is_active);
    assert_eq!(promoted.username, "the boss");
    assert_eq!(promoted.email, "Boss@Post.io");
    assert_eq!(
        fx.users
            .find_password_hash(customer.id)
            .await
            .expect("query"),
        Some("new-hash".to_owned())
    );
    let count: i64 = fx.scalar("SELECT count(*) FROM users", &[]).await;
    assert_eq!(count, 2);
}

#[tokio::test]
async fn update_user_changes_only_what_is_given() {
    let fx = Fixture::new().await;
    let root = fx.user("root@post.io", Role::Superuser).await;

    let unchanged = fx
        .users
        .update_user(root.id, UserChanges::default())
        .await
        .expect("update")
        .expect("exists");
    assert_eq!(unchanged, root);

    let renamed = fx
        .users
        .update_user(
            root.id,
            UserChanges {
                username: Some(Username::parse("renamed").expect("valid")),
                password_hash: Some("other-hash".to_owned()),
                ..UserChanges::default()
            },
        )
        .await
        .expect("update")
        .expect("exists");
    assert_eq!(renamed.username, "renamed");
    assert_eq!(renamed.role, Role::Superuser);
    assert_eq!(
        fx.users.find_password_hash(root.id).await.expect("query"),
        Some("other-hash".to_owned())
    );

    // Taking staff rights away takes superuser rights too.
    let demoted = fx
        .users
        .update_user(
            root.id,
            UserChanges {
                is_staff: Some(false),
                ..UserChanges::default()
            },
        )
        .await
        .expect("update")
        .expect("exists");
    assert_eq!(demoted.role, Role::Customer);
    let superuser: bool = fx
        .scalar(
            "SELECT is_superuser FROM users WHERE id = $1",
            &[&root.id.get()],
        )
        .await;
    assert!(!superuser);

    // Granting staff rights does not make a superuser.
    let staff = fx
        .users
        .update_user(
            root.id,
            UserChanges {
                is_staff: Some(true),
                ..UserChanges::default()
            },
        )
        .await
        .expect("update")
        .expect("exists");
    assert_eq!(staff.role, Role::Staff);

    let missing = UserId::new(root.id.get() + 1000).expect("positive");
    assert_eq!(
        fx.users
            .update_user(
                missing,
                UserChanges {
                    is_active: Some(false),
                    ..UserChanges::default()
                },
            )
            .await
            .expect("update"),
        None
    );
}
