//! Schemas of the request fields that the domain's value types validate, written so that
//! the document accepts exactly what they accept (a fuzzer holds the service to it), and
//! the closed vocabularies (statuses, message types).
//!
//! Lengths are in characters (Unicode scalar values), as in JSON Schema. Fields that
//! the service trims are checked after trimming, so white space around them is allowed.

use domain::webhook::{EventSelection, WebhookUrl};
use serde_json::json;
use utoipa::openapi::schema::{
    ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// What `str::trim` removes (Unicode `White_Space`), as the body of a regex class.
const WHITE_SPACE: &str = domain::values::WHITE_SPACE_CLASS;

/// What an e-mail address may not hold besides white space: control characters and
/// the specials of RFC 5322.
const EMAIL_FORBIDDEN: &str = r#"\u0000-\u001f\u007f-\u009f@<>()\[\]\\,;:""#;

/// Any text without a NUL character (PostgreSQL cannot store one).
fn no_nul() -> String {
    r"^[^\u0000]*$".to_owned()
}

/// Not only white space, and no NUL. The first non-blank character is matched
/// explicitly so that checking a long string never backtracks.
fn not_blank() -> String {
    format!(r"^[{WHITE_SPACE}]*[^\u0000{WHITE_SPACE}][^\u0000]*$")
}

/// 1 to `max` characters after trimming white space, and no NUL: the trimmed text
/// starts and ends with a character that is not white space. A length limit on the
/// whole string could not say this, since the service trims before counting.
fn trimmed(max: usize) -> String {
    let inner = max - 2;
    format!(
        r"^[{WHITE_SPACE}]*[^\u0000{WHITE_SPACE}]([^\u0000]{{0,{inner}}}[^\u0000{WHITE_SPACE}])?[{WHITE_SPACE}]*$"
    )
}

/// `local@domain` as `Email::parse` takes it, without lookarounds (which generators
/// cannot follow): white space around it; at most 64 characters before the `@` and 254
/// in all (the domain is held to 189 so that the pattern can count); no part starting
/// or ending with a dot; a domain that does not start with `-`. The one rule left out is
/// that no part may hold two dots in a row.
fn email_pattern() -> String {
    let char = format!("[^{WHITE_SPACE}{EMAIL_FORBIDDEN}]");
    let edge = format!("[^.{WHITE_SPACE}{EMAIL_FORBIDDEN}]");
    let first = format!(r"[^.\-{WHITE_SPACE}{EMAIL_FORBIDDEN}]");
    format!(
        r"^[{WHITE_SPACE}]*{edge}({char}{{0,62}}{edge})?@{first}({char}{{0,187}}{edge})?[{WHITE_SPACE}]*$"
    )
}

fn text(description: &str, pattern: String, example: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(Some(pattern))
        .examples([example])
}

/// The same schema, also accepting `null` (which serde reads as an absent field).
fn or_null(schema: ObjectBuilder) -> ObjectBuilder {
    schema.schema_type(SchemaType::from_iter([Type::String, Type::Null]))
}

pub fn email() -> ObjectBuilder {
    text(
        "A plain address `local@domain` (no display name), at most 254 characters, no \
         two dots in a row. Unique without regard to case; white space around it is \
         trimmed.",
        email_pattern(),
        "user@post.io",
    )
}

pub fn username() -> ObjectBuilder {
    text(
        "1 to 64 characters after trimming white space.",
        trimmed(64),
        "michelle",
    )
}

pub fn optional_username() -> ObjectBuilder {
    or_null(username())
}

pub fn new_password() -> ObjectBuilder {
    // 72 bytes are at least 72 characters: the schema can only count characters.
    text(
        "At least 8 characters and at most 72 bytes in UTF-8 (bcrypt's limit): a longer \
         password is refused, never truncated.",
        no_nul(),
        "correct horse",
    )
    .min_length(Some(8))
    .max_length(Some(72))
}

pub fn optional_new_password() -> ObjectBuilder {
    or_null(new_password())
}

/// A credential that is compared, not validated.
pub fn credential() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(no_nul()))
}

pub fn optional_credential() -> ObjectBuilder {
    or_null(credential()).description(Some("The password the user has now."))
}

pub fn topic() -> ObjectBuilder {
    text(
        "1 to 20 characters after trimming white space.",
        trimmed(20),
        "new discount",
    )
}

pub fn message_text() -> ObjectBuilder {
    text(
        "1 to 10,000 characters, not only white space; kept as written.",
        not_blank(),
        "Is the discount still on?",
    )
    .min_length(Some(1))
    .max_length(Some(10_000))
}

/// A status to set, or `null` (or absent) to leave it.
pub fn optional_status() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(["pending", "resolved", "unresolved", "canceled"]))
        .description(Some(
            "The status to set (see the operation for who may set which), or null to leave it.",
        ))
}

/// A priority to set, or `null` (or absent) to leave it.
pub fn optional_priority() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(["low", "normal", "high", "urgent"]))
        .description(Some(
            "Staff only: the priority to set, or null to leave it.",
        ))
}

/// A user id to assign, or `null` to unassign.
pub fn assignee_id() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
            utoipa::openapi::schema::KnownFormat::Int64,
        )))
        .description(Some(
            "Staff only: the id of an active member of staff to assign the ticket to \
             (anything else gets `400` `assignee_invalid`), or null to unassign.",
        ))
}

/// A boolean that may also be `null` (read as absent).
pub fn optional_flag() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Boolean, Type::Null]))
        .default(Some(serde_json::Value::Bool(false)))
}

/// A ticket's priority. New tickets are `normal`.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

/// The type of a ticket event (see `GET /tickets/{id}/events`).
#[derive(ToSchema)]
pub enum EventType {
    #[schema(rename = "ticket.created")]
    TicketCreated,
    #[schema(rename = "message.created")]
    MessageCreated,
    #[schema(rename = "note.created")]
    NoteCreated,
    #[schema(rename = "ticket.status_changed")]
    StatusChanged,
    #[schema(rename = "ticket.priority_changed")]
    PriorityChanged,
    #[schema(rename = "ticket.assigned")]
    Assigned,
}

/// A webhook's `events`, as `EventSelection::parse` takes them: `"*"` stands alone, so
/// the document offers two kinds of list rather than one list of both (which let the
/// fuzzer send `["message.created", "*"]` and expect it accepted).
pub struct WebhookEvents;

impl PartialSchema for WebhookEvents {
    fn schema() -> RefOr<Schema> {
        let every = ArrayBuilder::new()
            .items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([EventSelection::ALL])),
            )
            .min_items(Some(1))
            .description(Some(
                "`[\"*\"]`: every type, internal notes and types added later included \
                 (`\"*\"` repeated counts once).",
            ));
        let some = ArrayBuilder::new()
            .items(Ref::from_schema_name(EventType::name()))
            .min_items(Some(1))
            .description(Some("These types; a type listed twice counts once."));
        OneOfBuilder::new()
            .item(every)
            .item(some)
            .description(Some(
                "The event types delivered: `[\"*\"]` for all of them, or History event types. \
                 `\"*\"` stands alone: a list that mixes it with types, an empty list or an \
                 unknown type gets `400` `events_invalid`.",
            ))
            .examples([json!(["ticket.status_changed"]), json!(["*"])])
            .into()
    }
}

impl ToSchema for WebhookEvents {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((EventType::name().into_owned(), EventType::schema()));
    }
}

/// A ticket's status. `pending` is where every ticket starts; `canceled` is final.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum TicketStatus {
    Pending,
    Resolved,
    Unresolved,
    Canceled,
}

/// `request` is written by a customer, `response` by staff, `note` by staff for staff
/// only (internal), `other` by the system.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum MessageType {
    Request,
    Response,
    Note,
    Other,
}

/// Always `Bearer`.
#[derive(ToSchema)]
pub enum BearerTokenType {
    Bearer,
}

/// The answer of the health probes.
#[derive(ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct Health {
    #[schema(inline)]
    pub status: HealthStatus,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
}

/// A webhook's `url`, with the domain's own pattern (`WebhookUrl::pattern`): the one
/// regular expression both the document and the service check.
pub fn webhook_url() -> ObjectBuilder {
    text(
        "Where deliveries are POSTed: an absolute `http` or `https` URL whose host is a \
         DNS name in ASCII (letters, digits, `-` and `_`, no `-` at either end of a label; \
         an internationalized name in its `xn--` form, which must be valid Punycode) \
         whose last label starts with a letter, an IPv4 address in dotted decimal, or an \
         IPv6 address in brackets; a port of at most 65535 if any; no user name or \
         password; at most 2048 characters as sent and once normalized (percent-encoded). \
         Anything else gets `400` (`url_scheme_unsupported` for another scheme, else \
         `url_invalid`).",
        WebhookUrl::pattern().to_owned(),
        "https://hooks.example.com/tickets",
    )
    .max_length(Some(WebhookUrl::MAX_LEN))
}

/// [`webhook_url`], or `null` (read as absent).
pub fn optional_webhook_url() -> ObjectBuilder {
    or_null(webhook_url())
}

/// A webhook's `description`.
pub fn webhook_description() -> ObjectBuilder {
    text(
        "A note for people, at most 1000 characters.",
        no_nul(),
        "Our CRM",
    )
    .max_length(Some(1000))
}

/// [`webhook_description`], or `null` (read as absent).
pub fn optional_webhook_description() -> ObjectBuilder {
    or_null(webhook_description())
}
