//! `GET /health/live` and `GET /health/ready`.

use std::time::Duration;

use reqwest::Method;

use crate::helpers::{assert_problem, send, spawn_app, spawn_app_with};

#[tokio::test]
async fn live_is_200() {
    let app = spawn_app().await;

    let response = send(app.request(Method::GET, "/health/live")).await;

    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn ready_is_200_when_the_database_answers() {
    let app = spawn_app().await;

    let response = send(app.request(Method::GET, "/health/ready")).await;

    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn health_needs_no_token_and_ignores_a_bad_one() {
    let app = spawn_app().await;

    for path in ["/health/live", "/health/ready"] {
        let request = app.request(Method::GET, path).bearer_auth("not-a-token");
        assert_eq!(send(request).await.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn ready_is_503_while_the_database_refuses_connections_and_recovers() {
    let app = spawn_app_with(|settings| {
        settings.database.pool_wait_timeout_ms = 500;
        settings.database.pool_create_timeout_ms = 500;
        settings.database.pool_recycle_timeout_ms = 500;
    })
    .await;
    let customer = app.customer().await;
    let name: String = app
        .db
        .pool()
        .get()
        .await
        .expect("a database connection")
        .query_one("SELECT current_database()", &[])
        .await
        .expect("the database name")
        .get(0);
    // A database cannot refuse connections to itself: speak from the server's
    // `postgres` database.
    let admin_pool = postgres_adapter::create_pool(&postgres_adapter::PoolSettings {
        url: app.db.url().replacen(&format!("/{name}"), "/postgres", 1),
        max_size: 1,
        wait_timeout: Duration::from_secs(10),
        create_timeout: Duration::from_secs(10),
        recycle_timeout: Duration::from_secs(10),
        statement_timeout: Duration::from_secs(10),
    })
    .expect("a pool on the postgres database");
    let admin = admin_pool.get().await.expect("an admin connection");
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    admin
        .batch_execute(&format!("ALTER DATABASE {quoted} ALLOW_CONNECTIONS false"))
        .await
        .expect("connections can be refused");
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            &[&name],
        )
        .await
        .expect("the app's connections are closed");

    let ready = send(app.request(Method::GET, "/health/ready")).await;
    let api = app.get_as(&customer, "/tickets").await;
    let live = send(app.request(Method::GET, "/health/live")).await;

    admin
        .batch_execute(&format!("ALTER DATABASE {quoted} ALLOW_CONNECTIONS true"))
        .await
        .expect("connections are allowed again");
    assert_problem(ready, 503, "service_unavailable").await;
    assert_problem(api, 503, "service_unavailable").await;
    assert_eq!(live.status(), 200);

    let mut recovered = false;
    for _ in 0..50 {
        if send(app.request(Method::GET, "/health/ready"))
            .await
            .status()
            == 200
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "ready did not recover");
    assert_eq!(app.get_as(&customer, "/tickets").await.status(), 200);
}
