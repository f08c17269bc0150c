use std::net::IpAddr;

use url::{Host, Url};

use crate::values::reject_nul;
use crate::ValidationError;

/// Where a subscription's deliveries go: an absolute `http` or `https` URL of at most
/// 2048 characters once normalized (as the WHATWG URL standard spells it: lower-case
/// scheme and host, punycode, percent-encoding), without a user name or password (the
/// signature authenticates a delivery; credentials in the URL would be shown by every
/// read of the subscription and could reach logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(Url);

impl WebhookUrl {
    pub const MAX_LEN: usize = 2048;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        reject_nul("url", raw)?;
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
        if url.as_str().len() > Self::MAX_LEN {
            return Err(invalid(
                "The field `url` must hold at most 2048 characters.",
            ));
        }
        Ok(Self(url))
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

fn invalid(message: &str) -> ValidationError {
    ValidationError::new("url", "url_invalid", message)
}

#[cfg(test)]
mod tests {
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
            long.as_str(),
        ] {
            assert_eq!(code(raw), Err("url_invalid"), "{raw}");
        }
        assert_eq!(code("https://example.com/\0"), Err("nul_character"));
    }

    #[test]
    fn knows_literal_addresses_in_every_spelling() {
        let ip = |raw: &str| WebhookUrl::parse(raw).expect("valid").ip_literal();
        assert_eq!(ip("http://127.0.0.1/"), "127.0.0.1".parse().ok());
        // WHATWG URLs read IPv4 addresses in decimal, octal and hex too.
        assert_eq!(ip("http://2130706433/"), "127.0.0.1".parse().ok());
        assert_eq!(ip("http://0x7f.1/"), "127.0.0.1".parse().ok());
        assert_eq!(
            ip("http://[::ffff:7f00:1]/"),
            "::ffff:127.0.0.1".parse().ok()
        );
        assert_eq!(ip("http://localhost/"), None);
    }
}
