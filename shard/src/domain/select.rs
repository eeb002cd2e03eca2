//! Which stored rows the caller may see, which match the filters, in what
//! order, and which fall on the page: streamed from the store in chunks
//! ([`crate::storage::Storage::scan`]), so a request holds its page, never
//! its list.
//!
//! When the store's order is the sort's (`last_modified` or `id` first) the
//! walk starts at the `_token`'s position and stops once the page is full.
//! Any other sort walks the whole list keeping only the best `_limit + 1`
//! rows. It runs under a [`Budget`], yielding between chunks, so a long walk
//! never holds one of the runtime's few worker threads.

mod raw_filter;

use super::budget::Budget;
use super::request::ListQuery;
use super::scan_plan::ScanPlan;
use crate::storage::{Order, PrintedPage, Range, Storage, StorageError, StoredObject};
use kinto_proto::query::{self, Op};
use kinto_proto::KintoError;
use serde_json::{Map, Value};

/// Rows checked between two looks at the budget.
const ROWS_PER_CHECK: usize = 64;

/// Rows asked of the store per call: the first call asks for a page (plus
/// one), each next call twice as many, up to this.
const MAX_CHUNK: usize = 1024;
const MIN_CHUNK: usize = 8;

/// One row of a page.
pub struct Row {
    /// What the query's filters and sorts read of it ([`view`]); `None` when
    /// they read only what `object` holds besides `data` ([`Row::view`]).
    view: Option<Value>,
    pub object: StoredObject,
    /// The object as Kinto shows it, when a lean walk had the store print
    /// it (its `data` then empty: the fields the query reads were moved to
    /// `view`); `None`: print `object`.
    pub printed: Option<Vec<u8>>,
}

impl Row {
    /// What the query's filters and sorts read of the row (the tests' next
    /// keyset; the server's comes from the printed rows).
    #[cfg(test)]
    pub fn view(&self) -> std::borrow::Cow<'_, Value> {
        match &self.view {
            Some(v) => std::borrow::Cow::Borrowed(v),
            None => std::borrow::Cow::Owned(meta_view(&self.object)),
        }
    }
}

pub struct Selected {
    /// The page.
    pub rows: Vec<Row>,
    /// Rows the caller may see (before filters) among those walked; 0 tells
    /// "nothing shared" (see [`Walk::must_see`]).
    pub visible: usize,
    /// Live rows matching the filters, on every page: counted only when
    /// [`Walk::count`] asks (Kinto reports it on HEAD only).
    pub total: u64,
    pub has_more: bool,
    /// The page as the store printed it ([`printed_page`]), `rows` then
    /// empty.
    pub printed: Option<PrintedPage>,
    /// The most rows the page held at once: bounded by the page, not the
    /// list (what the memory-bound tests check).
    #[cfg(test)]
    pub held: usize,
}

impl Selected {
    /// The page's objects, each with its printed form when it has one.
    pub fn printed_rows(&self) -> impl ExactSizeIterator<Item = (&StoredObject, Option<&[u8]>)> {
        self.rows.iter().map(|r| (&r.object, r.printed.as_deref()))
    }

    /// The page's rows as the view and the object (a delete's matches).
    pub fn into_objects(self) -> Vec<(Value, StoredObject)> {
        (self.rows.into_iter())
            .map(|r| (r.view.unwrap_or_else(|| meta_view(&r.object)), r.object))
            .collect()
    }

    /// A page the store printed ([`printed_page`]).
    pub fn printed(printed: PrintedPage) -> Self {
        Selected {
            rows: Vec::new(),
            visible: printed.rows,
            // Counted only when asked, which a printed page never is.
            total: 0,
            has_more: printed.has_more,
            printed: Some(printed),
            #[cfg(test)]
            held: 0,
        }
    }

    /// An answer that is a count alone (Kinto's HEAD): no row read.
    pub fn count_only(total: u64) -> Self {
        Selected {
            rows: Vec::new(),
            visible: 0,
            total,
            has_more: false,
            printed: None,
            #[cfg(test)]
            held: 0,
        }
    }
}

/// One list walk: where and what.
pub struct Walk<'a> {
    pub storage: &'a dyn Storage,
    pub parent: &'a str,
    pub resource: &'a str,
    pub with_tombstones: bool,
    /// Count every matching row (`total`): the walk then visits the whole
    /// filtered range instead of stopping at the page.
    pub count: bool,
    /// Tell apart "nothing shared with the caller" from "nothing in this
    /// range": when nothing visible was walked but the walk saw only part of
    /// the list, look for one visible row elsewhere.
    pub must_see: bool,
    /// The page is only printed (a read, not a delete): the store may print
    /// each row instead of building it, keeping of `data` only the fields
    /// the query's filters and sorts read ([`Range::lean`]).
    pub lean: bool,
    /// `keep` reads each row's ACL (the caller may see only some rows).
    pub acl: bool,
}

/// The page kept so far: in the store's order while it serves the sort
/// (the walk stops once full), else the best rows seen (a bounded buffer,
/// trimmed when it reaches twice the page).
struct Page<'q> {
    q: &'q ListQuery,
    want: Option<usize>,
    ordered: bool,
    rows: Vec<Row>,
    /// See [`Selected::held`].
    #[cfg_attr(not(test), allow(dead_code))]
    held: usize,
}

impl Page<'_> {
    /// Keeps `row`; false when the walk may stop (an ordered page is full).
    fn offer(&mut self, row: Row, order: Order) -> bool {
        // Past the page, only rows tied with its last on `last_modified`
        // may still belong to it (the sort then orders them by `id`).
        let tied = |last: &Row| {
            order.by_modified() && last.object.last_modified == row.object.last_modified
        };
        let full = |want| self.rows.len() >= want && !self.rows.last().is_some_and(tied);
        if self.ordered && self.want.is_some_and(full) {
            return false;
        }
        self.rows.push(row);
        self.held = self.held.max(self.rows.len());
        if let Some(want) = self.want.filter(|_| !self.ordered) {
            if self.rows.len() >= want.saturating_mul(2).max(MIN_CHUNK) {
                self.trim();
            }
        }
        true
    }

    fn trim(&mut self) {
        // In the store's order, only rows tied on `last_modified` may be out
        // of the sort's order (`id` then breaks the tie).
        let tied = |w: &[Row]| w[0].object.last_modified == w[1].object.last_modified;
        if !self.ordered || self.rows.windows(2).any(tied) {
            for r in self.rows.iter_mut().filter(|r| r.view.is_none()) {
                r.view = Some(meta_view(&r.object));
            }
            query::sort_by_keys(&mut self.rows, &self.q.sort, |r| {
                r.view.as_ref().unwrap_or(&Value::Null)
            });
        }
        if let Some(want) = self.want {
            self.rows.truncate(want);
        }
    }
}

/// The part of `o` as Kinto shows it ([`StoredObject::to_json`]) that the
/// query's fields `names` can reach: what filters and sorts read, without
/// copying the rest of each row. A field path reaches the top-level keys that
/// are the path cut at one of its dots, or whole ([`query::lookup`]).
///
/// `take` moves those fields out of `o.data` instead of copying them: a row
/// the store printed is never built from its `data` again.
fn view(o: &mut StoredObject, names: &[&str], take: bool) -> Value {
    if take {
        // A printed row's `data` holds only the fields the query reads
        // ([`data_keys`]): it becomes the view whole.
        let mut m = std::mem::take(&mut o.data);
        meta_into(&mut m, o);
        return Value::Object(m);
    }
    // Sized once: the fields, `id`, `last_modified`, `deleted`.
    let mut m = Map::with_capacity(names.len() + 3);
    if !o.deleted {
        for name in names {
            let cuts = name.match_indices('.').map(|(i, _)| i);
            for cut in cuts.chain([name.len()]) {
                let key = name.get(..cut).unwrap_or_default();
                if m.contains_key(key) {
                    continue;
                }
                let value = if take {
                    o.data.remove(key)
                } else {
                    o.data.get(key).cloned()
                };
                if let Some(v) = value {
                    m.insert(key.to_owned(), v);
                }
            }
        }
    }
    meta_into(&mut m, o);
    Value::Object(m)
}

/// The view of a row whose query reads no field of `data`.
fn meta_view(o: &StoredObject) -> Value {
    let mut m = Map::with_capacity(3);
    meta_into(&mut m, o);
    Value::Object(m)
}

fn meta_into(m: &mut Map<String, Value>, o: &StoredObject) {
    m.insert("id".into(), Value::String(o.id.clone()));
    m.insert("last_modified".into(), Value::from(o.last_modified));
    if o.deleted {
        m.insert("deleted".into(), Value::Bool(true));
    }
}

/// The top-level `data` keys [`view`] reads for `names`: each name cut at
/// each of its dots, and whole (`id` and `last_modified` are never stored
/// there).
fn data_keys<'n>(names: &[&'n str]) -> Vec<&'n str> {
    let mut keys: Vec<&str> = (names.iter())
        .flat_map(|n| (n.match_indices('.').filter_map(|(i, _)| n.get(..i))).chain([*n]))
        .filter(|k| !matches!(*k, "id" | "last_modified"))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The rows to ask of the store next. An ordered page lacks only a few
/// rows: ask for those few at the rate the last chunk gave them (rows asked
/// per row the page took), not twice the last chunk, which halves what a
/// deep page reads and most of what a filtered one reads past its end. The
/// rate counts what the store passed over (tombstones: a long run of them
/// grows the chunks fast) and what filters dropped. A chunk that gave the
/// page nothing, or a page that must see every row: twice the last chunk.
fn next_chunk(page: &Page<'_>, last: usize, offered: usize) -> usize {
    let took = page.rows.len().saturating_sub(offered);
    match page.want {
        Some(want) if page.ordered && took > 0 => {
            // The rows missing, and one more: the row that shows the page ends.
            let missing = want.saturating_sub(page.rows.len()).saturating_add(1);
            missing.saturating_mul(last).div_ceil(took)
        }
        _ => last.saturating_mul(2),
    }
    .clamp(MIN_CHUNK, MAX_CHUNK)
}

/// Selects the page `q` asks for, among the rows `keep` lets the caller see.
pub async fn select(
    w: Walk<'_>,
    q: &ListQuery,
    keep: impl Fn(&StoredObject) -> bool,
    budget: &Budget,
) -> Result<Selected, KintoError> {
    let plan = ScanPlan::of(q, !w.count);
    let want = q
        .limit
        .map(|l| usize::try_from(l.saturating_add(1)).unwrap_or(usize::MAX));
    let mut page = Page {
        q,
        want,
        ordered: plan.ordered,
        // The page, or a trimmed buffer of twice it: sized once.
        rows: Vec::with_capacity(
            want.map_or(MIN_CHUNK, |w| w.saturating_mul(2))
                .min(MAX_CHUNK),
        ),
        held: 0,
    };
    let (mut visible, mut total) = (0, 0);
    let mut range = plan.range(w.parent, w.resource, w.with_tombstones);
    // Two more than the page: the row that shows the page ends (not tied
    // with its last on `last_modified`), and the token's own row, where a
    // `last_modified` walk resumes.
    range.limit = want
        .map_or(MAX_CHUNK, |w| w.saturating_add(2))
        .clamp(MIN_CHUNK, MAX_CHUNK);
    let names: Vec<&str> = (q.filters.iter().map(|f| f.field.as_str()))
        .chain(q.sort.iter().map(|k| k.field.as_str()))
        .collect();
    let sorted_on: Vec<&str> = q.sort.iter().map(|k| k.field.as_str()).collect();
    // Sorted by `id` and `last_modified` only (the default order, a sync's
    // pages): each row is compared on its object, and the view (a map
    // built per row) is made only for rows a tie must sort. Filters are
    // then read on the text the store printed ([`raw_filter`]), and the
    // store keeps no field apart.
    let meta_only = data_keys(&sorted_on).is_empty() && (q.filters.is_empty() || w.lean);
    let keys = if meta_only {
        Vec::new()
    } else {
        data_keys(&names)
    };
    let meta_after = (q.after.as_ref()).map(|a| query::MetaKeyset::new(&q.sort, a));
    range.lean = w.lean;
    range.acl = w.acl;
    range.fields = &keys;
    budget.check()?;
    if let Some(printed) = printed_page(&w, q, &plan, &range, meta_after.as_ref()).await? {
        return Ok(printed);
    }
    let mut full = false;
    'walk: loop {
        budget.check()?;
        let chunk = w.storage.scan(&range).await?;
        let offered = page.rows.len();
        let mut printed = chunk.printed.into_iter();
        for (i, mut o) in chunk.rows.into_iter().enumerate() {
            // Each row's, or none at all.
            let printed = printed.next();
            if i % ROWS_PER_CHECK == ROWS_PER_CHECK - 1 {
                budget.check()?;
            }
            if plan.is_beyond(&o) {
                break 'walk;
            }
            if !keep(&o) {
                continue;
            }
            visible += 1;
            let json = (!meta_only).then(|| view(&mut o, &names, printed.is_some()));
            let kept = match (&json, &printed) {
                _ if q.filters.is_empty() => true,
                (Some(j), _) => query::matches(j, &q.filters),
                (None, Some(p)) => {
                    raw_filter::matches(p, &q.filters).map_err(StorageError::Corrupt)?
                }
                // A store that printed nothing left `data` whole.
                (None, None) => query::matches(&view(&mut o, &names, false), &q.filters),
            };
            if !kept {
                continue;
            }
            // Kinto counts live objects only, even when `_since` lists tombstones.
            total += u64::from(!o.deleted);
            let after = |a| match &json {
                Some(j) => query::is_after(j, &q.sort, a),
                None => meta_after
                    .as_ref()
                    .is_none_or(|m| m.is_after(&o.id, o.last_modified)),
            };
            if q.after.as_ref().is_some_and(|a| !after(a)) {
                continue;
            }
            let row = Row {
                view: json,
                object: o,
                printed,
            };
            if !full && !page.offer(row, plan.order) {
                full = true;
                if !w.count {
                    break 'walk;
                }
            }
        }
        let Some(next) = chunk.next else { break };
        range.from = Some(next);
        range.limit = next_chunk(&page, range.limit, offered);
        tokio::task::yield_now().await;
    }
    page.trim();
    let mut rows = page.rows;
    let mut has_more = false;
    if let Some(limit) = q.limit {
        if rows.len() as u64 > limit {
            rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            has_more = true;
        }
    }
    if w.must_see && visible == 0 && plan.is_partial() {
        visible = usize::from(any_visible(&w, &keep, budget).await?);
    }
    Ok(Selected {
        rows,
        visible,
        total,
        has_more,
        printed: None,
        #[cfg(test)]
        held: page.held,
    })
}

/// The page printed by the store as it walks ([`Storage::print_page`]), when
/// the request only prints it: a bucket's list in a `last_modified` order,
/// every row the caller's, filtered at most by `last_modified` bounds (which
/// `range` already holds), no count: then no row is built, each is copied
/// as stored. `None`: [`select`] walks the rows.
async fn printed_page(
    w: &Walk<'_>,
    q: &ListQuery,
    plan: &ScanPlan,
    range: &Range<'_>,
    after: Option<&query::MetaKeyset<'_>>,
) -> Result<Option<Selected>, KintoError> {
    let bounds_only = q.filters.iter().all(|f| {
        f.field == "last_modified"
            && matches!(f.op, Op::Gt | Op::Lt | Op::Min | Op::Max)
            && f.value.as_u64().is_some()
    });
    let sorted_on_meta = q
        .sort
        .iter()
        .all(|k| matches!(k.field.as_str(), "id" | "last_modified"));
    let only_printed = w.lean && !w.acl && !w.count && !w.must_see;
    let walk = plan.ordered && plan.order.by_modified();
    // One chunk's worth, as the walk's first call would read.
    let page = (q.limit.and_then(|l| usize::try_from(l).ok()))
        .filter(|l| l.saturating_add(2) <= MAX_CHUNK);
    let Some(page) = page.filter(|_| only_printed && walk && bounds_only && sorted_on_meta) else {
        return Ok(None);
    };
    let keep = |id: &str, ts: u64| after.is_none_or(|m| m.is_after(id, ts));
    let Some(printed) = w.storage.print_page(range, page, &keep).await? else {
        return Ok(None);
    };
    Ok(Some(Selected::printed(printed)))
}

/// Does the caller see any live row of the list? Walks until the first.
async fn any_visible(
    w: &Walk<'_>,
    keep: &impl Fn(&StoredObject) -> bool,
    budget: &Budget,
) -> Result<bool, KintoError> {
    let mut range = Range {
        parent: w.parent,
        resource: w.resource,
        order: Order::IdAsc,
        from: None,
        stop: None,
        limit: MAX_CHUNK,
        tombstones: false,
        // Only the ACLs are read.
        lean: true,
        acl: true,
        fields: &[],
    };
    loop {
        budget.check()?;
        let chunk = w.storage.scan(&range).await?;
        if chunk.rows.iter().any(keep) {
            return Ok(true);
        }
        let Some(next) = chunk.next else {
            return Ok(false);
        };
        range.from = Some(next);
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
pub(super) mod tests;
