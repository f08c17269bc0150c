//! Authentication of requests: bearer and cookie tokens, refused tokens, and roles read
//! afresh for every request.

use jsonwebtoken::Algorithm;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{
    assert_json, assert_problem, base64url, claims, header, hs256_signed_with_header, method,
    now_secs, send, sign, sign_hs256, spawn_app, unsigned_token, TestApp, JWT_SECRET,
};

/// Every route that needs a token, with a method it supports.
const PROTECTED: [(&str, &str); 11] = [
    ("GET", "/users"),
    ("GET", "/users/me"),
    ("GET", "/users/1"),
    ("PATCH", "/users/1"),
    ("GET", "/tickets"),
    ("POST", "/tickets"),
    ("GET", "/tickets/1"),
    ("PUT", "/tickets/1"),
    ("PATCH", "/tickets/1"),
    ("GET", "/tickets/1/messages"),
    ("POST", "/tickets/1/messages"),
];

#[tokio::test]
async fn a_bearer_token_authenticates() {
    let app = spawn_app().await;
    let customer = app.customer().await;

    let me = app.get_json(&customer, "/users/me").await;

    assert_eq!(me["id"], customer.id);
}

#[tokio::test]
async fn the_token_cookie_authenticates() {
    let app = spawn_app().await;
    let customer = app.customer().await;

    let request = app
        .request(Method::GET, "/users/me")
        .header("cookie", format!("other=1; token={}", customer.token));
    let me = assert_json(send(request).await, 200).await;

    assert_eq!(me["id"], customer.id);
}

#[tokio::test]
async fn every_protected_route_wants_a_token() {
    let app = spawn_app().await;

    for (name, path) in PROTECTED {
        let response = send(app.request(method(name), path).json(&json!({}))).await;
        let challenge = header(response.headers(), "www-authenticate");
        assert!(
            challenge.starts_with("Bearer"),
            "{name} {path}: WWW-Authenticate {challenge:?}"
        );
        assert_problem(response, 401, "unauthenticated").await;
    }
}

#[tokio::test]
async fn forged_and_malformed_tokens_are_refused() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let id = customer.id;
    let no_exp = without(claims(id, 600), "exp");
    let mut wrong_iss = claims(id, 600);
    wrong_iss["iss"] = json!("someone-else");
    let mut wrong_aud = claims(id, 600);
    wrong_aud["aud"] = json!("another-api");
    let no_iss = without(claims(id, 600), "iss");
    let no_aud = without(claims(id, 600), "aud");
    let mut iss_case = claims(id, 600);
    iss_case["iss"] = json!("Tickets");
    let no_sub = without(claims(id, 600), "sub");
    let mut bad_sub = claims(id, 600);
    bad_sub["sub"] = json!("abc");
    let mut numeric_sub = claims(id, 600);
    numeric_sub["sub"] = json!(-1);
    let (header_part, rest) = customer.token.split_once('.').expect("a JWT");
    let (payload_part, signature) = rest.split_once('.').expect("a JWT");
    let tampered_payload = format!(
        "{header_part}.{}.{signature}",
        base64url(claims(id + 1, 600).to_string().as_bytes())
    );
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let tampered_signature = format!("{header_part}.{payload_part}.{flipped}{}", &signature[1..]);

    let tokens = [
        (
            "another key",
            sign_hs256_with(
                &claims(id, 600),
                b"another-secret-another-secret-another-secret",
            ),
        ),
        (
            "HS512 with the right key",
            sign(&claims(id, 600), Algorithm::HS512, JWT_SECRET.as_bytes()),
        ),
        (
            "HS384 with the right key",
            sign(&claims(id, 600), Algorithm::HS384, JWT_SECRET.as_bytes()),
        ),
        ("alg none", unsigned_token(&claims(id, 600))),
        (
            "alg none with an HS256 signature",
            hs256_signed_with_header(&json!({ "alg": "none" }), &claims(id, 600)),
        ),
        (
            "alg None with an HS256 signature",
            hs256_signed_with_header(&json!({ "alg": "None" }), &claims(id, 600)),
        ),
        (
            "an RS256 header with the HS256 key",
            hs256_signed_with_header(&json!({ "alg": "RS256", "typ": "JWT" }), &claims(id, 600)),
        ),
        (
            "an HS512 header with the HS256 key",
            hs256_signed_with_header(&json!({ "alg": "HS512", "typ": "JWT" }), &claims(id, 600)),
        ),
        (
            "no alg with the HS256 key",
            hs256_signed_with_header(&json!({ "typ": "JWT" }), &claims(id, 600)),
        ),
        ("no exp", sign_hs256(&no_exp)),
        ("expired an hour ago", sign_hs256(&claims(id, -3600))),
        ("expired 90 seconds ago", sign_hs256(&claims(id, -90))),
        ("expired 30 seconds ago", sign_hs256(&claims(id, -30))),
        ("no issuer", sign_hs256(&no_iss)),
        ("wrong issuer", sign_hs256(&wrong_iss)),
        ("issuer in another case", sign_hs256(&iss_case)),
        ("no audience", sign_hs256(&no_aud)),
        ("wrong audience", sign_hs256(&wrong_aud)),
        ("no sub", sign_hs256(&no_sub)),
        ("non-numeric sub", sign_hs256(&bad_sub)),
        ("numeric sub", sign_hs256(&numeric_sub)),
        (
            "user that does not exist",
            sign_hs256(&claims(9_223_372_036_854_775_807, 600)),
        ),
        ("tampered payload", tampered_payload),
        ("tampered signature", tampered_signature),
        ("no signature", format!("{header_part}.{payload_part}.")),
        ("two parts", format!("{header_part}.{payload_part}")),
        ("garbage", "not-a-token".to_owned()),
        ("the staff key", app.staff_key.clone()),
    ];

    for (what, token) in tokens {
        assert_refused(&app, what, &token).await;
    }
    // The genuine token still works.
    assert_eq!(app.get_as(&customer, "/users/me").await.status(), 200);
}

fn without(mut claims: serde_json::Value, key: &str) -> serde_json::Value {
    if let Some(object) = claims.as_object_mut() {
        object.remove(key);
    }
    claims
}

fn sign_hs256_with(claims: &serde_json::Value, secret: &[u8]) -> String {
    sign(claims, Algorithm::HS256, secret)
}

#[tokio::test]
async fn a_token_signed_by_the_app_key_for_a_real_user_is_accepted() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let header = json!({ "alg": "HS256", "typ": "JWT" });

    for token in [
        sign_hs256(&claims(customer.id, 600)),
        hs256_signed_with_header(&header, &claims(customer.id, 600)),
    ] {
        let request = app.request(Method::GET, "/users/me").bearer_auth(token);
        let me = assert_json(send(request).await, 200).await;
        // The forging helpers are right, so the refusals above are the app's doing.
        assert_eq!(me["id"], customer.id);
    }
}

/// Asserts that `token` is refused as a bearer token and as the cookie.
async fn assert_refused(app: &TestApp, what: &str, token: &str) {
    for request in [
        app.request(Method::GET, "/users/me").bearer_auth(token),
        app.request(Method::GET, "/users/me")
            .header("cookie", format!("token={token}")),
    ] {
        let response = send(request).await;
        assert_eq!(response.status(), 401, "{what} was not refused");
        assert_problem(response, 401, "invalid_token").await;
    }
}

#[tokio::test]
async fn a_token_that_is_not_valid_yet_is_refused() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let mut later = claims(customer.id, 7200);
    later["nbf"] = json!(now_secs() + 3600);

    assert_refused(&app, "a token valid only in an hour", &sign_hs256(&later)).await;
}

#[tokio::test]
async fn a_token_of_a_deleted_and_recreated_email_is_refused() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let token = customer.token.clone();

    app.execute("DELETE FROM users WHERE id = $1", customer.id)
        .await;
    assert_json(
        app.register(&customer.email, crate::helpers::PASSWORD, "again")
            .await,
        201,
    )
    .await;

    // The token names the old id, not the e-mail: it must not pass for the new account.
    assert_refused(&app, "the token of a deleted user", &token).await;
}

#[tokio::test]
async fn other_authorization_schemes_are_not_tokens() {
    let app = spawn_app().await;
    let customer = app.customer().await;

    for value in [
        format!("Basic {}", customer.token),
        format!("Token {}", customer.token),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
    ] {
        let request = app
            .request(Method::GET, "/users/me")
            .header("authorization", value.clone());
        let response = send(request).await;
        assert_eq!(response.status(), 401, "{value:?} was accepted");
    }
}

#[tokio::test]
async fn deactivation_takes_effect_on_the_next_request() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    assert_eq!(app.get_as(&customer, "/users/me").await.status(), 200);

    app.execute(
        "UPDATE users SET is_active = false WHERE id = $1",
        customer.id,
    )
    .await;

    assert_problem(
        app.get_as(&customer, "/users/me").await,
        401,
        "invalid_token",
    )
    .await;
    assert_problem(
        app.get_as(&customer, "/tickets").await,
        401,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn a_deleted_user_is_refused() {
    let app = spawn_app().await;
    let customer = app.customer().await;

    app.execute("DELETE FROM users WHERE id = $1", customer.id)
        .await;

    assert_problem(
        app.get_as(&customer, "/users/me").await,
        401,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn demotion_takes_effect_on_the_next_request() {
    let app = spawn_app().await;
    let staff = app.staff().await;
    let customer = app.customer().await;
    let ticket = app.open_ticket_id(&customer).await;
    assert_eq!(app.get_as(&staff, "/users").await.status(), 200);
    assert_eq!(
        app.get_as(&staff, &format!("/tickets/{ticket}"))
            .await
            .status(),
        200
    );

    app.execute(
        "UPDATE users SET is_staff = false, is_superuser = false WHERE id = $1",
        staff.id,
    )
    .await;

    assert_problem(app.get_as(&staff, "/users").await, 403, "forbidden").await;
    let ticket_path = format!("/tickets/{ticket}");
    assert_problem(
        app.get_as(&staff, &ticket_path).await,
        404,
        "ticket_not_found",
    )
    .await;
    let response = app.set_status(&staff, ticket, "unresolved").await;
    assert!(
        response.status() == 400 || response.status() == 404,
        "{}",
        response.status()
    );
    assert_eq!(app.ticket_row(ticket).await.0, "pending");
}

#[tokio::test]
async fn promotion_takes_effect_on_the_next_request() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    assert_eq!(app.get_as(&customer, "/users").await.status(), 403);

    app.execute(
        "UPDATE users SET is_staff = true WHERE id = $1",
        customer.id,
    )
    .await;

    assert_eq!(app.get_as(&customer, "/users").await.status(), 200);
}
