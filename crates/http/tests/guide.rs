//! The API guide for people (`docs/api.md`) agrees with the service: every operation of
//! the OpenAPI document (`docs/openapi.json`, which another test keeps equal to the
//! code's) has a section in the guide, headed like "#### `GET /tickets/{id}`"; the guide
//! has no such section for a route that does not exist; and the guide's error table
//! lists every problem `code` the service can return, with its status.

// A test that cannot go on should stop with a reason. `allow-expect-in-tests` covers
// only `#[test]` functions, not the helpers they share.
#![allow(clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use http_adapter::error::ErrorKind;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(relative: &str) -> String {
    let path = repository().join(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// "GET /tickets/{id}" for every operation of the OpenAPI document.
fn openapi_operations() -> BTreeSet<String> {
    let document: serde_json::Value =
        serde_json::from_str(&read("docs/openapi.json")).expect("docs/openapi.json is JSON");
    let paths = document["paths"]
        .as_object()
        .expect("docs/openapi.json has paths");
    let mut operations = BTreeSet::new();
    for (path, item) in paths {
        for method in METHODS {
            if item.get(method).is_some() {
                operations.insert(format!("{} {path}", method.to_ascii_uppercase()));
            }
        }
    }
    operations
}

/// The routes that the guide's headings name, such as "#### `GET /tickets/{id}`".
fn guide_sections(guide: &str) -> BTreeSet<String> {
    guide
        .lines()
        .filter(|line| line.starts_with('#'))
        .flat_map(|line| line.split('`').skip(1).step_by(2))
        .filter(|span| {
            span.split_once(' ').is_some_and(|(method, path)| {
                METHODS.contains(&method.to_ascii_lowercase().as_str())
                    && method == method.to_ascii_uppercase()
                    && path.starts_with('/')
                    && !path.contains(' ')
            })
        })
        .map(str::to_owned)
        .collect()
}

/// The guide's error table: rows such as "| 409 | `email_taken` | … |", code → status.
fn guide_error_table(guide: &str) -> BTreeMap<String, u16> {
    let mut table = BTreeMap::new();
    for line in guide.lines().filter(|line| line.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(status), Some(code)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        let (Ok(status), Some(code)) = (
            status.parse::<u16>(),
            code.strip_prefix('`').and_then(|c| c.strip_suffix('`')),
        ) else {
            continue;
        };
        if let Some(earlier) = table.insert(code.to_owned(), status) {
            panic!("the error table lists `{code}` twice ({earlier} and {status})");
        }
    }
    table
}

/// The codes and statuses of every `ErrorKind` but `Validation` (whose codes the domain
/// chooses, see `validation_codes`): variant → (code, status).
///
/// `ErrorKind` has no public list of its variants (no `ALL`, no iterator), so a test
/// outside the crate cannot enumerate them, and a copy of the enum here would be one
/// more list to keep in step. So the two matches of `crates/http/src/error.rs`, `fn code`
/// (`Variant => "code",`) and `fn status` (`A | B => StatusCode::NAME,`), are read as
/// text, and spot checks against the real `code()` and `status()` make sure that the
/// reading still works. An `ErrorKind::ALL` in `error.rs` would let this test call them.
fn error_kinds() -> BTreeMap<String, (String, u16)> {
    let source = read("crates/http/src/error.rs");
    let body = |function: &str| -> String {
        let start = source
            .find(function)
            .unwrap_or_else(|| panic!("error.rs has no `{function}`"));
        let rest = &source[start..];
        let end = rest.find("\n    }\n").expect("the end of the function");
        rest[..end].to_owned()
    };

    let mut codes = BTreeMap::new();
    for line in body("pub fn code(self)").lines() {
        let Some((variant, code)) = line.trim().split_once(" => \"") else {
            continue;
        };
        let code = code.trim_end_matches(',').trim_end_matches('"');
        codes.insert(variant.to_owned(), code.to_owned());
    }

    // Each `StatusCode::NAME` ends an arm: it applies to the variants named since the
    // previous one. NAME is matched to a number by its reason phrase.
    let status_named = |name: &str| -> u16 {
        (100..600)
            .filter_map(|n| actix_web::http::StatusCode::from_u16(n).ok())
            .find(|s| {
                s.canonical_reason()
                    .is_some_and(|r| r.to_ascii_uppercase().replace(' ', "_") == name)
            })
            .unwrap_or_else(|| panic!("no status is named {name}"))
            .as_u16()
    };
    let status_body = body("pub fn status(self)");
    let arms = status_body
        .split_once("match self {")
        .expect("fn status matches on self")
        .1;
    let mut statuses = BTreeMap::new();
    let mut pending = Vec::new();
    for word in arms.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
        if let Some(name) = word.strip_prefix("StatusCode::") {
            let status = status_named(name);
            for variant in pending.drain(..) {
                statuses.insert(variant, status);
            }
        } else if word.starts_with(|c: char| c.is_ascii_uppercase()) {
            pending.push(word.to_owned());
        }
    }

    // Both matches are exhaustive, so they name the same variants; one that only
    // `fn status` names has a code arm this reading missed.
    let unread: Vec<_> = statuses
        .keys()
        .filter(|variant| *variant != "Validation" && !codes.contains_key(*variant))
        .collect();
    assert!(
        unread.is_empty(),
        "no code read from error.rs for {unread:?}"
    );
    let mut kinds = BTreeMap::new();
    for (variant, code) in codes {
        let status = *statuses
            .get(&variant)
            .unwrap_or_else(|| panic!("fn status of error.rs has no arm for {variant}"));
        kinds.insert(variant, (code, status));
    }
    // If error.rs changes shape, fail here rather than check less than everything.
    let spot_checks = [
        ("MalformedJson", ErrorKind::MalformedJson),
        ("StaffKeyRequired", ErrorKind::StaffKeyRequired),
        ("EmailTaken", ErrorKind::EmailTaken),
        ("PreconditionFailed", ErrorKind::PreconditionFailed),
        ("IdempotencyKeyReused", ErrorKind::IdempotencyKeyReused),
        ("Internal", ErrorKind::Internal),
    ];
    for (variant, kind) in spot_checks {
        assert_eq!(
            kinds.get(variant),
            Some(&(kind.code().to_owned(), kind.status().as_u16())),
            "reading error.rs as text no longer gives {variant}'s code and status"
        );
    }
    assert!(
        kinds.len() > 30,
        "too few kinds read from error.rs: {kinds:?}"
    );
    kinds
}

fn rust_files(directory: &Path, files: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(directory)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", directory.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

/// The codes of `ErrorKind::Validation`. The value types choose them where they refuse
/// input, as the second argument of `ValidationError::new(field, "code", message)` or of
/// `check_char_count(field, "code", …)`, and neither crate has a list of them that a
/// test could call. So they are read from the sources as text (code under `#[cfg(test)]`
/// left out); an argument that is not a string literal is skipped: that is the one call
/// inside `check_char_count`, which passes its caller's code on.
fn validation_codes() -> BTreeSet<String> {
    let mut files = Vec::new();
    for crate_dir in ["crates/domain/src", "crates/http/src"] {
        rust_files(&repository().join(crate_dir), &mut files);
    }
    let mut codes = BTreeSet::new();
    for file in files {
        let source = fs::read_to_string(&file).expect("a source file");
        let source = source.split("#[cfg(test)]").next().unwrap_or_default();
        for call in ["ValidationError::new(", "check_char_count("] {
            for (at, _) in source.match_indices(call) {
                let arguments = &source[at + call.len()..];
                let Some((_, rest)) = arguments.split_once(',') else {
                    continue;
                };
                let Some(literal) = rest.trim_start().strip_prefix('"') else {
                    continue;
                };
                let code = literal.split('"').next().unwrap_or_default();
                assert!(
                    !code.is_empty()
                        && code
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                    "{}: `{code}` after {call} is not a code",
                    file.display()
                );
                codes.insert(code.to_owned());
            }
        }
    }
    // If the sources change shape, fail here rather than check nothing.
    for known in ["password_too_short", "topic_invalid", "limit_invalid"] {
        assert!(
            codes.contains(known),
            "the scan of the sources no longer finds `{known}`; found {codes:?}"
        );
    }
    codes
}

/// Every problem code the service can return, with its status.
fn service_codes() -> BTreeMap<String, u16> {
    let mut codes: BTreeMap<String, u16> = error_kinds().into_values().collect();
    let validation_status = ErrorKind::Validation("").status().as_u16();
    for code in validation_codes() {
        codes.insert(code, validation_status);
    }
    codes
}

#[test]
fn every_operation_of_the_openapi_document_has_a_section_in_the_guide() {
    let operations = openapi_operations();
    assert!(operations.len() > 10, "too few operations: {operations:?}");
    let sections = guide_sections(&read("docs/api.md"));
    let missing: Vec<_> = operations.difference(&sections).collect();
    assert!(
        missing.is_empty(),
        "docs/api.md has no heading such as \"#### `GET /tickets/{{id}}`\" for: {missing:?}"
    );
}

#[test]
fn the_guide_has_no_section_for_a_route_that_does_not_exist() {
    let operations = openapi_operations();
    let sections = guide_sections(&read("docs/api.md"));
    let unknown: Vec<_> = sections.difference(&operations).collect();
    assert!(
        unknown.is_empty(),
        "docs/api.md has sections for routes that docs/openapi.json lacks: {unknown:?}"
    );
}

#[test]
fn the_error_table_of_the_guide_lists_every_code_with_its_status() {
    let table = guide_error_table(&read("docs/api.md"));
    let service = service_codes();
    let missing: Vec<_> = service
        .iter()
        .filter(|(code, _)| !table.contains_key(*code))
        .collect();
    assert!(
        missing.is_empty(),
        "the error table of docs/api.md lacks (code, status): {missing:?}"
    );
    let wrong_status: Vec<_> = service
        .iter()
        .filter_map(|(code, status)| {
            let listed = table.get(code)?;
            (listed != status).then_some((code, listed, status))
        })
        .collect();
    assert!(
        wrong_status.is_empty(),
        "the error table of docs/api.md has the wrong status for (code, listed, actual): \
         {wrong_status:?}"
    );
    let unknown: Vec<_> = table
        .keys()
        .filter(|code| !service.contains_key(*code))
        .collect();
    assert!(
        unknown.is_empty(),
        "the error table of docs/api.md lists codes the service never returns: {unknown:?}"
    );
}
