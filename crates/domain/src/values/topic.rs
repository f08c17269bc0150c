use super::{check_char_count, reject_nul};
use crate::ValidationError;

/// A ticket's topic: 1 to 20 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic(String);

impl Topic {
    pub const MAX_CHARS: usize = 20;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        reject_nul("topic", raw)?;
        let value = raw.trim();
        check_char_count("topic", "topic_invalid", value, 1, Self::MAX_CHARS)?;
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_1_to_20_characters_after_trimming() {
        assert_eq!(
            Topic::parse(" new discount ").expect("valid").as_str(),
            "new discount"
        );
        assert!(Topic::parse(&"ж".repeat(20)).is_ok());
        assert_eq!(
            Topic::parse(&"ж".repeat(21)).map_err(|e| e.code),
            Err("topic_invalid")
        );
        assert_eq!(Topic::parse("  ").map_err(|e| e.code), Err("topic_invalid"));
    }
}
