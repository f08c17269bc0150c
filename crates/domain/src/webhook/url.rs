use std::net::IpAddr;
use std::sync::LazyLock;

use regex::Regex;
use url::{Host, Url};

use crate::values::{reject_nul, WHITE_SPACE_CLASS};
use crate::ValidationError;

/// Where a subscription's deliveries go: an absolute `http` or `https` URL as
/// [`WebhookUrl::pattern`] spells it (white space around it, a host that is a DNS name
/// in ASCII, an IPv4 address in dotted decimal or an IPv6 address, a port up to 65535,
/// no user name or password), of at most 2048 characters as sent and once normalized
/// (as the WHATWG URL standard spells it: lower-case scheme and host, percent-encoding).
/// Credentials are refused because the signature authenticates a delivery, and
/// credentials in the URL would be shown by every read of the subscription and could
/// reach logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(Url);

/// The URL's syntax, unanchored (see [`WebhookUrl::pattern`]).
static SYNTAX: LazyLock<String> = LazyLock::new(syntax);
static PATTERN: LazyLock<String> = LazyLock::new(|| format!("^{}$", *SYNTAX));
static MATCHER: LazyLock<Regex> = LazyLock::new(matcher);

// The pattern is built from constants alone, and a test compiles it.
#[allow(clippy::expect_used)]
fn matcher() -> Regex {
    Regex::new(&PATTERN).expect("the URL pattern compiles")
}

impl WebhookUrl {
    pub const MAX_LEN: usize = 2048;

    /// A URL given by a client.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        reject_nul("url", raw)?;
        if raw.chars().count() > Self::MAX_LEN {
            return Err(invalid(
                "The field `url` must hold at most 2048 characters.",
            ));
        }
        let url = Self::parse_url(raw)?;
        if !MATCHER.is_match(raw) {
            return Err(invalid(
                "The field `url` must name its host by a DNS name in ASCII (letters, \
                 digits, `-` and `_`; an internationalized name in its `xn--` form) whose \
                 last label starts with a letter, by an IPv4 address in dotted decimal, or \
                 by an IPv6 address in brackets, with a port of at most 65535 if any.",
            ));
        }
        if url.as_str().len() > Self::MAX_LEN {
            return Err(invalid(
                "The field `url` must hold at most 2048 characters once normalized \
                 (percent-encoded).",
            ));
        }
        Ok(Self(url))
    }

    /// A URL that [`WebhookUrl::parse`] took when it was stored, under the rules of its
    /// time: those of new URLs may have grown stricter since, and a subscription that
    /// was valid stays readable and keeps its deliveries.
    pub fn from_stored(stored: &str) -> Result<Self, ValidationError> {
        Self::parse_url(stored).map(Self)
    }

    /// The syntax that [`WebhookUrl::parse`] takes, as a regular expression that JSON
    /// Schema (ECMA-262), Python and the `regex` crate read alike (no lookaround, no
    /// backreference), for the OpenAPI document: it states every rule but two, which
    /// no regular expression can, that an `xn--` label is valid Punycode and the
    /// length once normalized.
    pub fn pattern() -> &'static str {
        &PATTERN
    }

    /// Parsed by the WHATWG rules: an `http` or `https` URL with a host and without
    /// credentials.
    fn parse_url(raw: &str) -> Result<Url, ValidationError> {
        let url = Url::parse(raw.trim()).map_err(|_| {
            invalid("The field `url` must be an absolute URL, such as https://example.com/hooks.")
        })?;
        match url.scheme() {
            "http" | "https" => {}
            _ => {
                return Err(ValidationError::new(
                    "url",
                    "url_scheme_unsupported",
                    "The field `url` must be an http or https URL.",
                ))
            }
        }
        if url.host().is_none() {
            return Err(invalid("The field `url` must name a host."));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "The field `url` must not hold a user name or password; receivers \
                 authenticate deliveries by their signature.",
            ));
        }
        Ok(url)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The host when it is an IP address written in the URL (no name to resolve).
    pub fn ip_literal(&self) -> Option<IpAddr> {
        match self.0.host()? {
            Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            Host::Domain(_) => None,
        }
    }
}

/// The URL's syntax. Stricter than the WHATWG parser, which also takes hosts that no
/// resolver knows (`a..b`, `a!b`), IPv4 addresses in octal, hexadecimal or fewer parts
/// (`0x7f.1`, `2130706433`), Unicode hosts, a scheme without `//` and an empty user
/// name: what it takes and this refuses, the service refuses too, so that the OpenAPI
/// document and the service agree. Within it, the parser fails only on an `xn--`
/// label that is not valid Punycode.
///
/// - the host ends where the WHATWG parser ends it, at `/`, `?`, `#` or `\`; what
///   follows (path, query, fragment) may hold anything but NUL, which the parser
///   percent-encodes as needed;
/// - a DNS name's labels are letters, digits, `-` and `_`, without `-` at either end;
///   the last one starts with a letter, since the parser reads a name whose last
///   label is a number as an IPv4 address;
/// - an IPv4 address is dotted decimal without leading zeros (RFC 3986's
///   `IPv4address`); an IPv6 address is RFC 3986's `IPv6address` (no zone);
/// - a port is digits up to 65535, leading zeros allowed, or nothing after `:`.
fn syntax() -> String {
    let ws = WHITE_SPACE_CLASS;
    let octet = "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
    let ipv4 = format!(r"{octet}\.{octet}\.{octet}\.{octet}");
    let h16 = "[0-9A-Fa-f]{1,4}";
    let ls32 = format!("({h16}:{h16}|{ipv4})");
    let ipv6 = [
        format!("({h16}:){{6}}{ls32}"),
        format!("::({h16}:){{5}}{ls32}"),
        format!("({h16})?::({h16}:){{4}}{ls32}"),
        format!("(({h16}:){{0,1}}{h16})?::({h16}:){{3}}{ls32}"),
        format!("(({h16}:){{0,2}}{h16})?::({h16}:){{2}}{ls32}"),
        format!("(({h16}:){{0,3}}{h16})?::{h16}:{ls32}"),
        format!("(({h16}:){{0,4}}{h16})?::{ls32}"),
        format!("(({h16}:){{0,5}}{h16})?::{h16}"),
        format!("(({h16}:){{0,6}}{h16})?::"),
    ]
    .join("|");
    let label = "[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?";
    let last_label = "[A-Za-z]([A-Za-z0-9_-]*[A-Za-z0-9_])?";
    let name = format!(r"({label}\.)*{last_label}\.?");
    let port = "0*([1-5]?[0-9]{1,4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])";
    format!(
        r"[{ws}]*[Hh][Tt][Tt][Pp][Ss]?://({name}|{ipv4}|\[({ipv6})\])(:({port})?)?([/?#\\][^\u0000]*)?[{ws}]*"
    )
}

fn invalid(message: &str) -> ValidationError {
    ValidationError::new("url", "url_invalid", message)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn code(raw: &str) -> Result<String, &'static str> {
        WebhookUrl::parse(raw)
            .map(|url| url.as_str().to_owned())
            .map_err(|e| e.code)
    }

    #[test]
    fn takes_absolute_http_and_https_urls_normalized() {
        assert_eq!(
            code(" HTTPS://Example.COM/hooks?a=1 "),
            Ok("https://example.com/hooks?a=1".to_owned())
        );
        assert_eq!(
            code("http://127.0.0.1:8080"),
            Ok("http://127.0.0.1:8080/".to_owned())
        );
        assert_eq!(code("http://[::1]/x"), Ok("http://[::1]/x".to_owned()));
        assert_eq!(
            code("http://[::FFFF:127.0.0.1]:0/"),
            Ok("http://[::ffff:7f00:1]:0/".to_owned())
        );
        assert_eq!(
            code("https://my_service.internal:00443/a@b?c@d#e@f"),
            Ok("https://my_service.internal/a@b?c@d#e@f".to_owned())
        );
        assert_eq!(
            code("http://xn--bcher-kva.example./"),
            Ok("http://xn--bcher-kva.example./".to_owned())
        );
        assert_eq!(code("http://a:/"), Ok("http://a/".to_owned()));
        assert_eq!(
            code("http://a/ é\t"),
            Ok("http://a/%20%C3%A9".to_owned()),
            "the path is percent-encoded; white space around is trimmed"
        );
    }

    #[test]
    fn refuses_other_schemes_with_their_own_code() {
        for raw in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "mailto:a@b.c",
            "ws://example.com/",
            "gopher://example.com/",
        ] {
            assert_eq!(code(raw), Err("url_scheme_unsupported"), "{raw}");
        }
    }

    #[test]
    fn refuses_what_is_no_usable_url() {
        let long = format!("https://example.com/{}", "a".repeat(2048));
        for raw in [
            "",
            "example.com/hooks",
            "/hooks",
            "https://",
            "http://user:pass@example.com/",
            "http://user@example.com/",
            "http://@example.com/",
            long.as_str(),
        ] {
            assert_eq!(code(raw), Err("url_invalid"), "{raw}");
        }
        assert_eq!(code("https://example.com/\0"), Err("nul_character"));
    }

    #[test]
    fn refuses_hosts_that_the_whatwg_parser_would_take() {
        for raw in [
            // Other spellings of 127.0.0.1.
            "http://2130706433/",
            "http://0x7f.1/",
            "http://127.1/",
            "http://0177.0.0.1/",
            "http://127.000.000.001/",
            // Names no resolver knows, Unicode, and percent-encoded ones.
            "http://a..b/",
            "http://a!b/",
            "http://-a.example/",
            "http://example.1a/",
            "http://bücher.example/",
            "http://ex%61mple.com/",
            // No `//`, or a tab inside the host.
            "http:example.com",
            "http://exa\tmple.com/",
        ] {
            assert_eq!(code(raw), Err("url_invalid"), "{raw}");
        }
    }

    #[test]
    fn refuses_what_the_whatwg_parser_refuses_too() {
        for raw in [
            "http://a:65536/",
            "http://256.0.0.1/",
            "http://1.2.3.4.5/",
            "http://[::1::]/",
            "http://[1:2:3:4:5:6:7:8:9]/",
            "http://a b/",
            "http://[/",
            "http://:80/",
        ] {
            assert_eq!(code(raw), Err("url_invalid"), "{raw}");
        }
    }

    #[test]
    fn the_length_counts_as_sent_and_once_normalized() {
        let padded = format!(" https://example.com/{} ", "a".repeat(2026));
        assert_eq!(padded.chars().count(), 2048);
        assert!(code(&padded).is_ok());
        let longer = format!(" {padded}");
        assert_eq!(code(&longer), Err("url_invalid"), "2049 as sent");
        let encoded = format!("https://example.com/{}", "é".repeat(1000));
        assert_eq!(
            code(&encoded),
            Err("url_invalid"),
            "1020 as sent, 6020 normalized"
        );
    }

    #[test]
    fn a_stored_url_is_read_under_the_rules_it_was_stored_by() {
        // Taken before hosts were held to the syntax of `pattern`.
        let stored = WebhookUrl::from_stored("http://a!b/").expect("readable");
        assert_eq!(stored.as_str(), "http://a!b/");
        assert_eq!(code("http://a!b/"), Err("url_invalid"));
        assert_eq!(
            WebhookUrl::from_stored("ftp://example.com/").map_err(|e| e.code),
            Err("url_scheme_unsupported")
        );
    }

    #[test]
    fn knows_literal_addresses() {
        let ip = |raw: &str| WebhookUrl::parse(raw).expect("valid").ip_literal();
        assert_eq!(ip("http://127.0.0.1/"), "127.0.0.1".parse().ok());
        assert_eq!(
            ip("http://[::ffff:7f00:1]/"),
            "::ffff:127.0.0.1".parse().ok()
        );
        assert_eq!(
            ip("http://[::ffff:127.0.0.1]/"),
            "::ffff:127.0.0.1".parse().ok()
        );
        assert_eq!(ip("http://localhost/"), None);
    }

    #[test]
    fn the_pattern_compiles_and_is_anchored() {
        assert!(MATCHER.is_match("https://example.com/hooks"));
        assert!(!MATCHER.is_match("xhttps://example.com/hooks"));
        assert!(!MATCHER.is_match("https://example.com\u{0}"));
        assert!(WebhookUrl::pattern().starts_with('^'));
        assert!(WebhookUrl::pattern().ends_with('$'));
    }

    /// Whether a label of the URL's host starts with `xn--`: whether it is valid
    /// Punycode is the one rule of the host that the pattern cannot state.
    fn has_punycode_label(raw: &str) -> bool {
        let after_scheme = raw.split_once("://").map_or("", |(_, rest)| rest);
        let host = after_scheme
            .split(['/', '?', '#', '\\'])
            .next()
            .unwrap_or_default();
        host.split('.')
            .any(|label| label.to_ascii_lowercase().starts_with("xn--"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// What the OpenAPI document describes, the service takes: a fuzzer holds it
        /// to that.
        #[test]
        fn every_url_the_pattern_describes_is_taken(
            raw in proptest::string::string_regex(&SYNTAX).expect("a pattern proptest reads")
        ) {
            prop_assume!(!has_punycode_label(&raw));
            prop_assert!(MATCHER.is_match(&raw));
            let parsed = WebhookUrl::parse(&raw);
            prop_assert!(parsed.is_ok(), "{raw:?}: {parsed:?}");
        }

    }
}
