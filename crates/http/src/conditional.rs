//! Conditional requests (RFC 9110 §13) on tickets: the `ETag` of a ticket is its
//! version, `"<version>"`, a strong validator that is the same for every caller who
//! may see the ticket; `If-None-Match` on `GET` answers `304`, and `If-Match` on writes
//! becomes the domain's [`VersionPrecondition`], compared in the statement that writes.

use actix_web::http::header::{self, HeaderValue};
use actix_web::HttpRequest;
use domain::ticket::{TicketVersion, VersionPrecondition};

/// The `ETag` of a ticket at `version`.
pub fn etag(version: TicketVersion) -> String {
    format!("\"{}\"", version.get())
}

/// One entity tag of a list: its opaque part and whether it is weak.
struct EntityTag<'a> {
    weak: bool,
    opaque: &'a str,
}

/// The entity tags of a header's values (`*` is handled by the callers); `None` when a
/// value does not parse.
fn entity_tags<'a>(values: impl Iterator<Item = &'a HeaderValue>) -> Option<Vec<EntityTag<'a>>> {
    let mut tags = Vec::new();
    for value in values {
        for item in value.to_str().ok()?.split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (weak, quoted) = match item.strip_prefix("W/") {
                Some(rest) => (true, rest),
                None => (false, item),
            };
            let opaque = quoted.strip_prefix('"')?.strip_suffix('"')?;
            if opaque.contains('"') {
                return None;
            }
            tags.push(EntityTag { weak, opaque });
        }
    }
    Some(tags)
}

fn is_any(req: &HttpRequest, name: header::HeaderName) -> bool {
    req.headers()
        .get_all(name)
        .any(|v| v.to_str().is_ok_and(|v| v.trim() == "*"))
}

fn version_of(opaque: &str) -> Option<TicketVersion> {
    if opaque.is_empty() || !opaque.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    opaque.parse().ok().and_then(TicketVersion::new)
}

/// `If-Match` as a precondition on the ticket's version. `None` without the header or
/// with `*` (which any existing ticket matches). Comparison is strong: a weak tag, or
/// a value that does not parse, matches no version, so the write fails with `412`.
pub fn if_match(req: &HttpRequest) -> Option<VersionPrecondition> {
    if !req.headers().contains_key(header::IF_MATCH) || is_any(req, header::IF_MATCH) {
        return None;
    }
    let tags = entity_tags(req.headers().get_all(header::IF_MATCH)).unwrap_or_default();
    let versions = tags
        .iter()
        .filter(|tag| !tag.weak)
        .filter_map(|tag| version_of(tag.opaque))
        .collect();
    Some(VersionPrecondition { versions })
}

/// Whether `If-None-Match` matches the ticket at `version` (weak comparison), so that a
/// `GET` answers `304 Not Modified`. A value that does not parse matches nothing.
pub fn none_match(req: &HttpRequest, version: TicketVersion) -> bool {
    if is_any(req, header::IF_NONE_MATCH) {
        return true;
    }
    entity_tags(req.headers().get_all(header::IF_NONE_MATCH))
        .unwrap_or_default()
        .iter()
        .any(|tag| version_of(tag.opaque) == Some(version))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn version(n: i64) -> TicketVersion {
        TicketVersion::new(n).expect("positive")
    }

    fn with(name: header::HeaderName, values: &[&str]) -> HttpRequest {
        let mut req = TestRequest::default();
        for value in values {
            req = req.append_header((name.clone(), *value));
        }
        req.to_http_request()
    }

    #[test]
    fn if_match_compares_strongly_and_refuses_what_it_cannot_read() {
        let admitted =
            |values: &[&str]| if_match(&with(header::IF_MATCH, values)).map(|p| p.versions);
        assert_eq!(admitted(&[]), None);
        assert_eq!(admitted(&["*"]), None);
        assert_eq!(admitted(&["\"3\""]), Some(vec![version(3)]));
        assert_eq!(
            admitted(&["\"3\", \"5\"", "\"7\""]),
            Some(vec![version(3), version(5), version(7)])
        );
        assert_eq!(admitted(&["W/\"3\""]), Some(vec![]));
        for junk in ["3", "\"x\"", "\"0\"", "\"-1\"", "\"3", "\"\"", "\"1\"2\""] {
            assert_eq!(admitted(&[junk]), Some(vec![]), "{junk}");
        }
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let matches =
            |values: &[&str], n: i64| none_match(&with(header::IF_NONE_MATCH, values), version(n));
        assert!(matches(&["\"3\""], 3));
        assert!(matches(&["W/\"3\""], 3));
        assert!(matches(&["\"1\", \"3\""], 3));
        assert!(matches(&["*"], 9));
        assert!(!matches(&["\"4\""], 3));
        assert!(!matches(&[], 3));
        assert!(!matches(&["3"], 3));
        assert_eq!(etag(version(12)), "\"12\"");
    }
}
