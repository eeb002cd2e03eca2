//! Ordered, resumable reads of a list: what lets a list request read one
//! page's worth of rows instead of the whole list.
//!
//! A backend walks one of two orders it keeps anyway: the primary key (`id`)
//! or the `last_modified` index, in either direction, from an exclusive
//! [`Cursor`], a bounded number of rows per call. The domain filters while
//! it streams and stops once its page is full.

use super::{StorageResult, StoredObject};
use std::cmp::Ordering;

/// The order of a [`super::Storage::scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    IdAsc,
    IdDesc,
    ModifiedAsc,
    ModifiedDesc,
}

impl Order {
    pub fn by_modified(self) -> bool {
        matches!(self, Order::ModifiedAsc | Order::ModifiedDesc)
    }

    pub fn descending(self) -> bool {
        matches!(self, Order::IdDesc | Order::ModifiedDesc)
    }

    /// `a` against `b` in the key order this order walks (ascending form):
    /// `(last_modified, id)` for the index, `id` for the primary order.
    pub fn key_cmp(self, a: &Cursor, b: &Cursor) -> Ordering {
        if self.by_modified() {
            (a.last_modified, a.id.as_str()).cmp(&(b.last_modified, b.id.as_str()))
        } else {
            a.id.cmp(&b.id)
        }
    }

    /// Does `row` come strictly after `from` when walking in this order?
    pub fn is_past(self, row: &Cursor, from: &Cursor) -> bool {
        let o = self.key_cmp(row, from);
        if self.descending() {
            o == Ordering::Less
        } else {
            o == Ordering::Greater
        }
    }
}

/// An exclusive position in an [`Order`]: the scan resumes strictly after
/// it. Id orders read only `id`. An empty id sorts before every stored id,
/// so `(t, "")` stands for "just before the first row at `t`".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    pub last_modified: u64,
    pub id: String,
}

impl Cursor {
    pub fn of(o: &StoredObject) -> Self {
        Cursor {
            last_modified: o.last_modified,
            id: o.id.clone(),
        }
    }
}

/// What a [`super::Storage::scan`] walks: a list, an order, an exclusive
/// start, and for `last_modified` orders a timestamp where the walk ends
/// (exclusive: descending, the first row at or below it; ascending, at or
/// above it), so a `_since` read stops at its bound instead of reading a
/// chunk past it. At most `limit` rows a call; tombstones only when asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range<'a> {
    pub parent: &'a str,
    pub resource: &'a str,
    pub order: Order,
    pub from: Option<Cursor>,
    pub stop: Option<u64>,
    pub limit: usize,
    pub tombstones: bool,
    /// The caller reads each row's `id`, `last_modified`, `deleted` and
    /// `permissions`, and prints it, but never looks into its `data`: a
    /// backend may then print each row as it reads it ([`Chunk::printed`])
    /// instead of building its fields, which is most of a page's cost.
    pub lean: bool,
    /// With `lean`, whether the caller reads each row's `permissions` (a
    /// caller allowed to see the whole list does not): without, a backend
    /// may leave them empty.
    pub acl: bool,
    /// With `lean`, the top-level `data` keys the caller does read (a
    /// query's filters and sorts): a backend keeps those in each row's
    /// `data`, so a filtered page needs no row built whole.
    pub fields: &'a [&'a str],
}

impl Range<'_> {
    /// Does `ts` lie at or past the walk's end?
    pub fn ends_at(&self, ts: u64) -> bool {
        match (self.order, self.stop) {
            (Order::ModifiedDesc, Some(s)) => ts <= s,
            (Order::ModifiedAsc, Some(s)) => ts >= s,
            _ => false,
        }
    }
}

/// One call's rows, and where the next call resumes (`None`: the list is
/// exhausted). It may hold fewer rows than asked, even none, before the end:
/// a backend bounds the work of one call (skipped tombstones count).
#[derive(Debug, Default)]
pub struct Chunk {
    pub rows: Vec<StoredObject>,
    pub next: Option<Cursor>,
    /// Empty, or (for a [`Range::lean`] walk) each row of `rows` as Kinto
    /// shows it ([`StoredObject::print_json`]), those rows' `data` then
    /// holding only the [`Range::fields`] they have.
    pub printed: Vec<Vec<u8>>,
}

/// A page the store printed as it walked ([`super::Storage::print_page`]):
/// the JSON array of its rows, each as Kinto shows it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PrintedPage {
    /// `[row,row,…]`.
    pub json: Vec<u8>,
    /// Rows in `json`.
    pub rows: usize,
    /// Where the last row lies in `json`.
    pub last: std::ops::Range<usize>,
    /// A row past the page exists.
    pub has_more: bool,
    /// Entries the walk read (rows, tombstones, the token's own row).
    pub read: usize,
}

/// Which rows a printed page keeps past its `Range`: `(id, last_modified)`
/// after the page's keyset (its `_token`).
pub type After<'f> = dyn Fn(&str, u64) -> bool + Send + Sync + 'f;

/// A scan over a whole list read at once: for a backend without ordered
/// reads, and the reference the conformance suite checks others against.
pub fn from_whole_list(mut rows: Vec<StoredObject>, range: &Range<'_>) -> StorageResult<Chunk> {
    let (order, n) = (range.order, range.limit);
    rows.retain(|o| {
        range
            .from
            .as_ref()
            .is_none_or(|f| order.is_past(&Cursor::of(o), f))
            && !range.ends_at(o.last_modified)
    });
    rows.sort_by(|a, b| {
        let o = order.key_cmp(&Cursor::of(a), &Cursor::of(b));
        if order.descending() {
            o.reverse()
        } else {
            o
        }
    });
    let more = rows.len() > n;
    rows.truncate(n);
    let next = if more {
        rows.last().map(Cursor::of)
    } else {
        None
    };
    Ok(Chunk {
        rows,
        next,
        printed: Vec::new(),
    })
}
