//! `POST /login`, `POST /logout`, the token cookie, credential checks and throttling.

use http_adapter::settings::Settings;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{
    assert_json, assert_problem, header, now_secs, send, spawn_app, spawn_app_with, str_field,
    TestApp, AUDIENCE, ISSUER, JWT_SECRET, PASSWORD,
};

/// The `Set-Cookie` header of a response, asserting there is exactly one.
fn set_cookie(response: &reqwest::Response) -> String {
    let cookies: Vec<_> = response.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies.len(), 1, "expected one Set-Cookie, got {cookies:?}");
    cookies[0].to_str().expect("a text cookie").to_owned()
}

/// The attributes of a cookie, lower-cased, without its `name=value`.
fn cookie_attributes(cookie: &str) -> Vec<String> {
    cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

/// Registers a customer and returns their e-mail.
async fn registered(app: &TestApp, email: &str) -> String {
    assert_json(app.register(email, PASSWORD, "u").await, 201).await;
    email.to_owned()
}

#[tokio::test]
async fn login_returns_a_bearer_token_and_sets_the_cookie() {
    let app = spawn_app().await;
    let email = registered(&app, "who@x.io").await;

    let response = app.login_response(&email, PASSWORD).await;
    let cookie = set_cookie(&response);
    let body = assert_json(response, 200).await;

    let token = str_field(&body, "token");
    assert_eq!(token.split('.').count(), 3, "not a JWT: {token}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 1800);
    assert_eq!(
        cookie.split(';').next(),
        Some(format!("token={token}").as_str())
    );
    let attributes = cookie_attributes(&cookie);
    for expected in ["httponly", "samesite=lax", "path=/", "max-age=1800"] {
        assert!(
            attributes.iter().any(|a| a == expected),
            "no {expected} in {cookie}"
        );
    }
    assert!(
        !attributes.iter().any(|a| a == "secure"),
        "Secure without HTTPS: {cookie}"
    );
}

#[tokio::test]
async fn the_cookie_is_secure_when_the_server_is_configured_for_https() {
    let app = spawn_app_with(|settings| settings.server.https = true).await;
    let email = registered(&app, "who@x.io").await;

    let response = app.login_response(&email, PASSWORD).await;

    let cookie = set_cookie(&response);
    assert!(
        cookie_attributes(&cookie).iter().any(|a| a == "secure"),
        "{cookie}"
    );
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_token_carries_the_contract_claims_and_the_configured_lifetime() {
    let app = spawn_app_with(|settings| settings.auth.token_ttl_secs = 120).await;
    let user = assert_json(app.register("who@x.io", PASSWORD, "u").await, 201).await;

    let response = app.login_response("who@x.io", PASSWORD).await;
    let cookie = set_cookie(&response);
    let body = assert_json(response, 200).await;

    assert_eq!(body["expires_in"], 120);
    assert!(
        cookie_attributes(&cookie)
            .iter()
            .any(|a| a == "max-age=120"),
        "{cookie}"
    );
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
    let decoded = jsonwebtoken::decode::<Value>(
        str_field(&body, "token"),
        &jsonwebtoken::DecodingKey::from_secret(JWT_SECRET.as_bytes()),
        &validation,
    )
    .expect("an HS256 token signed with the configured key, issuer and audience");
    let claims = decoded.claims;
    assert_eq!(claims["sub"], user["id"].to_string());
    let iat = claims["iat"].as_i64().expect("numeric iat");
    let exp = claims["exp"].as_i64().expect("numeric exp");
    assert_eq!(exp - iat, 120);
    assert!((iat - now_secs()).abs() <= 5, "iat {iat} is not now");
}

#[tokio::test]
async fn login_ignores_the_case_of_the_email() {
    let app = spawn_app().await;
    registered(&app, "Mixed.Case@Example.com").await;

    for email in [
        "mixed.case@example.com",
        "MIXED.CASE@EXAMPLE.COM",
        "Mixed.Case@Example.com",
    ] {
        app.login(email, PASSWORD).await;
    }
}

#[tokio::test]
async fn unknown_email_wrong_password_and_deactivated_user_get_the_same_401() {
    let app = spawn_app().await;
    let wrong = registered(&app, "wrong@x.io").await;
    let inactive = registered(&app, "inactive@x.io").await;
    app.execute(
        "UPDATE users SET is_active = false WHERE lower(email) = 'inactive@x.io' AND id > $1",
        0,
    )
    .await;

    let mut answers = Vec::new();
    for (email, password) in [
        ("nobody@x.io", PASSWORD),
        ("NOBODY@x.io", "not the password"),
        (wrong.as_str(), "not the password"),
        (inactive.as_str(), PASSWORD),
        (inactive.as_str(), "not the password"),
    ] {
        let response = app.login_response(email, password).await;
        assert!(
            response.headers().get("set-cookie").is_none(),
            "a cookie on failure"
        );
        // Headers that differ per response anyway are left out; any other header
        // present for one kind of failure and not another would tell them apart.
        let mut names: Vec<String> = response
            .headers()
            .keys()
            .map(|name| name.as_str().to_owned())
            .filter(|name| !["date", "x-request-id", "content-length"].contains(&name.as_str()))
            .collect();
        names.sort();
        let body = assert_problem(response, 401, "invalid_credentials").await;
        answers.push((email, password, names, body));
    }

    let (_, _, first_names, first_body) = &answers[0];
    for (email, password, names, body) in &answers[1..] {
        assert_eq!(names, first_names, "{email} / {password}");
        assert_eq!(body, first_body, "{email} / {password}");
    }
}

#[tokio::test]
async fn a_password_is_never_truncated_at_72_bytes() {
    let app = spawn_app().await;
    let exactly_72 = "p".repeat(72);
    assert_json(app.register("a@x.io", &exactly_72, "a").await, 201).await;

    app.login("a@x.io", &exactly_72).await;
    // bcrypt would ignore everything after byte 72: these must not log in.
    for longer in [
        format!("{exactly_72}x"),
        format!("{exactly_72}{exactly_72}"),
    ] {
        let response = app.login_response("a@x.io", &longer).await;
        assert_problem(response, 401, "invalid_credentials").await;
    }
    // And passwords that only agree on their first 72 bytes cannot be registered.
    let response = app.register("b@x.io", &format!("{exactly_72}y"), "b").await;
    assert_problem(response, 400, "password_too_long").await;
}

#[tokio::test]
async fn passwords_are_limited_to_72_bytes_not_72_characters() {
    let app = spawn_app().await;
    // 72 bytes in 36 characters: accepted, and only that password logs in.
    let accented = "é".repeat(36);
    assert_json(app.register("e@x.io", &accented, "e").await, 201).await;
    app.login("e@x.io", &accented).await;
    // 72 characters in 73 bytes: refused, wherever a password is set.
    let over = format!("{}é", "a".repeat(71));
    let problem = assert_problem(
        app.register("f@x.io", &over, "f").await,
        400,
        "password_too_long",
    )
    .await;
    crate::helpers::assert_names_field(&problem, "password");
    let over = format!("{accented}a");
    assert_problem(
        app.register("f@x.io", &over, "f").await,
        400,
        "password_too_long",
    )
    .await;

    let me = app.customer().await;
    let before = app.snapshot().await;
    let body = json!({ "password": format!("{}é", "a".repeat(71)), "current_password": PASSWORD });
    let patched = app
        .send_as(&me, Method::PATCH, &format!("/users/{}", me.id), &body)
        .await;
    assert_problem(patched, 400, "password_too_long").await;
    assert_eq!(app.snapshot().await, before);
    app.login(&me.email, PASSWORD).await;
}

#[tokio::test]
async fn passwords_sharing_their_first_72_bytes_never_log_each_other_in() {
    // More wrong guesses than the default throttle allows.
    let app = spawn_app_with(|settings| settings.auth.login_max_failures_per_account = 100).await;
    let shared = "s".repeat(71);
    let stored = format!("{shared}1");
    assert_json(app.register("a@x.io", &stored, "a").await, 201).await;

    // Everything that agrees with the stored password on its first 72 bytes, or 71
    // bytes and part of a character: none of it is the password.
    for other in [
        format!("{stored}1"),
        format!("{stored}2"),
        format!("{stored}é"),
        format!("{shared}é"),
        format!("{stored}{}", "x".repeat(100)),
    ] {
        let response = app.login_response("a@x.io", &other).await;
        assert!(
            response.headers().get("set-cookie").is_none(),
            "a cookie for {other:?}"
        );
        assert_problem(response, 401, "invalid_credentials").await;
    }
    app.login("a@x.io", &stored).await;
}

#[tokio::test]
async fn login_needs_both_fields() {
    let app = spawn_app().await;

    for body in [
        json!({ "email": "a@x.io" }),
        json!({ "password": PASSWORD }),
        json!({}),
        json!({ "email": 1, "password": PASSWORD }),
    ] {
        let response = app.send_json(Method::POST, "/login", None, &body).await;
        assert_problem(response, 400, "invalid_body").await;
    }
}

/// An app that allows `per_account` and `per_address` failed logins in windows of
/// `window_secs`.
async fn spawn_throttled(per_account: u32, per_address: u32, window_secs: u64) -> TestApp {
    spawn_app_with(|settings| {
        settings.auth.login_max_failures_per_account = per_account;
        settings.auth.login_max_failures_per_address = per_address;
        settings.auth.login_failure_window_secs = window_secs;
    })
    .await
}

#[tokio::test]
async fn too_many_failures_for_one_account_get_429_with_retry_after() {
    let app = spawn_throttled(3, 1000, 600).await;
    let email = registered(&app, "target@x.io").await;
    let other = registered(&app, "bystander@x.io").await;

    for _ in 0..3 {
        let response = app.login_response(&email, "guess guess").await;
        assert_problem(response, 401, "invalid_credentials").await;
    }
    // Further attempts are refused, even with the right password and another case.
    for (address, password) in [
        (email.as_str(), "guess again"),
        (email.as_str(), PASSWORD),
        ("TARGET@x.io", PASSWORD),
    ] {
        let response = app.login_response(address, password).await;
        assert_retry_after(&response, 600);
        assert!(
            response.headers().get("set-cookie").is_none(),
            "a cookie with 429"
        );
        crate::helpers::assert_not_cached_or_sniffed(response.headers(), "429");
        assert_problem(response, 429, "too_many_attempts").await;
    }
    // Other accounts are not locked out.
    app.login(&other, PASSWORD).await;
}

#[tokio::test]
async fn too_many_failures_from_one_address_get_429() {
    let app = spawn_throttled(1000, 3, 300).await;
    let email = registered(&app, "victim@x.io").await;

    for n in 0..3 {
        let response = app
            .login_response(&format!("nobody{n}@x.io"), PASSWORD)
            .await;
        assert_problem(response, 401, "invalid_credentials").await;
    }
    let response = app.login_response(&email, PASSWORD).await;
    assert_retry_after(&response, 300);
    assert_problem(response, 429, "too_many_attempts").await;
}

/// A login with a wrong password, asserting `401`.
async fn wrong_password(app: &TestApp, email: &str) {
    let response = app.login_response(email, "guess guess").await;
    assert_problem(response, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn a_success_forgives_the_accounts_failures_not_the_addresss() {
    let app = spawn_throttled(3, 5, 600).await;
    let email = registered(&app, "forgetful@x.io").await;

    wrong_password(&app, &email).await;
    wrong_password(&app, &email).await;
    app.login(&email, PASSWORD).await;
    // Forgiven: two more failures stay below the account's limit of 3, where four
    // would have reached it.
    wrong_password(&app, &email).await;
    wrong_password(&app, &email).await;
    app.login(&email, PASSWORD).await;

    // Not forgiven: the address has failed four times, and a fifth reaches its limit.
    wrong_password(&app, "nobody@x.io").await;
    let response = app.login_response(&email, PASSWORD).await;
    assert_retry_after(&response, 600);
    assert_problem(response, 429, "too_many_attempts").await;
}

/// A login sent to `instance`, the base address of the app or of one of its replicas.
async fn login_at(app: &TestApp, instance: &str, email: &str, password: &str) -> reqwest::Response {
    let body = json!({ "email": email, "password": password });
    send(app.client.post(format!("{instance}/login")).json(&body)).await
}

/// Logs in with the right password on each instance, asserting `429` in windows of
/// `window` seconds.
async fn refused_on_each(app: &TestApp, instances: [&str; 2], email: &str, window: u64) {
    for instance in instances {
        let response = login_at(app, instance, email, PASSWORD).await;
        assert_retry_after(&response, window);
        assert_problem(response, 429, "too_many_attempts").await;
    }
}

#[tokio::test]
async fn two_instances_on_one_database_enforce_one_limit() {
    // A replica runs with the default settings, so the app does too.
    let auth = Settings::defaults()
        .expect("the compiled-in settings parse")
        .auth;
    let (per_account, per_address) = (
        auth.login_max_failures_per_account,
        auth.login_max_failures_per_address,
    );
    assert!(per_account < per_address, "the address part counts on");
    let app = spawn_app().await;
    let replica = app.replica().await;
    let instances = [app.address.as_str(), replica.address.as_str()];
    let email = registered(&app, "target@x.io").await;
    let other = registered(&app, "bystander@x.io").await;

    // The account: failures taking turns between the instances reach its limit, which
    // neither instance reached alone.
    for (instance, _) in instances.iter().cycle().zip(0..per_account) {
        let response = login_at(&app, instance, &email, "guess guess").await;
        assert_problem(response, 401, "invalid_credentials").await;
    }
    refused_on_each(&app, instances, &email, auth.login_failure_window_secs).await;
    let response = login_at(&app, instances[1], &other, PASSWORD).await;
    assert_json(response, 200).await;

    // The address: the failures so far count on, up to its limit, for every account.
    for (instance, n) in instances.iter().cycle().zip(per_account..per_address) {
        let nobody = format!("nobody{n}@x.io");
        let response = login_at(&app, instance, &nobody, "guess guess").await;
        assert_problem(response, 401, "invalid_credentials").await;
    }
    refused_on_each(&app, instances, &other, auth.login_failure_window_secs).await;
}

#[tokio::test]
async fn without_its_counts_login_fails_closed_with_503() {
    let app = spawn_app_with(|settings| settings.database.statement_timeout_ms = 1000).await;
    let email = registered(&app, "patient@x.io").await;

    // The counts cannot be read while the table is locked: each statement on it runs
    // into its timeout.
    let blocker = app.db.pool().get().await.expect("a database connection");
    blocker
        .batch_execute("BEGIN; LOCK TABLE login_failures IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("the counts are locked");
    for password in [PASSWORD, "guess guess"] {
        let response = app.login_response(&email, password).await;
        assert!(
            response.headers().get("set-cookie").is_none(),
            "a cookie without the counts"
        );
        assert_problem(response, 503, "service_unavailable").await;
    }
    blocker
        .batch_execute("ROLLBACK")
        .await
        .expect("the counts are released");

    app.login(&email, PASSWORD).await;
}

/// `Retry-After` holds delay-seconds between 1 and the window.
fn assert_retry_after(response: &reqwest::Response, window: u64) {
    let value = header(response.headers(), "retry-after");
    let seconds: u64 = value
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After {value:?} is not delay-seconds"));
    assert!(
        (1..=window).contains(&seconds),
        "Retry-After {seconds} outside 1..={window}"
    );
}

#[tokio::test]
async fn logout_clears_the_cookie() {
    let app = spawn_app().await;
    let customer = app.customer().await;

    for request in [
        app.request(Method::POST, "/logout"),
        app.request(Method::POST, "/logout")
            .header("cookie", format!("token={}", customer.token)),
    ] {
        let response = send(request).await;
        assert_eq!(response.status(), 204);
        let cookie = set_cookie(&response);
        assert!(
            cookie.starts_with("token=;") || cookie.starts_with("token=\"\""),
            "{cookie}"
        );
        let attributes = cookie_attributes(&cookie);
        assert!(attributes.iter().any(|a| a == "path=/"), "{cookie}");
        assert!(
            attributes.iter().any(|a| a == "max-age=0")
                || attributes
                    .iter()
                    .any(|a| a.starts_with("expires=") && a.contains("1970")),
            "the cookie is not expired: {cookie}"
        );
        assert!(response.bytes().await.expect("a body").is_empty());
    }
}

#[tokio::test]
async fn a_cookie_session_ends_with_logout() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let browser = crate::helpers::client_builder()
        .cookie_store(true)
        .build()
        .expect("a client");
    let login = json!({ "email": customer.email, "password": PASSWORD });

    let response = send(browser.post(app.url("/login")).json(&login)).await;
    assert_eq!(response.status(), 200);
    let me = send(browser.get(app.url("/users/me"))).await;
    assert_eq!(assert_json(me, 200).await["id"], customer.id);

    assert_eq!(send(browser.post(app.url("/logout"))).await.status(), 204);
    let me = send(browser.get(app.url("/users/me"))).await;
    assert_problem(me, 401, "unauthenticated").await;
}
