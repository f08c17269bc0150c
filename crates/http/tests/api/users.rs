//! `POST /users` (registration), `GET /users`, `GET /users/{id}` and `GET /users/me`.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{
    assert_json, assert_names_field, assert_problem, assert_problem_any, assert_ticket_object,
    assert_user_object, header, id_of, ids, send, spawn_app, spawn_app_with, PASSWORD, STAFF_KEY,
};

// ---- registration -------------------------------------------------------------------

#[tokio::test]
async fn register_returns_201_with_location_and_the_user() {
    let app = spawn_app().await;

    let response = app.register("michelle@post.io", PASSWORD, "michelle").await;
    let location = header(response.headers(), "location");
    let user = assert_json(response, 201).await;

    assert_user_object(&user, false);
    let id = id_of(&user);
    assert_eq!(location, format!("/users/{id}"));
    assert_eq!(user["email"], "michelle@post.io");
    assert_eq!(user["username"], "michelle");
    assert_eq!(user["is_staff"], false);
    assert_eq!(user["is_active"], true);
    assert_eq!(user["tickets_count"], 0);
    let stored = app
        .query_i64("SELECT count(*) FROM users WHERE email = 'michelle@post.io' AND NOT is_staff")
        .await;
    assert_eq!(stored, 1);
    // The password is stored hashed, never as given.
    let plain = app
        .query_i64(&format!(
            "SELECT count(*) FROM users WHERE password_hash = '{PASSWORD}'"
        ))
        .await;
    assert_eq!(plain, 0);
}

#[tokio::test]
async fn register_trims_email_and_username_and_keeps_the_email_case() {
    let app = spawn_app().await;

    let response = app
        .register("  \tMichelle@Post.IO \n", PASSWORD, "   michelle  ")
        .await;
    let user = assert_json(response, 201).await;

    assert_eq!(user["email"], "Michelle@Post.IO");
    assert_eq!(user["username"], "michelle");
    // The trimmed address logs in.
    app.login("Michelle@Post.IO", PASSWORD).await;
}

#[tokio::test]
async fn a_duplicate_email_in_any_case_gets_409_and_creates_nothing() {
    let app = spawn_app().await;
    assert_json(
        app.register("dup@example.com", PASSWORD, "first").await,
        201,
    )
    .await;
    let before = app.snapshot().await;

    for email in ["dup@example.com", "DUP@Example.COM", "  Dup@example.com "] {
        let response = app.register(email, PASSWORD, "second").await;
        assert_problem(response, 409, "email_taken").await;
    }

    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn register_validates_every_field() {
    let app = spawn_app().await;
    let long_email = format!("{}@{}.io", "a".repeat(64), "b".repeat(187));
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"email": "plain", "password": PASSWORD, "username": "u"}),
            "email",
            "email_invalid",
        ),
        (
            json!({"email": "", "password": PASSWORD, "username": "u"}),
            "email",
            "email_invalid",
        ),
        (
            json!({"email": "   ", "password": PASSWORD, "username": "u"}),
            "email",
            "email_invalid",
        ),
        (
            json!({"email": "John <john@x.io>", "password": PASSWORD, "username": "u"}),
            "email",
            "email_invalid",
        ),
        (
            json!({"email": "jo hn@x.io", "password": PASSWORD, "username": "u"}),
            "email",
            "email_invalid",
        ),
        (
            json!({"email": "a@b@c.io", "password": PASSWORD, "username": "u"}),
            "email",
            "email_invalid",
        ),
        (
            json!({"email": "user@", "password": PASSWORD, "username": "u"}),
            "email",
            "email_invalid",
        ),
        (
            json!({"email": long_email, "password": PASSWORD, "username": "u"}),
            "email",
            "email_too_long",
        ),
        (
            json!({"email": "a@x.io", "password": "1234567", "username": "u"}),
            "password",
            "password_too_short",
        ),
        (
            json!({"email": "a@x.io", "password": "", "username": "u"}),
            "password",
            "password_too_short",
        ),
        (
            json!({"email": "a@x.io", "password": "x".repeat(73), "username": "u"}),
            "password",
            "password_too_long",
        ),
        // 19 four-byte characters: few characters, but 76 bytes.
        (
            json!({"email": "a@x.io", "password": "😀".repeat(19), "username": "u"}),
            "password",
            "password_too_long",
        ),
        (
            json!({"email": "a@x.io", "password": PASSWORD, "username": ""}),
            "username",
            "username_invalid",
        ),
        (
            json!({"email": "a@x.io", "password": PASSWORD, "username": " \t "}),
            "username",
            "username_invalid",
        ),
        (
            json!({"email": "a@x.io", "password": PASSWORD, "username": "é".repeat(65)}),
            "username",
            "username_invalid",
        ),
    ];
    let before = app.snapshot().await;

    for (body, field, code) in cases {
        let problem = assert_problem(app.register_with(&body, None).await, 400, code).await;
        assert_names_field(&problem, field);
    }

    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn register_accepts_the_limits_of_each_field() {
    let app = spawn_app().await;
    let longest_email = format!("{}@{}.io", "a".repeat(64), "b".repeat(186));
    let cases = [
        (longest_email.as_str(), "x".repeat(72), "é".repeat(64)),
        ("eight@x.io", "12345678".to_owned(), "u".to_owned()),
        // Eight characters, 32 bytes.
        ("emoji@x.io", "😀".repeat(8), "名前".to_owned()),
        ("eighteen@x.io", "😀".repeat(18), "x".to_owned()),
    ];
    for (email, password, username) in cases {
        let user = assert_json(app.register(email, &password, &username).await, 201).await;
        assert_eq!(user["username"], username.as_str());
        app.login(email, &password).await;
    }
}

#[tokio::test]
async fn without_a_configured_key_staff_registration_by_key_is_off() {
    let app = spawn_app_with(|settings| settings.auth.staff_api_key = None).await;
    let body = json!({
        "email": "boss@example.com", "password": PASSWORD, "username": "boss", "isStaff": true,
    });
    let root = app.customer().await;
    app.execute(
        "UPDATE users SET is_staff = true, is_superuser = true WHERE id = $1",
        root.id,
    )
    .await;
    let before = app.snapshot().await;

    for key in [STAFF_KEY, "", "Bearer"] {
        let response = app.register_with(&body, Some(key)).await;
        assert_problem(response, 401, "staff_key_required").await;
    }
    assert_eq!(app.snapshot().await, before, "nothing was created");

    let by_superuser = app.register_with(&body, Some(&root.token)).await;
    let created = assert_json(by_superuser, 201).await;
    assert_eq!(created["is_staff"], true);
}

#[tokio::test]
async fn staff_registration_needs_the_staff_key() {
    let app = spawn_app().await;
    let body = json!({
        "email": "boss@example.com", "password": PASSWORD, "username": "boss", "isStaff": true,
    });
    let before = app.snapshot().await;

    let missing = app.register_with(&body, None).await;
    assert_problem(missing, 401, "staff_key_required").await;
    let longer = format!("{}x", app.staff_key);
    // Same length, differing in the last byte only: what a comparison that stops at the
    // first difference (or compares only a prefix) would get wrong.
    let (head, last) = app.staff_key.split_at(app.staff_key.len() - 1);
    let same_length = format!("{head}{}", if last == "x" { "y" } else { "x" });
    let different_first = format!("X{}", &app.staff_key[1..]);
    for key in [
        longer.as_str(),
        &app.staff_key[..app.staff_key.len() - 1],
        &same_length,
        &different_first,
        &app.staff_key.to_uppercase(),
        "",
        "Bearer",
    ] {
        let response = app.register_with(&body, Some(key)).await;
        assert_problem(response, 401, "staff_key_required").await;
    }
    // The key is accepted only as a bearer token: not as Basic, not in the cookie.
    let as_basic = app
        .request(Method::POST, "/users")
        .header("authorization", format!("Basic {}", app.staff_key))
        .json(&body);
    assert_problem(send(as_basic).await, 401, "staff_key_required").await;
    let as_cookie = app
        .request(Method::POST, "/users")
        .header("cookie", format!("token={}", app.staff_key))
        .json(&body);
    let codes = ["staff_key_required", "invalid_token"];
    assert_problem_any(send(as_cookie).await, 401, &codes).await;
    assert_eq!(app.snapshot().await, before);

    let user = assert_json(app.register_with(&body, Some(&app.staff_key)).await, 201).await;
    assert_eq!(user["is_staff"], true);
    let staff = app
        .query_i64("SELECT count(*) FROM users WHERE is_staff AND NOT is_superuser")
        .await;
    assert_eq!(staff, 1);
}

#[tokio::test]
async fn is_staff_false_or_absent_needs_no_key() {
    let app = spawn_app().await;
    let body =
        json!({ "email": "a@x.io", "password": PASSWORD, "username": "a", "isStaff": false });

    let user = assert_json(app.register_with(&body, None).await, 201).await;

    assert_eq!(user["is_staff"], false);
}

#[tokio::test]
async fn is_superuser_in_the_body_is_ignored() {
    let app = spawn_app().await;
    let body = json!({
        "email": "sneaky@x.io", "password": PASSWORD, "username": "s",
        "isSuperuser": true, "is_superuser": true, "is_staff": true, "is_active": false,
    });

    let user = assert_json(app.register_with(&body, None).await, 201).await;

    assert_eq!(user["is_staff"], false);
    assert_eq!(user["is_active"], true);
    let privileged = app
        .query_i64("SELECT count(*) FROM users WHERE is_staff OR is_superuser OR NOT is_active")
        .await;
    assert_eq!(privileged, 0);
}

#[tokio::test]
async fn keys_are_matched_exactly_so_isstaff_in_capitals_is_not_is_staff() {
    let app = spawn_app().await;
    let body =
        json!({ "email": "caps@x.io", "password": PASSWORD, "username": "c", "ISSTAFF": true });

    let user = assert_json(app.register_with(&body, None).await, 201).await;

    assert_eq!(user["is_staff"], false);
    assert_eq!(
        app.query_i64("SELECT count(*) FROM users WHERE is_staff")
            .await,
        0
    );
}

#[tokio::test]
async fn a_superuser_token_may_register_staff() {
    let app = spawn_app().await;
    let root = app.superuser().await;
    let body =
        json!({ "email": "new@x.io", "password": PASSWORD, "username": "n", "isStaff": true });

    let response = app.register_with(&body, Some(&root.token)).await;
    let user = assert_json(response, 201).await;

    assert_eq!(user["is_staff"], true);
    // The new member of staff can do what staff do.
    let token = app.login("new@x.io", PASSWORD).await;
    let list = app.request(Method::GET, "/users").bearer_auth(token);
    assert_eq!(send(list).await.status(), 200);
}

#[tokio::test]
async fn customer_and_staff_tokens_may_not_register_staff() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let before = app.snapshot().await;

    for token in [&customer.token, &staff.token] {
        let body =
            json!({ "email": "x@x.io", "password": PASSWORD, "username": "x", "isStaff": true });
        let response = app.register_with(&body, Some(token)).await;
        // Neither the key nor a superuser: a wrong key (401), or a user without the
        // role (403); the contract allows reading it either way.
        match response.status().as_u16() {
            403 => assert_problem(response, 403, "forbidden").await,
            _ => assert_problem(response, 401, "staff_key_required").await,
        };
    }

    assert_eq!(app.snapshot().await, before);
}

// ---- GET /users ---------------------------------------------------------------------

#[tokio::test]
async fn the_user_list_is_for_staff_only() {
    let app = spawn_app().await;
    let customer = app.customer().await;

    assert_problem(app.get_as(&customer, "/users").await, 403, "forbidden").await;
    let unauthenticated = send(app.request(Method::GET, "/users")).await;
    assert_problem(unauthenticated, 401, "unauthenticated").await;
}

#[tokio::test]
async fn the_user_list_is_ordered_by_tickets_count_descending_then_id() {
    let app = spawn_app().await;
    let a = app.customer().await;
    let b = app.customer().await;
    let c = app.customer().await;
    let d = app.customer().await;
    let staff = app.staff().await;
    app.open_tickets(&a, 1).await;
    app.open_tickets(&b, 3).await;
    app.open_tickets(&d, 3).await;
    app.open_tickets(&staff, 2).await;

    let users = app.get_json(&staff, "/users").await;

    assert_eq!(ids(&users), vec![b.id, d.id, staff.id, a.id, c.id]);
    let counts: Vec<i64> = users
        .as_array()
        .into_iter()
        .flatten()
        .map(|u| u["tickets_count"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(counts, vec![3, 3, 2, 1, 0]);
    for user in users.as_array().into_iter().flatten() {
        assert_user_object(user, true);
    }
    assert_eq!(users[2]["is_staff"], true);
    assert_eq!(users[2]["is_superuser"], false);
}

#[tokio::test]
async fn a_superuser_sees_the_user_list_with_is_superuser() {
    let app = spawn_app().await;
    let root = app.superuser().await;

    let users = app.get_json(&root, "/users").await;

    assert_eq!(ids(&users), vec![root.id]);
    assert_eq!(users[0]["is_superuser"], true);
}

// ---- GET /users/{id} and /users/me ------------------------------------------------

#[tokio::test]
async fn a_user_reads_themself_with_their_tickets_oldest_first() {
    let app = spawn_app().await;
    let me = app.customer().await;
    let other = app.customer().await;
    let first = app.open_ticket_id(&me).await;
    app.open_ticket_id(&other).await;
    let second = app.open_ticket_id(&me).await;

    for path in [format!("/users/{}", me.id), "/users/me".to_owned()] {
        let user = app.get_json(&me, &path).await;
        assert_user_object(&user, false);
        assert_eq!(id_of(&user), me.id);
        assert_eq!(user["email"], me.email.as_str());
        assert_eq!(user["tickets_count"], 2);
        assert_eq!(ids(&user["tickets"]), vec![first, second]);
        for ticket in user["tickets"].as_array().into_iter().flatten() {
            assert_ticket_object(ticket, false);
        }
    }
}

#[tokio::test]
async fn a_user_without_tickets_has_an_empty_list() {
    let app = spawn_app().await;
    let me = app.customer().await;

    let response = app.get_as(&me, "/users/me").await;
    let user = assert_json(response, 200).await;

    assert_eq!(user["tickets"], json!([]));
    assert_eq!(user["tickets_count"], 0);
}

#[tokio::test]
async fn staff_read_any_user_with_is_superuser_and_ticket_authors() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;

    let user = app
        .get_json(&staff, &format!("/users/{}", customer.id))
        .await;

    assert_user_object(&user, true);
    assert_eq!(user["is_superuser"], false);
    assert_eq!(ids(&user["tickets"]), vec![ticket]);
    assert_ticket_object(&user["tickets"][0], true);
    assert_eq!(user["tickets"][0]["author"], customer.email.as_str());

    let me = app.get_json(&staff, "/users/me").await;
    assert_eq!(id_of(&me), staff.id);
    assert_user_object(&me, true);
    assert_eq!(me["is_staff"], true);
}

#[tokio::test]
async fn a_customer_may_not_read_another_user() {
    let app = spawn_app().await;
    let me = app.customer().await;
    let other = app.customer().await;
    let staff = app.staff().await;

    for id in [other.id, staff.id] {
        let response = app.get_as(&me, &format!("/users/{id}")).await;
        assert_problem(response, 403, "forbidden").await;
    }
}

#[tokio::test]
async fn an_unknown_user_is_404_for_staff() {
    let app = spawn_app().await;
    let staff = app.staff().await;

    let response = app.get_as(&staff, "/users/9223372036854775807").await;

    assert_problem(response, 404, "user_not_found").await;
}

#[tokio::test]
async fn reading_users_needs_a_token() {
    let app = spawn_app().await;
    let me = app.customer().await;

    for path in ["/users/me".to_owned(), format!("/users/{}", me.id)] {
        let response = send(app.request(Method::GET, &path)).await;
        assert_problem(response, 401, "unauthenticated").await;
    }
}
