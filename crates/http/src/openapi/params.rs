//! Path and query parameters as the document describes them. Handlers read them as
//! strings (so that any malformed value gets the contract's status), which is why these
//! types exist only for their shape.
#![allow(dead_code)]

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
use utoipa::IntoParams;

use super::schemas::TicketStatus;

/// `/tickets/{id}` and below.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TicketPath {
    /// The ticket's id. Anything but a positive 64-bit integer gets `404`, as does a
    /// ticket the caller may not see.
    #[param(minimum = 1, example = 10)]
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
    /// Where to continue: copy it from the `Link` header of the previous page. Any
    /// other value gets `400`.
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
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum SortOrder {
    Asc,
    Desc,
}
