//! Value types that can only hold valid data: input is parsed into them once, at the
//! edge, and the rest of the code relies on them being valid.

mod email;
mod message_text;
mod password;
mod search_query;
mod topic;
mod username;

pub use email::Email;
pub use message_text::MessageText;
pub use password::Password;
pub use search_query::SearchQuery;
pub use topic::Topic;
pub use username::Username;

use crate::ValidationError;

/// What `str::trim` removes (Unicode `White_Space`), as the body of a character class
/// that JSON Schema (ECMA-262), Python and the `regex` crate read alike: patterns of
/// fields that are trimmed before they are checked allow it around them.
pub const WHITE_SPACE_CLASS: &str =
    r"\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// Refuses a NUL character: PostgreSQL cannot store NUL in text, and no legitimate
/// client sends one. Public for strings that no value type holds (login credentials).
pub fn reject_nul(field: &'static str, value: &str) -> Result<(), ValidationError> {
    if value.contains('\0') {
        return Err(ValidationError::new(
            field,
            "nul_character",
            format!("The field `{field}` must not contain a NUL character."),
        ));
    }
    Ok(())
}

/// Checks that `value` holds `min..=max` characters (Unicode scalar values).
pub(crate) fn check_char_count(
    field: &'static str,
    code: &'static str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<(), ValidationError> {
    let count = value.chars().count();
    if count < min || count > max {
        let message = if min == 0 {
            format!("The field `{field}` must hold at most {max} characters.")
        } else if min == 1 {
            format!("The field `{field}` must hold 1 to {max} characters.")
        } else {
            format!("The field `{field}` must hold {min} to {max} characters.")
        };
        return Err(ValidationError::new(field, code, message));
    }
    Ok(())
}
