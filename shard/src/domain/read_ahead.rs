//! Read-ahead of a pagination's next page.
//!
//! A client that follows `Next-Page` (kinto-http's "all pages", a sync of a
//! large collection) spends time between two pages on its own: decoding
//! the page, storing its rows. When a page the store printed was asked by
//! its `_token` (the caller is walking the list) and more rows follow, the
//! shard prints the next page in that gap and keeps it here; the next
//! request, if it asks exactly that page, is answered from it.
//!
//! This moves work, it adds none when the walk goes on: the next request
//! reads one entry instead of a page. What a walk that stops wastes is one
//! page. A page is kept only with the list's timestamp read before it was
//! printed, and served only to a request that read the same timestamp:
//! any write to the list in between makes it a miss, never a stale page.
//! Only pages the store printed are kept: every row the caller's, in a
//! `last_modified` order (`select::printed_page`), so a kept page depends on
//! the list and the query alone. The CQL backend prints no pages, so it
//! reads none ahead.

use super::budget::Budget;
use super::request::ListQuery;
use super::select::{self, Walk};
use crate::storage::{PrintedPage, Storage};
use kinto_proto::query;
use serde_json::Value;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Pages kept at once per shard: one per walker, for a few walkers.
const ENTRIES: usize = 16;
/// Bytes kept at once per shard; a page larger than this is not kept.
const BYTES: usize = 32 << 20;
/// A page not asked for within this is dropped (its walker stopped).
const KEPT_FOR: Duration = Duration::from_secs(30);
/// How long printing one page ahead may take.
const DEADLINE: Duration = Duration::from_secs(5);

/// Which page: the list, the query whose `after` is the last row of the
/// page before, and whether tombstones are shown.
#[derive(Debug, Clone, PartialEq)]
pub struct PageKey {
    pub parent: String,
    pub resource: &'static str,
    pub with_tombstones: bool,
    pub query: ListQuery,
}

impl PageKey {
    /// The key of `query` on a list; nonces (a plural DELETE's) apart.
    pub fn new(parent: &str, resource: &'static str, with_tombstones: bool, q: &ListQuery) -> Self {
        PageKey {
            parent: parent.to_owned(),
            resource,
            with_tombstones,
            query: ListQuery {
                used_nonce: None,
                next_nonce: None,
                ..q.clone()
            },
        }
    }

    /// The key of the page after `page` (printed for this key), as its
    /// `_token` asks it: the keyset of its last row on the query's sort.
    pub fn next(self, page: &PrintedPage) -> Option<Self> {
        let last: Value = serde_json::from_slice(page.json.get(page.last.clone())?).ok()?;
        let after = query::keyset_of(&last, &self.query.sort);
        Some(PageKey {
            query: ListQuery {
                after: Some(after),
                ..self.query
            },
            ..self
        })
    }
}

struct Entry {
    key: PageKey,
    /// The list's timestamp, read before the page was printed.
    list_ts: u64,
    at: Instant,
    page: PrintedPage,
}

pub struct ReadAhead {
    entries: Mutex<Vec<Entry>>,
    /// Read-aheads running at once (`list_read_ahead`); none when 0.
    running: Arc<Semaphore>,
    /// `list_read_ahead` is not 0: lookups are made (and counted).
    on: bool,
    /// Pages served from here, for the tests.
    #[cfg(test)]
    pub hits: std::sync::atomic::AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned mutex only lost pages, which are read again.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ReadAhead {
    pub fn new(at_once: usize) -> Arc<Self> {
        Arc::new(ReadAhead {
            entries: Mutex::new(Vec::new()),
            running: Arc::new(Semaphore::new(at_once)),
            on: at_once > 0,
            #[cfg(test)]
            hits: Default::default(),
        })
    }

    /// The page kept for `key`, if the list's timestamp is still `list_ts`.
    /// Taken out: its walker asks for it once.
    pub fn take(&self, key: &PageKey, list_ts: u64) -> Option<PrintedPage> {
        if !self.on {
            return None;
        }
        let page = self.take_fresh(key, list_ts);
        crate::metrics::cache_lookup(crate::metrics::Cache::ReadAhead, page.is_some());
        page
    }

    fn take_fresh(&self, key: &PageKey, list_ts: u64) -> Option<PrintedPage> {
        let mut entries = lock(&self.entries);
        let i = entries.iter().position(|e| e.key == *key)?;
        let e = entries.swap_remove(i);
        let fresh = e.list_ts == list_ts && e.at.elapsed() < KEPT_FOR;
        #[cfg(test)]
        if fresh {
            self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        fresh.then_some(e.page)
    }

    /// Pages kept now.
    #[cfg(test)]
    pub fn kept(&self) -> usize {
        lock(&self.entries).len()
    }

    fn keep(&self, entry: Entry) {
        if entry.page.json.len() > BYTES {
            return;
        }
        let mut entries = lock(&self.entries);
        entries.retain(|e| e.key != entry.key && e.at.elapsed() < KEPT_FOR);
        entries.push(entry);
        // The oldest go first.
        let mut bytes: usize = entries.iter().map(|e| e.page.json.len()).sum();
        while entries.len() > ENTRIES || bytes > BYTES {
            let gone = entries.remove(0);
            bytes = bytes.saturating_sub(gone.page.json.len());
        }
    }

    /// Prints the page `key` asks in the background, unless as many
    /// read-aheads as allowed already run.
    pub fn start(self: &Arc<Self>, storage: Arc<dyn Storage>, key: PageKey) {
        let Ok(permit) = Arc::clone(&self.running).try_acquire_owned() else {
            return;
        };
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let _permit = permit;
            // Before the page: a write after this read shows as a new
            // timestamp, and the page is then never served.
            let Ok(Some(list_ts)) = storage.timestamp(&key.parent, key.resource).await else {
                return;
            };
            let walk = Walk {
                storage: storage.as_ref(),
                parent: &key.parent,
                resource: key.resource,
                with_tombstones: key.with_tombstones,
                count: false,
                must_see: false,
                lean: true,
                acl: false,
            };
            let budget = Budget::lasting(DEADLINE);
            let selected = select::select(walk, &key.query, |_| true, &budget).await;
            if let Ok(select::Selected {
                printed: Some(page),
                ..
            }) = selected
            {
                this.keep(Entry {
                    key,
                    list_ts,
                    at: Instant::now(),
                    page,
                });
            }
        });
    }
}

#[cfg(test)]
mod tests;
