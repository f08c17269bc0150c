use crate::values::{check_char_count, reject_nul};
use crate::ValidationError;

/// A subscription's note for people: at most 1000 characters, empty by default. Kept
/// as written (not trimmed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookDescription(String);

impl WebhookDescription {
    pub const MAX_CHARS: usize = 1000;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        reject_nul("description", raw)?;
        check_char_count(
            "description",
            "description_invalid",
            raw,
            0,
            Self::MAX_CHARS,
        )?;
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_up_to_1000_characters_as_written() {
        assert_eq!(
            WebhookDescription::parse("").map(|d| d.0),
            Ok(String::new())
        );
        assert_eq!(
            WebhookDescription::parse(" CRM ").map(|d| d.0),
            Ok(" CRM ".to_owned())
        );
        assert!(WebhookDescription::parse(&"ж".repeat(1000)).is_ok());
        assert_eq!(
            WebhookDescription::parse(&"ж".repeat(1001)).map_err(|e| e.code),
            Err("description_invalid")
        );
        assert_eq!(
            WebhookDescription::parse("a\0").map_err(|e| e.code),
            Err("nul_character")
        );
    }
}
