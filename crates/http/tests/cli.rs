//! The `tickets` binary's maintenance commands, run as a user would: `migrate` and
//! `create-superuser`, on a database of their own. `serve` is exercised by `just faults`.

// A test that cannot go on should stop with a reason. `allow-expect-in-tests` covers
// only `#[test]` functions, not the helpers they share.
#![allow(clippy::expect_used)]

use std::io::{ErrorKind, Write};
use std::process::{Command, Output, Stdio};

use postgres_adapter::testing::TestDatabase;

/// Runs `tickets <args>` on `database_url` with `stdin`, in a new directory whose
/// `.env` is empty and which has no `config/`, so that only the compiled-in defaults and
/// these variables apply (dotenvy would otherwise look for a `.env` in every parent).
async fn tickets(database_url: &str, args: &[&str], stdin: &str) -> Output {
    let directory =
        std::env::temp_dir().join(format!("tickets-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir(&directory).expect("a working directory");
    std::fs::write(directory.join(".env"), "").expect("an empty .env");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tickets"));
    command
        .args(args)
        .current_dir(&directory)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("TICKETS") {
            command.env_remove(key);
        }
    }
    command
        .env("DATABASE_URL", database_url)
        .env("TICKETS__AUTH__BCRYPT_COST", "4")
        .env("TICKETS__DATABASE__STARTUP_TIMEOUT_SECS", "10")
        .env("RUST_LOG", "warn");
    let stdin = stdin.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().expect("the tickets binary starts");
        let written = child
            .stdin
            .take()
            .expect("a piped stdin")
            .write_all(stdin.as_bytes());
        // A command that refuses its arguments exits without reading stdin.
        if let Err(e) = written {
            assert_eq!(e.kind(), ErrorKind::BrokenPipe, "stdin: {e}");
        }
        child.wait_with_output().expect("the tickets binary ends")
    })
    .await
    .expect("the command's thread does not panic");
    std::fs::remove_dir_all(&directory).expect("the working directory is removed");
    output
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn count(db: &TestDatabase, sql: &str) -> i64 {
    let client = db.pool().get().await.expect("a connection");
    client
        .query_one(sql, &[])
        .await
        .expect("the count query runs")
        .get(0)
}

/// `(username, is_staff, is_superuser, is_active, password_hash)` of the user with that
/// e-mail.
async fn user(db: &TestDatabase, email: &str) -> (String, bool, bool, bool, String) {
    let client = db.pool().get().await.expect("a connection");
    let row = client
        .query_one(
            "SELECT username, is_staff, is_superuser, is_active, password_hash \
             FROM users WHERE lower(email) = lower($1)",
            &[&email],
        )
        .await
        .expect("the user exists");
    (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4))
}

#[tokio::test]
async fn migrate_creates_the_schema_and_a_second_run_changes_nothing() {
    let db = TestDatabase::create_empty().await;

    let first = tickets(db.url(), &["migrate"], "").await;
    assert!(first.status.success(), "migrate: {}", stderr(&first));
    let applied = count(&db, "SELECT count(*) FROM refinery_schema_history").await;
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations"))
        .expect("the migrations directory")
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count();
    assert_eq!(applied, i64::try_from(migrations).expect("a small count"));
    assert_eq!(
        count(&db, "SELECT count(*) FROM users").await,
        0,
        "the schema is there, and empty"
    );

    let second = tickets(db.url(), &["migrate"], "").await;
    assert!(
        second.status.success(),
        "second migrate: {}",
        stderr(&second)
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM refinery_schema_history").await,
        applied
    );
}

#[tokio::test]
async fn create_superuser_creates_one_then_promotes_an_existing_account() {
    let db = TestDatabase::create().await;
    let args = [
        "create-superuser",
        "--email",
        "Root@Example.com",
        "--username",
        "root",
    ];

    let created = tickets(db.url(), &args, "first password 1\n").await;

    assert!(created.status.success(), "create: {}", stderr(&created));
    assert!(String::from_utf8_lossy(&created.stdout).contains("is ready"));
    let (username, is_staff, is_superuser, is_active, hash) = user(&db, "root@example.com").await;
    assert_eq!(username, "root");
    assert!(is_staff && is_superuser && is_active);
    assert!(bcrypt::verify("first password 1", &hash).expect("a bcrypt hash"));

    // A deactivated customer with that e-mail, in another case, is promoted in place.
    db.pool()
        .get()
        .await
        .expect("a connection")
        .batch_execute("UPDATE users SET is_staff = false, is_superuser = false, is_active = false")
        .await
        .expect("the account is demoted");
    let promoted = tickets(
        db.url(),
        &[
            "create-superuser",
            "--email",
            "ROOT@example.com",
            "--username",
            "admin",
        ],
        "second password 2",
    )
    .await;

    assert!(promoted.status.success(), "promote: {}", stderr(&promoted));
    assert_eq!(count(&db, "SELECT count(*) FROM users").await, 1);
    let (username, is_staff, is_superuser, is_active, hash) = user(&db, "root@example.com").await;
    assert_eq!(username, "admin");
    assert!(is_staff && is_superuser && is_active);
    assert!(bcrypt::verify("second password 2", &hash).expect("a bcrypt hash"));
}

#[tokio::test]
async fn create_superuser_refuses_bad_input_with_a_message_and_writes_nothing() {
    let db = TestDatabase::create().await;
    let cases: [(&[&str], &str, &str); 3] = [
        (
            &[
                "create-superuser",
                "--email",
                "not-an-email",
                "--username",
                "root",
            ],
            "a long enough password",
            "email",
        ),
        (
            &[
                "create-superuser",
                "--email",
                "root@example.com",
                "--username",
                "root",
            ],
            "pw1234",
            "password",
        ),
        (
            &[
                "create-superuser",
                "--email",
                "root@example.com",
                "--username",
                "root",
            ],
            "",
            "password",
        ),
    ];

    for (args, password, named) in cases {
        let output = tickets(db.url(), args, password).await;

        assert_eq!(output.status.code(), Some(1), "{args:?} with {password:?}");
        let message = stderr(&output);
        assert!(
            message.starts_with("tickets: ") && message.to_lowercase().contains(named),
            "{args:?}: {message}"
        );
        assert!(!message.contains(password) || password.is_empty());
    }
    assert_eq!(count(&db, "SELECT count(*) FROM users").await, 0);
}
