//! Pagination at the HTTP edge: the `limit` and `cursor` query parameters, opaque
//! signed cursors, and the `Link: <…>; rel="next"` header.
//!
//! A cursor is the sort key of the last row of a page plus the list it belongs to,
//! signed with an HMAC (a key derived from the JWT secret), in URL-safe base64. A
//! cursor that was altered, or that belongs to another list or order, gets 400.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use domain::page::{CreatedKey, PageLimit, PageRequest, UsersKey};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use time::OffsetDateTime;

use crate::error::{ApiError, ErrorKind};

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the HMAC tag kept in a cursor: 128 bits resist forgery and keep URLs short.
const TAG_BYTES: usize = 16;

/// Which list a cursor continues; a cursor is valid only for its own list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CursorScope {
    TicketsAscending,
    TicketsDescending,
    Messages(i64),
    Events(i64),
    UserTickets(i64),
    Users,
    Webhooks,
    /// A webhook's attempts, newest first.
    Attempts(i64),
}

impl CursorScope {
    fn label(&self) -> String {
        match self {
            CursorScope::TicketsAscending => "ta".to_owned(),
            CursorScope::TicketsDescending => "td".to_owned(),
            CursorScope::Messages(ticket) => format!("m{ticket}"),
            CursorScope::Events(ticket) => format!("e{ticket}"),
            CursorScope::UserTickets(user) => format!("u{user}"),
            CursorScope::Users => "users".to_owned(),
            CursorScope::Webhooks => "w".to_owned(),
            CursorScope::Attempts(webhook) => format!("a{webhook}"),
        }
    }
}

pub struct CursorCodec {
    key: Vec<u8>,
}

impl CursorCodec {
    /// Derives the cursor key from the server's secret, so cursors differ from tokens.
    pub fn new(secret: &[u8]) -> Self {
        let key = keyed(secret, b"tickets pagination cursor v1");
        Self { key }
    }

    // HMAC takes keys of any length, so `new_from_slice` cannot fail.
    #[allow(clippy::expect_used)]
    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC accepts any key length")
    }

    fn encode(&self, scope: &CursorScope, first: i128, second: i64) -> String {
        let payload = format!("{}|{first}|{second}", scope.label());
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let tag = mac.finalize().into_bytes();
        let mut bytes = payload.into_bytes();
        bytes.extend_from_slice(&tag[..TAG_BYTES]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn decode(&self, scope: &CursorScope, raw: &str) -> Result<(i128, i64), ApiError> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid_cursor())?;
        if bytes.len() <= TAG_BYTES {
            return Err(invalid_cursor());
        }
        let (payload, tag) = bytes.split_at(bytes.len() - TAG_BYTES);
        let mut mac = self.mac();
        mac.update(payload);
        mac.verify_truncated_left(tag)
            .map_err(|_| invalid_cursor())?;
        let payload = std::str::from_utf8(payload).map_err(|_| invalid_cursor())?;
        let mut parts = payload.split('|');
        let (Some(label), Some(first), Some(second), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid_cursor());
        };
        if label != scope.label() {
            return Err(invalid_cursor());
        }
        let first = first.parse().map_err(|_| invalid_cursor())?;
        let second = second.parse().map_err(|_| invalid_cursor())?;
        Ok((first, second))
    }

    pub fn encode_created(&self, scope: &CursorScope, key: CreatedKey) -> String {
        self.encode(scope, key.created_at.unix_timestamp_nanos(), key.id)
    }

    pub fn decode_created(&self, scope: &CursorScope, raw: &str) -> Result<CreatedKey, ApiError> {
        let (nanos, id) = self.decode(scope, raw)?;
        let created_at =
            OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| invalid_cursor())?;
        Ok(CreatedKey { created_at, id })
    }

    /// A cursor after the row with this id, for lists ordered by id alone.
    pub fn encode_id(&self, scope: &CursorScope, id: i64) -> String {
        self.encode(scope, 0, id)
    }

    pub fn decode_id(&self, scope: &CursorScope, raw: &str) -> Result<i64, ApiError> {
        match self.decode(scope, raw)? {
            (0, id) => Ok(id),
            _ => Err(invalid_cursor()),
        }
    }

    /// The error of a cursor that does not decode to a key of its list.
    pub fn invalid(&self) -> ApiError {
        invalid_cursor()
    }

    pub fn encode_users(&self, key: UsersKey) -> String {
        self.encode(&CursorScope::Users, i128::from(key.tickets_count), key.id)
    }

    pub fn decode_users(&self, raw: &str) -> Result<UsersKey, ApiError> {
        let (count, id) = self.decode(&CursorScope::Users, raw)?;
        let tickets_count = i64::try_from(count).map_err(|_| invalid_cursor())?;
        Ok(UsersKey { tickets_count, id })
    }
}

#[allow(clippy::expect_used)]
fn keyed(secret: &[u8], label: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(label);
    mac.finalize().into_bytes().to_vec()
}

fn invalid_cursor() -> ApiError {
    ApiError::new(
        ErrorKind::CursorInvalid,
        "The parameter `cursor` is not a cursor this list handed out.",
    )
}

/// Parses `limit` and `cursor` into a page request with `decode` for the cursor. An
/// empty `cursor` is no cursor: the first page.
pub fn page_request<K>(
    limit: Option<&str>,
    cursor: Option<&str>,
    decode: impl FnOnce(&str) -> Result<K, ApiError>,
) -> Result<PageRequest<K>, ApiError> {
    let limit = match limit {
        Some(raw) => PageLimit::parse(raw)?,
        None => PageLimit::default(),
    };
    let after = cursor
        .filter(|raw| !raw.is_empty())
        .map(decode)
        .transpose()?;
    Ok(PageRequest { limit, after })
}

/// A `200` with the rows as a bare JSON array and, when more rows exist, a `Link`
/// header to the next page: this request's own path and query with a new `cursor`.
pub fn page_response<T: Serialize>(
    req: &HttpRequest,
    items: &[T],
    next_cursor: Option<String>,
) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    if let Some(cursor) = next_cursor {
        response.insert_header(next_link(req, &cursor));
    }
    response.json(items)
}

/// The `Link` header to the next page.
pub fn next_link(req: &HttpRequest, cursor: &str) -> (header::HeaderName, String) {
    let mut query: Vec<&str> = req
        .query_string()
        .split('&')
        .filter(|pair| !pair.is_empty() && *pair != "cursor" && !pair.starts_with("cursor="))
        .collect();
    let cursor_pair = format!("cursor={cursor}");
    query.push(&cursor_pair);
    let link = format!("<{}?{}>; rel=\"next\"", req.path(), query.join("&"));
    (header::LINK, link)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn cursors_round_trip_and_refuse_tampering() {
        let codec = CursorCodec::new(b"0123456789abcdef0123456789abcdef");
        let key = CreatedKey {
            created_at: datetime!(2026-11-28 11:14:10.516402 UTC),
            id: 77,
        };
        let scope = CursorScope::TicketsAscending;
        let cursor = codec.encode_created(&scope, key);
        assert_eq!(codec.decode_created(&scope, &cursor).ok(), Some(key));
        assert!(codec
            .decode_created(&CursorScope::TicketsDescending, &cursor)
            .is_err());
        assert!(codec
            .decode_created(&CursorScope::Messages(1), &cursor)
            .is_err());
        let other = CursorCodec::new(b"another secret of thirty-two bytes!");
        assert!(other.decode_created(&scope, &cursor).is_err());
        let mut bytes = URL_SAFE_NO_PAD.decode(&cursor).expect("base64");
        bytes[3] ^= 1;
        assert!(codec
            .decode_created(&scope, &URL_SAFE_NO_PAD.encode(bytes))
            .is_err());
        for junk in ["", "!!!", "abc", "dGE"] {
            assert!(codec.decode_created(&scope, junk).is_err());
        }
        let users = UsersKey {
            tickets_count: 5,
            id: 9,
        };
        assert_eq!(
            codec.decode_users(&codec.encode_users(users)).ok(),
            Some(users)
        );
    }
}
