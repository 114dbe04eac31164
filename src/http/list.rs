//! The one shape of every list answer (contract: "Conventions for every list"):
//! `{"items": […], "page": 1, "size": 20, "total": 57}`, with `page` from 1 and `size` in
//! 1..=100 (default 20) unless a list says otherwise; a bad `page` or `size` is a 422.

use serde::Serialize;

use super::extract;
use crate::error::AppError;

/// Largest page number accepted (keeps OFFSET bounded).
pub const MAX_PAGE: u32 = 100_000;

/// Which page of a list, parsed from the query string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Paging {
    pub page: u32,
    pub size: u32,
}

impl Paging {
    /// `page` (from 1) and `size` (1..=100, default 20): the contract's paging.
    pub fn standard(query: Option<&str>) -> Result<Paging, AppError> {
        Paging::parse(query, 20, 100)
    }

    /// `page` (from 1) and `size` (1..=`max`, default `default`): `invalid_page` /
    /// `invalid_size` (422) otherwise.
    pub fn parse(query: Option<&str>, default: u32, max: u32) -> Result<Paging, AppError> {
        Ok(Paging {
            page: extract::number_param(query, "page", 1, MAX_PAGE, "invalid_page")?,
            size: extract::number_param(query, "size", default, max, "invalid_size")?,
        })
    }

    /// SQL `LIMIT`.
    pub fn limit(self) -> i64 {
        i64::from(self.size)
    }

    /// SQL `OFFSET`.
    pub fn offset(self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.size)
    }

    /// How many pages `total` items fill (at least 1, so "page 1 of 1" reads right).
    pub fn pages(self, total: i64) -> i64 {
        ((total + i64::from(self.size) - 1) / i64::from(self.size)).max(1)
    }

    /// A page of `items` out of `total`.
    pub fn listing<T>(self, total: i64, items: Vec<T>) -> Listing<T> {
        Listing {
            page: self.page,
            size: self.size,
            total,
            items,
        }
    }
}

/// A page of `items` with its paging and the total count: the contract's list answer.
#[derive(Debug, Serialize)]
pub struct Listing<T> {
    pub page: u32,
    pub size: u32,
    pub total: i64,
    pub items: Vec<T>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_defaults_bounds_and_offsets() {
        let p = Paging::standard(None).unwrap();
        assert_eq!((p.page, p.size, p.offset()), (1, 20, 0));
        let p = Paging::standard(Some("page=3&size=100")).unwrap();
        assert_eq!((p.limit(), p.offset()), (100, 200));
        assert_eq!(p.pages(0), 1);
        assert_eq!(p.pages(201), 3);
        for bad in ["page=0", "size=0", "size=101", "page=x", "page=-1", "page=100001"] {
            let code = Paging::standard(Some(bad)).unwrap_err().code();
            assert!(code == "invalid_page" || code == "invalid_size", "{bad}: {code}");
        }
        let body = serde_json::to_value(p.listing(57, vec![1, 2])).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"page": 3, "size": 100, "total": 57, "items": [1, 2]})
        );
    }
}
