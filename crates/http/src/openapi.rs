//! The API's OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! attributes and the DTOs' schemas. It is served at `/openapi.json`, rendered at
//! `/docs`, and committed as `docs/openapi.json` (a test fails when that copy is stale;
//! `just openapi` rewrites it).

pub mod params;
pub mod responses;
pub mod schemas;

use std::sync::LazyLock;

use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ArrayBuilder, ObjectBuilder, Schema,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{AllOfBuilder, Ref, RefOr, Required};
use utoipa::{Modify, OpenApi};

use crate::error::{FieldError, ProblemBody};
use crate::routes::{events, health, messages, session, stream, tickets, users, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tickets",
        description = "A customer-support API: customers register, open tickets and write \
            messages; staff read every ticket, reply, and move tickets through their statuses.\n\n\
            Request bodies are JSON (`application/json`, any `*/*+json`, or no `Content-Type`), \
            at most 64 KiB; unknown fields are ignored. Every error is \
            `application/problem+json`. A method that a path does not support gets `405` with \
            an `Allow` header; an unknown path gets `404`. Every response carries \
            `X-Request-Id`.",
        license(name = "MIT", identifier = "MIT"),
    ),
    paths(
        users::register,
        users::list,
        users::get,
        users::update,
        session::login,
        session::logout,
        tickets::open,
        tickets::list,
        tickets::get,
        tickets::set_status,
        tickets::update,
        messages::list,
        messages::post,
        events::history,
        stream::events,
        webhooks::create,
        webhooks::list,
        webhooks::get,
        webhooks::update,
        webhooks::delete,
        webhooks::deliveries,
        health::live,
        health::ready,
        crate::routes::metrics::scrape,
        crate::routes::docs::openapi_json,
        crate::routes::docs::page,
    ),
    components(
        schemas(ProblemBody, FieldError),
        responses(
        responses::BadRequest,
        responses::Unauthorized,
        responses::Forbidden,
        responses::NotFound,
        responses::Conflict,
        responses::PreconditionFailed,
        responses::PayloadTooLarge,
        responses::UnsupportedMediaType,
        responses::UnprocessableContent,
        responses::TooManyRequests,
        responses::InternalServerError,
        responses::ServiceUnavailable,
        responses::NotModified,
    )),
    modifiers(&SecuritySchemes, &PathCorrections, &BodyRules),
    tags(
        (name = "users", description = "Registration and accounts."),
        (name = "session", description = "Logging in and out."),
        (name = "tickets", description = "Tickets: their statuses, priority, assignee, search and history."),
        (name = "messages", description = "A ticket's conversation."),
        (name = "webhooks", description = "Signed deliveries of ticket events to other systems (superusers only)."),
        (name = "health", description = "Probes for orchestrators."),
        (name = "operations", description = "Metrics for Prometheus."),
        (name = "docs", description = "This document."),
    ),
)]
pub struct ApiDoc;

/// `bearer`: the JWT of `POST /login` as `Authorization: Bearer`; `cookie`: the same
/// token in the `token` cookie that login sets.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "The token of `POST /login`. `POST /users` with `isStaff: true` also \
                         takes the staff API key here.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "token",
                "The token of `POST /login`, which sets this cookie (HttpOnly, SameSite=Lax).",
            ))),
        );
    }
}

/// Fixes what the derives get wrong: a path parameter whose schema is written by hand
/// (`/users/{id}`) comes out optional, which OpenAPI forbids.
struct PathCorrections;

impl Modify for PathCorrections {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let operations = openapi.paths.paths.values_mut().flat_map(|item| {
            [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
        });
        for operation in operations {
            for parameter in operation.parameters.iter_mut().flatten() {
                if parameter.parameter_in == ParameterIn::Path {
                    parameter.required = Required::True;
                }
            }
        }
    }
}

/// What the derives cannot say: response objects hold no other fields (so that a
/// leaked field fails the fuzzer's schema check), and a new `password` needs
/// `current_password`.
struct BodyRules;

impl Modify for BodyRules {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        // The derive describes the flattened user as `allOf`, where a closed user
        // object would refuse `tickets`: spell the fields out instead.
        if let Some(RefOr::T(Schema::Object(user))) = components.schemas.get("UserResponse") {
            let mut detail = user.clone();
            detail.description = Some(
                "A user with their tickets, oldest first (paged by `limit` and `cursor`)."
                    .to_owned(),
            );
            let ticket = match components.schemas.get("TicketResponse") {
                Some(RefOr::T(Schema::Object(ticket))) => ticket.example.clone(),
                _ => None,
            };
            if let (Some(serde_json::Value::Object(example)), Some(ticket)) =
                (detail.example.as_mut(), ticket)
            {
                // As a staff caller sees it, like the ticket's example (with `author`).
                example.insert("is_superuser".to_owned(), serde_json::Value::Bool(false));
                example.insert("tickets".to_owned(), serde_json::Value::Array(vec![ticket]));
            }
            detail.properties.insert(
                "tickets".to_owned(),
                ArrayBuilder::new()
                    .items(Ref::from_schema_name("TicketResponse"))
                    .into(),
            );
            detail.required.push("tickets".to_owned());
            components.schemas.insert(
                "UserDetailResponse".to_owned(),
                Schema::Object(detail).into(),
            );
        }
        for name in [
            "UserResponse",
            "UserDetailResponse",
            "TicketResponse",
            "MessageResponse",
            "EventResponse",
            "UserRefResponse",
            "LoginResponse",
            "Problem",
            "FieldError",
            "Health",
            "WebhookResponse",
            "CreatedWebhookResponse",
            "AttemptResponse",
        ] {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(name) {
                object.additional_properties =
                    Some(Box::new(AdditionalProperties::FreeForm(false)));
            }
        }
        if let Some(RefOr::T(patch)) = components.schemas.remove("PatchTicketRequest") {
            let string = || ObjectBuilder::new().schema_type(utoipa::openapi::Type::String);
            let some_field = AnyOfBuilder::new()
                .item(
                    ObjectBuilder::new()
                        .required("status")
                        .property("status", string()),
                )
                .item(
                    ObjectBuilder::new()
                        .required("priority")
                        .property("priority", string()),
                )
                .item(ObjectBuilder::new().required("assignee_id"))
                .description(Some(
                    "At least one field to change: `status` or `priority` (not null), or \
                     `assignee_id` (null unassigns).",
                ));
            let schema = AllOfBuilder::new().item(patch).item(some_field);
            components
                .schemas
                .insert("PatchTicketRequest".to_owned(), schema.into());
        }
        if let Some(RefOr::T(update)) = components.schemas.remove("UpdateUserRequest") {
            let password_needs_current = AnyOfBuilder::new()
                .item(ObjectBuilder::new().property(
                    "password",
                    ObjectBuilder::new().schema_type(utoipa::openapi::Type::Null),
                ))
                .item(
                    ObjectBuilder::new()
                        .required("password")
                        .required("current_password")
                        .property(
                            "current_password",
                            ObjectBuilder::new().schema_type(utoipa::openapi::Type::String),
                        ),
                )
                .description(Some("A new `password` needs `current_password`."));
            let schema = AllOfBuilder::new()
                .item(update)
                .item(password_needs_current);
            components
                .schemas
                .insert("UpdateUserRequest".to_owned(), schema.into());
        }
    }
}

static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    // Serializing a tree of strings, numbers and string-keyed maps cannot fail.
    #[allow(clippy::expect_used)]
    let json = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    format!("{}\n", camel_case_links(&json))
});

/// utoipa 5 writes the fields of a Link Object in snake_case; OpenAPI names them
/// `operationId` and `requestBody`, and tools ignore links without them. No other
/// object of the document has keys of these names.
fn camel_case_links(json: &str) -> String {
    json.replace("\"operation_id\": ", "\"operationId\": ")
        .replace("\"request_body\": ", "\"requestBody\": ")
}

/// The document as pretty-printed JSON, built once.
pub fn pretty_json() -> &'static str {
    &DOCUMENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_copy_is_what_the_code_generates() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        let first_difference = committed
            .lines()
            .zip(pretty_json().lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| "length".to_owned(), |i| format!("line {}", i + 1));
        assert!(
            committed == pretty_json(),
            "docs/openapi.json differs from the generated document ({first_difference}): \
             regenerate it with `just openapi` (cargo run --bin tickets -- openapi > docs/openapi.json) \
             and commit it"
        );
    }

    /// Whether `schema` admits `value`, for the keywords the webhook schemas use; any
    /// other keyword fails the test rather than being ignored.
    fn admits(
        document: &serde_json::Value,
        schema: &serde_json::Value,
        value: &serde_json::Value,
    ) -> bool {
        use serde_json::Value;
        let Value::Object(keywords) = schema else {
            panic!("not a schema: {schema}");
        };
        let count = |rule: &Value| rule.as_u64().and_then(|n| usize::try_from(n).ok());
        keywords
            .iter()
            .all(|(keyword, rule)| match keyword.as_str() {
                "description" | "examples" | "example" => true,
                "$ref" => {
                    let name = rule
                        .as_str()
                        .and_then(|r| r.strip_prefix("#/components/schemas/"))
                        .unwrap_or_else(|| panic!("an unknown reference {rule}"));
                    admits(document, &document["components"]["schemas"][name], value)
                }
                "type" => {
                    let kind = match value {
                        Value::Null => "null",
                        Value::Bool(_) => "boolean",
                        Value::Number(_) => "number",
                        Value::String(_) => "string",
                        Value::Array(_) => "array",
                        Value::Object(_) => "object",
                    };
                    match rule {
                        Value::String(one) => one == kind,
                        Value::Array(any) => any.iter().any(|t| t == kind),
                        _ => panic!("an unknown type {rule}"),
                    }
                }
                "enum" => rule.as_array().is_some_and(|values| values.contains(value)),
                "items" => value
                    .as_array()
                    .is_none_or(|items| items.iter().all(|item| admits(document, rule, item))),
                "minItems" => value
                    .as_array()
                    .is_none_or(|items| Some(items.len()) >= count(rule)),
                "oneOf" | "anyOf" => {
                    let admitted = rule
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|branch| admits(document, branch, value))
                        .count();
                    if keyword == "oneOf" {
                        admitted == 1
                    } else {
                        admitted > 0
                    }
                }
                other => panic!("this check does not know the keyword {other}"),
            })
    }

    /// The fuzzer holds the service to the document: it sends what the document allows
    /// and expects it accepted, and what it forbids and expects `4xx`.
    #[test]
    fn webhook_events_are_described_as_the_service_takes_them() {
        use domain::webhook::EventSelection;
        use serde_json::{json, Value};

        let document: Value = serde_json::from_str(pretty_json()).expect("the document is JSON");
        let schemas = &document["components"]["schemas"];
        let create = &schemas["CreateWebhookRequest"]["properties"]["events"];
        let update = &schemas["UpdateWebhookRequest"]["properties"]["events"];
        let mut words = vec!["*", "ticket.deleted", ""];
        words.extend(domain::event::EventData::TYPE_NAMES);
        // Every list of up to three of these words.
        let mut lists: Vec<Vec<&str>> = vec![vec![]];
        for length in 1..=3 {
            let longer: Vec<Vec<&str>> = lists
                .iter()
                .filter(|list| list.len() == length - 1)
                .flat_map(|list| {
                    words.iter().map(move |word| {
                        let mut list = list.clone();
                        list.push(word);
                        list
                    })
                })
                .collect();
            lists.extend(longer);
        }
        for list in &lists {
            let service = EventSelection::parse(list).is_ok();
            let value = json!(list);
            assert_eq!(admits(&document, create, &value), service, "POST {list:?}");
            assert_eq!(admits(&document, update, &value), service, "PATCH {list:?}");
        }
        assert!(admits(&document, update, &Value::Null), "null leaves them");
        assert!(!admits(&document, create, &Value::Null));
        for response in ["WebhookResponse", "CreatedWebhookResponse"] {
            let events = &schemas[response]["properties"]["events"];
            assert!(admits(&document, events, &json!(["*"])), "{response}");
            assert!(
                !admits(&document, events, &json!(["*", "note.created"])),
                "{response}"
            );
        }
    }

    #[test]
    fn every_operation_has_a_unique_id_and_documents_its_errors() {
        let document = ApiDoc::openapi();
        let mut ids = std::collections::BTreeSet::new();
        for (path, item) in &document.paths.paths {
            for operation in [&item.get, &item.put, &item.post, &item.patch, &item.delete]
                .into_iter()
                .flatten()
            {
                let id = operation.operation_id.clone().unwrap_or_default();
                assert!(
                    ids.insert(id.clone()),
                    "{path}: duplicate operation id {id:?}"
                );
                let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                if secured {
                    assert!(
                        operation.responses.responses.contains_key("401"),
                        "{path} {id}: a secured operation must document 401"
                    );
                }
                if operation.request_body.is_some() {
                    for status in ["400", "413", "415"] {
                        assert!(
                            operation.responses.responses.contains_key(status),
                            "{path} {id}: an operation with a body must document {status}"
                        );
                    }
                }
            }
        }
        assert_eq!(ids.len(), 26, "{ids:?}");
    }
}
