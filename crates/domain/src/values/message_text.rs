use super::{check_char_count, reject_nul};
use crate::ValidationError;

/// A message's text: 1 to 10,000 characters, not only white space. Kept as written
/// (white space inside a message can matter, e.g. pasted logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText(String);

impl MessageText {
    pub const MAX_CHARS: usize = 10_000;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        reject_nul("text", raw)?;
        check_char_count("text", "text_invalid", raw, 1, Self::MAX_CHARS)?;
        if raw.trim().is_empty() {
            return Err(ValidationError::new(
                "text",
                "text_blank",
                "The field `text` must not be only white space.",
            ));
        }
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
    fn holds_1_to_10000_characters_not_only_white_space() {
        assert_eq!(MessageText::parse(" hi ").expect("valid").as_str(), " hi ");
        assert!(MessageText::parse(&"ü".repeat(10_000)).is_ok());
        assert_eq!(
            MessageText::parse(&"ü".repeat(10_001)).map_err(|e| e.code),
            Err("text_invalid")
        );
        assert_eq!(
            MessageText::parse("").map_err(|e| e.code),
            Err("text_invalid")
        );
        assert_eq!(
            MessageText::parse(" \n\t").map_err(|e| e.code),
            Err("text_blank")
        );
    }
}
