//! Keyset pagination: a page asks for rows strictly after a sort key, so a deep page
//! costs what the first one does and rows added meanwhile are neither skipped nor
//! repeated.

use time::OffsetDateTime;

use crate::ValidationError;

/// How many rows a page holds: 1 to 1000, 100 by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(u16);

impl PageLimit {
    pub const DEFAULT: PageLimit = PageLimit(100);
    pub const MAX: u16 = 1000;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        raw.parse::<u16>()
            .ok()
            .filter(|n| (1..=Self::MAX).contains(n))
            .map(PageLimit)
            .ok_or_else(|| {
                ValidationError::new(
                    "limit",
                    "limit_invalid",
                    "The parameter `limit` must be a whole number from 1 to 1000.",
                )
            })
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl Default for PageLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A request for one page: at most `limit` rows after `after` (from the start when
/// `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PageRequest<K> {
    pub limit: PageLimit,
    pub after: Option<K>,
}

impl<K> PageRequest<K> {
    pub fn first(limit: PageLimit) -> Self {
        Self { limit, after: None }
    }
}

/// One page of rows, and the key to continue from when more rows exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T, K> {
    pub items: Vec<T>,
    pub next: Option<K>,
}

/// The sort key of tickets and messages: creation time, then id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreatedKey {
    pub created_at: OffsetDateTime,
    pub id: i64,
}

/// The sort key of the user list: ticket count descending, then id ascending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsersKey {
    pub tickets_count: i64,
    pub id: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_1_to_1000() {
        assert_eq!(PageLimit::parse("1").map(PageLimit::get), Ok(1));
        assert_eq!(PageLimit::parse("1000").map(PageLimit::get), Ok(1000));
        for bad in ["0", "1001", "-1", "", "ten", "1.5", "99999999999"] {
            assert!(PageLimit::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(PageLimit::default().get(), 100);
    }
}
