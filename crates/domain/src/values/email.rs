use std::fmt;

use super::reject_nul;
use crate::ValidationError;

/// A plain e-mail address `local@domain`, trimmed, at most 254 characters.
///
/// The case is kept as given; uniqueness and login compare addresses without regard to
/// case (the adapter's unique index is on `lower(email)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        reject_nul("email", raw)?;
        let value = raw.trim();
        let invalid = || {
            ValidationError::new(
                "email",
                "email_invalid",
                "The field `email` must be a plain address such as user@example.com.",
            )
        };
        if value.chars().count() > Self::MAX_LEN {
            return Err(ValidationError::new(
                "email",
                "email_too_long",
                "The field `email` must hold at most 254 characters.",
            ));
        }
        let (local, domain) = value.split_once('@').ok_or_else(invalid)?;
        let forbidden =
            |c: char| c.is_whitespace() || c.is_control() || "@<>()[]\\,;:\"".contains(c);
        let well_formed = !local.is_empty()
            && local.chars().count() <= 64
            && !domain.is_empty()
            && !local.chars().any(forbidden)
            && !domain.chars().any(forbidden)
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.starts_with('-')
            && !domain.contains("..")
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        if !well_formed {
            return Err(invalid());
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_plain_addresses_and_trims_them() {
        for ok in ["user@post.io", "a.b+c@x-y.example", "  Mixed@Case.IO "] {
            let email = Email::parse(ok).expect(ok);
            assert_eq!(email.as_str(), ok.trim());
        }
    }

    #[test]
    fn refuses_anything_that_is_not_a_plain_address() {
        for bad in [
            "",
            "   ",
            "plain",
            "@post.io",
            "user@",
            "user@@post.io",
            "a@b@c",
            "John <john@x.io>",
            "jo hn@x.io",
            "user@.io",
            "user@io.",
            "user@x..io",
            ".user@x.io",
            "us\0er@x.io",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn refuses_addresses_longer_than_254_characters() {
        let long = format!("{}@{}.io", "a".repeat(64), "b".repeat(186));
        assert_eq!(long.len(), 254);
        assert!(Email::parse(&long).is_ok());
        let too_long = format!("{}@{}.io", "a".repeat(64), "b".repeat(187));
        assert_eq!(
            Email::parse(&too_long).map_err(|e| e.code),
            Err("email_too_long")
        );
    }

    proptest! {
        // Address-shaped input, so that many cases parse (random text almost never holds
        // an `@`), half of each part spoilt by a blank, a second `@` or a bracket, and
        // lengths past 254 common.
        #[test]
        fn parsed_addresses_hold_exactly_one_at_and_no_white_space(
            raw in (
                "[a-z0-9.-]{0,70}",
                proptest::option::of("[ @<>\t]"),
                "[a-z0-9.-]{0,200}",
                proptest::option::of("[ @<>]"),
            ).prop_map(|(local, spoil_local, domain, spoil_domain)| {
                let spoil = |c: Option<String>| c.unwrap_or_default();
                format!("{local}{}@{domain}{}", spoil(spoil_local), spoil(spoil_domain))
            })
        ) {
            if let Ok(email) = Email::parse(&raw) {
                prop_assert_eq!(email.as_str().matches('@').count(), 1);
                prop_assert!(!email.as_str().chars().any(char::is_whitespace));
                prop_assert!(email.as_str().chars().count() <= Email::MAX_LEN);
            }
        }

        #[test]
        fn plain_addresses_parse_to_themselves(
            local in "[a-z0-9_+-]([a-z0-9_+.-]{0,30}[a-z0-9_+-])?",
            domain in "[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?(\\.[a-z]{2,10}){1,3}",
        ) {
            prop_assume!(!local.contains(".."));
            let raw = format!("{local}@{domain}");
            let email = Email::parse(&raw);
            prop_assert!(email.is_ok(), "{raw:?} refused: {email:?}");
            prop_assert_eq!(email.map(|e| e.as_str().to_owned()).ok(), Some(raw));
        }
    }
}
