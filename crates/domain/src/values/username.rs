use super::{check_char_count, reject_nul};
use crate::ValidationError;

/// A display name: 1 to 64 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        reject_nul("username", raw)?;
        let value = raw.trim();
        check_char_count("username", "username_invalid", value, 1, Self::MAX_CHARS)?;
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
    fn trims_and_counts_characters() {
        assert_eq!(
            Username::parse("  michelle ").expect("valid").as_str(),
            "michelle"
        );
        assert!(Username::parse(&"é".repeat(64)).is_ok());
        for bad in ["", "   ", "\t\n"] {
            assert_eq!(
                Username::parse(bad).map_err(|e| e.code),
                Err("username_invalid")
            );
        }
        assert!(Username::parse(&"é".repeat(65)).is_err());
        assert!(Username::parse("a\0b").is_err());
    }
}
