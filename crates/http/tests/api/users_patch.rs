//! `PATCH /users/{id}`: who may change which field of whom.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{
    assert_json, assert_names_field, assert_problem, assert_user_object, send, spawn_app, Actor,
    TestApp, PASSWORD,
};

const NEW_PASSWORD: &str = "a brand new passphrase";

async fn patch(app: &TestApp, caller: &Actor, target: i64, body: &Value) -> reqwest::Response {
    app.send_as(caller, Method::PATCH, &format!("/users/{target}"), body)
        .await
}

/// Patches, asserting `200`; returns the user object.
async fn patch_ok(app: &TestApp, caller: &Actor, target: i64, body: &Value) -> Value {
    assert_json(patch(app, caller, target, body).await, 200).await
}

/// Patches, asserting `403` and that nothing changed.
async fn assert_forbidden(app: &TestApp, caller: &Actor, target: i64, body: &Value) {
    let before = app.snapshot().await;
    assert_problem(patch(app, caller, target, body).await, 403, "forbidden").await;
    assert_eq!(
        app.snapshot().await,
        before,
        "a refused PATCH {body} changed data"
    );
}

/// Patches, asserting `400` with `code` and that nothing changed.
async fn assert_invalid(app: &TestApp, caller: &Actor, target: i64, body: &Value, code: &str) {
    let before = app.snapshot().await;
    assert_problem(patch(app, caller, target, body).await, 400, code).await;
    assert_eq!(
        app.snapshot().await,
        before,
        "a refused PATCH {body} changed data"
    );
}

#[tokio::test]
async fn a_user_changes_their_own_username() {
    let app = spawn_app().await;
    let me = app.customer().await;

    let user = patch_ok(&app, &me, me.id, &json!({ "username": "  renamed " })).await;

    assert_user_object(&user, false);
    assert_eq!(user["username"], "renamed");
    assert_eq!(app.get_json(&me, "/users/me").await["username"], "renamed");
}

#[tokio::test]
async fn a_user_changes_their_password_with_the_current_one() {
    let app = spawn_app().await;
    let me = app.customer().await;
    let body = json!({ "password": NEW_PASSWORD, "current_password": PASSWORD });

    patch_ok(&app, &me, me.id, &body).await;

    app.login(&me.email, NEW_PASSWORD).await;
    let old = app.login_response(&me.email, PASSWORD).await;
    assert_problem(old, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn a_password_change_needs_the_right_current_password() {
    let app = spawn_app().await;
    let me = app.customer().await;

    let missing = json!({ "password": NEW_PASSWORD });
    assert_invalid(&app, &me, me.id, &missing, "current_password_required").await;
    let wrong = json!({ "password": NEW_PASSWORD, "current_password": "not my password" });
    assert_invalid(&app, &me, me.id, &wrong, "current_password_incorrect").await;

    app.login(&me.email, PASSWORD).await;
}

#[tokio::test]
async fn a_new_password_is_validated_like_at_registration() {
    let app = spawn_app().await;
    let me = app.customer().await;

    for (password, code) in [
        ("short".to_owned(), "password_too_short"),
        ("x".repeat(73), "password_too_long"),
    ] {
        let body = json!({ "password": password, "current_password": PASSWORD });
        let before = app.snapshot().await;
        let problem = assert_problem(patch(&app, &me, me.id, &body).await, 400, code).await;
        assert_names_field(&problem, "password");
        assert_eq!(app.snapshot().await, before);
    }
}

#[tokio::test]
async fn an_invalid_username_is_400() {
    let app = spawn_app().await;
    let me = app.customer().await;

    for username in ["", "   ", &"n".repeat(65)] {
        let body = json!({ "username": username });
        assert_invalid(&app, &me, me.id, &body, "username_invalid").await;
    }
}

#[tokio::test]
async fn an_empty_patch_changes_nothing() {
    let app = spawn_app().await;
    let me = app.customer().await;
    let before = app.snapshot().await;

    let user = patch_ok(&app, &me, me.id, &json!({})).await;

    assert_eq!(user["username"], "customer");
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn a_user_may_not_change_their_own_flags() {
    let app = spawn_app().await;
    let me = app.customer().await;
    let staff = app.staff().await;
    let root = app.superuser().await;

    for actor in [&me, &staff, &root] {
        for body in [
            json!({ "is_staff": true }),
            json!({ "is_staff": false }),
            json!({ "is_active": false }),
        ] {
            assert_forbidden(&app, actor, actor.id, &body).await;
        }
    }
}

#[tokio::test]
async fn a_customer_may_not_change_anyone_else() {
    let app = spawn_app().await;
    let me = app.customer().await;
    let other = app.customer().await;
    let staff = app.staff().await;

    for target in [other.id, staff.id] {
        assert_forbidden(&app, &me, target, &json!({ "username": "pwned" })).await;
        let password = json!({ "password": NEW_PASSWORD, "current_password": PASSWORD });
        assert_forbidden(&app, &me, target, &password).await;
    }
}

#[tokio::test]
async fn staff_rename_customers_only() {
    let app = spawn_app().await;
    let staff = app.staff().await;
    let customer = app.customer().await;
    let colleague = app.staff().await;
    let root = app.superuser().await;

    let user = patch_ok(&app, &staff, customer.id, &json!({ "username": "tidied" })).await;
    assert_eq!(user["username"], "tidied");
    assert_user_object(&user, true);

    for target in [colleague.id, root.id] {
        assert_forbidden(&app, &staff, target, &json!({ "username": "x" })).await;
    }
}

#[tokio::test]
async fn staff_may_not_change_passwords_or_flags_of_others() {
    let app = spawn_app().await;
    let staff = app.staff().await;
    let customer = app.customer().await;

    for body in [
        json!({ "password": NEW_PASSWORD, "current_password": PASSWORD }),
        json!({ "password": NEW_PASSWORD }),
        json!({ "is_staff": true }),
        json!({ "is_active": false }),
    ] {
        assert_forbidden(&app, &staff, customer.id, &body).await;
    }
}

#[tokio::test]
async fn a_superuser_promotes_and_demotes_staff() {
    let app = spawn_app().await;
    let root = app.superuser().await;
    let customer = app.customer().await;
    assert_eq!(app.get_as(&customer, "/users").await.status(), 403);

    let user = patch_ok(&app, &root, customer.id, &json!({ "is_staff": true })).await;
    assert_eq!(user["is_staff"], true);
    assert_user_object(&user, true);
    // The same token now carries staff rights.
    assert_eq!(app.get_as(&customer, "/users").await.status(), 200);

    let user = patch_ok(&app, &root, customer.id, &json!({ "is_staff": false })).await;
    assert_eq!(user["is_staff"], false);
    assert_problem(app.get_as(&customer, "/users").await, 403, "forbidden").await;
}

#[tokio::test]
async fn a_superuser_deactivates_and_reactivates_users() {
    let app = spawn_app().await;
    let root = app.superuser().await;
    let customer = app.customer().await;

    let user = patch_ok(&app, &root, customer.id, &json!({ "is_active": false })).await;
    assert_eq!(user["is_active"], false);
    assert_problem(
        app.get_as(&customer, "/users/me").await,
        401,
        "invalid_token",
    )
    .await;
    let login = app.login_response(&customer.email, PASSWORD).await;
    assert_problem(login, 401, "invalid_credentials").await;

    let user = patch_ok(&app, &root, customer.id, &json!({ "is_active": true })).await;
    assert_eq!(user["is_active"], true);
    assert_eq!(app.get_as(&customer, "/users/me").await.status(), 200);
}

#[tokio::test]
async fn a_superuser_renames_staff_but_sets_nobody_elses_password() {
    let app = spawn_app().await;
    let root = app.superuser().await;
    let staff = app.staff().await;

    let user = patch_ok(&app, &root, staff.id, &json!({ "username": "lead" })).await;
    assert_eq!(user["username"], "lead");

    let body = json!({ "password": NEW_PASSWORD, "current_password": PASSWORD });
    assert_forbidden(&app, &root, staff.id, &body).await;
    app.login(&staff.email, PASSWORD).await;
}

#[tokio::test]
async fn patching_an_unknown_user_is_404_for_staff() {
    let app = spawn_app().await;
    let root = app.superuser().await;
    let staff = app.staff().await;

    for caller in [&root, &staff] {
        let response = patch(
            &app,
            caller,
            9_223_372_036_854_775_807,
            &json!({ "username": "x" }),
        )
        .await;
        assert_problem(response, 404, "user_not_found").await;
    }
}

#[tokio::test]
async fn patching_needs_a_token_and_well_typed_fields() {
    let app = spawn_app().await;
    let me = app.customer().await;
    let path = format!("/users/{}", me.id);

    let anonymous = app
        .request(Method::PATCH, &path)
        .json(&json!({ "username": "x" }));
    assert_problem(send(anonymous).await, 401, "unauthenticated").await;
    for body in [
        json!({ "username": 5 }),
        json!({ "is_staff": "yes" }),
        json!({ "password": ["x"], "current_password": PASSWORD }),
        json!([]),
    ] {
        assert_invalid(&app, &me, me.id, &body, "invalid_body").await;
    }
}
