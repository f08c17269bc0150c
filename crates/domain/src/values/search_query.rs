use super::reject_nul;
use crate::ValidationError;

/// The text of a full-text search (`GET /tickets?q=`): at most 256 characters, in the
/// syntax of PostgreSQL's `websearch_to_tsquery` (quoted phrases, `or`, `-word`), which
/// accepts any text. Blank text is no search at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery(String);

impl SearchQuery {
    pub const MAX_CHARS: usize = 256;

    /// `None` for blank text: an empty search box lists everything.
    pub fn parse(raw: &str) -> Result<Option<Self>, ValidationError> {
        reject_nul("q", raw)?;
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::new(
                "q",
                "search_query_too_long",
                "The parameter `q` must hold at most 256 characters.",
            ));
        }
        let value = raw.trim();
        Ok((!value.is_empty()).then(|| Self(value.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_up_to_256_characters_and_blank_is_no_search() {
        assert_eq!(
            SearchQuery::parse(" charged twice ").map(|q| q.map(|q| q.0)),
            Ok(Some("charged twice".to_owned()))
        );
        assert_eq!(SearchQuery::parse("  "), Ok(None));
        assert!(SearchQuery::parse(&"ж".repeat(256)).is_ok());
        assert_eq!(
            SearchQuery::parse(&"ж".repeat(257)).map_err(|e| e.code),
            Err("search_query_too_long")
        );
        assert_eq!(
            SearchQuery::parse("a\0b").map_err(|e| e.code),
            Err("nul_character")
        );
    }
}
