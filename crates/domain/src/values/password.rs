use std::fmt;

use super::reject_nul;
use crate::ValidationError;

/// A new password: at least 8 characters and at most 72 bytes of UTF-8, bcrypt's limit.
/// Longer passwords are refused rather than silently truncated, so two passwords that
/// share their first 72 bytes can never stand for each other.
///
/// `Debug` never prints the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_BYTES: usize = 72;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        Self::parse_field("password", raw)
    }

    /// Like [`Password::parse`], for a password arriving under another field name.
    pub fn parse_field(field: &'static str, raw: &str) -> Result<Self, ValidationError> {
        reject_nul(field, raw)?;
        if raw.chars().count() < Self::MIN_CHARS {
            return Err(ValidationError::new(
                field,
                "password_too_short",
                "Password must be at least 8 characters.",
            ));
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(ValidationError::new(
                field,
                "password_too_long",
                "Password must be at most 72 bytes in UTF-8.",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforces_8_characters_and_72_bytes() {
        assert_eq!(
            Password::parse("1234567").map_err(|e| e.code),
            Err("password_too_short")
        );
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"x".repeat(72)).is_ok());
        assert_eq!(
            Password::parse(&"x".repeat(73)).map_err(|e| e.code),
            Err("password_too_long")
        );
        // 8 characters but 4 bytes each: counted in characters for the minimum ...
        assert!(Password::parse("😀😀😀😀😀😀😀😀").is_ok());
        // ... and in bytes for bcrypt's maximum: 19 × 4 = 76 bytes.
        assert!(Password::parse(&"😀".repeat(19)).is_err());
        assert_eq!(
            Password::parse("abc\0defgh").map_err(|e| e.code),
            Err("nul_character")
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let password = Password::parse("hunter2hunter2").expect("valid");
        assert!(!format!("{password:?}").contains("hunter2"));
    }
}
