//! Pagination cursors (`get_online_users`, `list_clients`): the key a page ended at, signed so
//! that a cursor is only accepted for the query (method, system, group) that issued it. The key
//! comes from the JWT secret, which every node of a cluster shares, so a cursor one node issued
//! is valid on every node.
//!
//! A cursor is `<hex of the last key>.<HMAC-SHA256 of "<query>\n<last key>">`: pages are
//! ordered by that key, so a client present for the whole listing is listed exactly once, however
//! others come and go between pages.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::rest::OverLimit;

type HmacSha256 = Hmac<Sha256>;

/// What signs and checks cursors; made once from the JWT secret.
#[derive(Clone)]
pub struct CursorKey(Vec<u8>);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

impl CursorKey {
    /// Derived, so a cursor reveals nothing usable about the secret.
    pub fn from_secret(secret: &[u8]) -> CursorKey {
        CursorKey(mac(secret, &[b"wshub pagination cursors"]))
    }

    /// The cursor of a page of `query` that ended at `last`.
    pub fn sign(&self, query: &str, last: &str) -> String {
        let tag = mac(&self.0, &[query.as_bytes(), b"\n", last.as_bytes()]);
        format!("{}.{}", hex::encode(last), hex::encode(tag))
    }

    /// The key the page named by `cursor` ended at; a 400 naming `cursor` if it was not issued
    /// for `query` by a node with this key.
    pub fn open(&self, query: &str, cursor: &str) -> Result<String, OverLimit> {
        let refused = || {
            OverLimit::Field(
                "cursor: not a cursor this query issued (pass back the cursor of the previous page unchanged)"
                    .to_owned(),
            )
        };
        let (last, tag) = cursor.split_once('.').ok_or_else(refused)?;
        let last = hex::decode(last).map_err(|_| refused())?;
        let tag = hex::decode(tag).map_err(|_| refused())?;
        let mut check = HmacSha256::new_from_slice(&self.0).map_err(|_| refused())?;
        check.update(query.as_bytes());
        check.update(b"\n");
        check.update(&last);
        check.verify_slice(&tag).map_err(|_| refused())?;
        String::from_utf8(last).map_err(|_| refused())
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC takes a key of any length: this cannot fail.
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return Vec::new();
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Longest cursor accepted: a hex key and a hex MAC, with room to spare.
pub const MAX_CURSOR_LEN: usize = 4096;

/// The checks of a page request made before it runs: the cursor's length and the limit's range.
pub fn check_page(cursor: Option<&str>, limit: Option<i64>) -> Result<(), OverLimit> {
    if let Some(cursor) = cursor {
        super::rest::check_len("cursor", cursor, MAX_CURSOR_LEN)?;
    }
    page_size(limit).map(drop)
}

/// A page's size: `limit` 1 to [`MAX_PAGE`], [`DEFAULT_PAGE`] when absent.
pub fn page_size(limit: Option<i64>) -> Result<usize, OverLimit> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE as i64).contains(&n) => Ok(n as usize),
        Some(n) => Err(OverLimit::Field(format!(
            "limit: {n} is out of range (1 to {MAX_PAGE})"
        ))),
    }
}

pub const DEFAULT_PAGE: usize = 1_000;
pub const MAX_PAGE: usize = 10_000;

/// The items of `sorted` (ordered by key) after `after`, at most `size`, and the cursor of the
/// next page if more remain.
pub fn page<T>(
    sorted: Vec<T>,
    key: impl Fn(&T) -> &str,
    after: Option<&str>,
    size: usize,
    next: impl FnOnce(&str) -> String,
) -> (Vec<T>, Option<String>) {
    let mut rest: Vec<T> = sorted
        .into_iter()
        .filter(|item| after.is_none_or(|after| key(item) > after))
        .collect();
    let more = rest.len() > size;
    rest.truncate(size);
    let cursor = match rest.last() {
        Some(last) if more => Some(next(key(last))),
        _ => None,
    };
    (rest, cursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_opens_only_for_its_query_and_key() {
        let key = CursorKey::from_secret(b"secret");
        let cursor = key.sign("users:s:room", "ann");
        assert_eq!(key.open("users:s:room", &cursor).unwrap(), "ann");
        assert!(key.open("users:s:", &cursor).is_err(), "another query");
        assert!(key.open("users:t:room", &cursor).is_err(), "another system");
        let other = CursorKey::from_secret(b"another secret");
        assert!(other.open("users:s:room", &cursor).is_err(), "another key");
        let forged = format!(
            "{}{}",
            hex::encode("bob"),
            &cursor[cursor.find('.').unwrap()..]
        );
        assert!(
            key.open("users:s:room", &forged).is_err(),
            "a changed position"
        );
        for junk in ["", ".", "zz.zz", "616e6e", "616e6e.00"] {
            assert!(key.open("users:s:room", junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn pages_cover_everything_once() {
        let items: Vec<String> = (0..7).map(|n| format!("k{n}")).collect();
        let mut after = None;
        let mut seen = Vec::new();
        loop {
            let (page, cursor) = page(items.clone(), |s| s, after.as_deref(), 3, str::to_owned);
            seen.extend(page);
            match cursor {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, items);
        assert!(page_size(Some(0)).is_err());
        assert!(page_size(Some(10_001)).is_err());
        assert_eq!(page_size(None).unwrap(), 1_000);
    }
}
