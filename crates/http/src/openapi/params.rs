//! Path and query parameters as the document describes them. Handlers read them as
//! strings (so that any malformed value gets the contract's status), which is why these
//! types exist only for their shape.
#![allow(dead_code)]

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
use utoipa::IntoParams;

use super::schemas::{Priority, TicketStatus};

/// `/tickets/{id}` and below.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TicketPath {
    /// The ticket's id. Anything but a positive 64-bit integer gets `404`, as does a
    /// ticket the caller may not see.
    #[param(minimum = 1, example = 10)]
    id: i64,
}

/// `/webhooks/{id}` and below.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WebhookPath {
    /// The webhook's id. Anything but a positive 64-bit integer gets `404`.
    #[param(minimum = 1, example = 1)]
    id: i64,
}

/// `/users/{id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UserPath {
    /// The user's id, or `me` for the caller. Anything else gets `404`.
    #[param(required = true, schema_with = user_id, example = 2)]
    id: String,
}

fn user_id() -> OneOfBuilder {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(1)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["me"])),
        )
}

/// Pagination of every list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// How many rows to return.
    #[param(
        required = false,
        minimum = 1,
        maximum = 1000,
        default = 100,
        example = 20
    )]
    limit: u16,
    /// Where to continue: copy it from the `Link` header of the previous page. Empty is
    /// the first page; any other value gets `400`.
    #[param(required = false)]
    cursor: String,
}

/// The filters of `GET /tickets`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TicketFilterParams {
    /// Only tickets in one of these statuses, comma-separated: `status=pending,unresolved`.
    #[param(required = false, style = Form, explode = false, min_items = 1, inline)]
    status: Vec<TicketStatus>,
    /// By creation time, oldest first (`asc`) or newest first (`desc`).
    #[param(required = false, inline, default = "asc")]
    order: SortOrder,
    /// Staff only (ignored for customers): only the tickets of the author with this
    /// e-mail address.
    // No NUL, as everywhere (a `schema_with` here would drop this description).
    #[param(required = false, pattern = r"^[^\u0000]*$", example = "user@post.io")]
    author: String,
    /// Staff only (ignored for customers): `me`, `none` (unassigned) or a user id.
    #[param(
        required = false,
        pattern = r"^(me|none|[1-9][0-9]{0,18})$",
        example = "me"
    )]
    assignee: String,
    /// Only tickets of one of these priorities, comma-separated: `priority=high,urgent`.
    #[param(required = false, style = Form, explode = false, min_items = 1, inline)]
    priority: Vec<Priority>,
    /// Full-text search of the topic and the messages (English stemming; quoted phrases,
    /// `or`, `-word`). Blank is no search.
    #[param(
        required = false,
        max_length = 256,
        pattern = r"^[^\u0000]*$",
        example = "charged twice"
    )]
    q: String,
}

/// `If-Match` on a write to a ticket.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IfMatchHeader {
    /// The ticket's `ETag` (`"<version>"`) as last read: the write happens only if the
    /// ticket is still at that version, else `412`. `*` matches any ticket.
    #[param(rename = "If-Match", required = false, example = "\"3\"")]
    if_match: String,
}

/// `If-None-Match` on reading a ticket.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IfNoneMatchHeader {
    /// The `ETag` of the copy the client has: `304` when it is still current.
    #[param(rename = "If-None-Match", required = false, example = "\"3\"")]
    if_none_match: String,
}

/// `Idempotency-Key` on a write that creates something.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKeyHeader {
    /// 1 to 255 visible ASCII characters, chosen by the client for this one request
    /// (a UUID, say), remembered for 24 hours: a repeat of the same request gets the
    /// first response again, another request with the key gets `422`, a repeat while
    /// the first still runs gets `409`.
    #[param(
        rename = "Idempotency-Key",
        required = false,
        min_length = 1,
        max_length = 255,
        pattern = r"^[\x21-\x7e]+$",
        example = "8e03978e-40d5-43e8-bc93-6894a57f9324"
    )]
    idempotency_key: String,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum SortOrder {
    Asc,
    Desc,
}

/// What `GET /events` carries and where it starts.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Only this ticket's events (`404` if the caller may not see it).
    #[param(required = false, minimum = 1, example = 10)]
    ticket_id: i64,
    /// Resume after this event, as the `Last-Event-ID` header does (the header wins);
    /// `0` starts from the first event.
    #[param(required = false, minimum = 0, example = 981)]
    last_event_id: i64,
}
