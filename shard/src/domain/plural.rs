//! Plural endpoints: list (GET/HEAD) and delete-many (DELETE), with Kinto's
//! shared-object filtering (kinto-api §3.3), filters, sorting and keyset
//! pagination (§4).

use super::acl::{allowed, Chain, Need, Principals};
use super::authorize::deny;
use super::history::Change;
use super::read_ahead::PageKey;
use super::request::{Outcome, Pre, Request};
use super::resource::{self, Kind, Target};
use super::{select, Shard};
use crate::storage::{StoredObject, Write};
use kinto_proto::{ErrorKind, KintoError};
use serde_json::Value;
use std::sync::Arc;

/// A list's `If-None-Match` (304 on reads) and `If-Match` (412).
fn preconditions(req: &Request, list_ts: u64, delete: bool) -> Result<(), KintoError> {
    if let (Some(Pre::At(ts)), false) = (req.if_none_match, delete) {
        if ts == list_ts {
            return Err(KintoError::new(ErrorKind::NotModified).with_timestamp(list_ts));
        }
    }
    let modified = matches!(req.if_match, Some(Pre::At(ts)) if ts != list_ts);
    if req.if_none_match == Some(Pre::Any) || modified {
        return Err(KintoError::new(ErrorKind::PreconditionFailed).with_timestamp(list_ts));
    }
    Ok(())
}

/// What a plural operation read and selected, once authorized.
struct Listed {
    bucket: Option<Arc<StoredObject>>,
    collection: Option<Arc<StoredObject>>,
    list_ts: u64,
    page: select::Selected,
}

impl Listed {
    /// The selected page, as the list's outcome.
    fn into_page(self) -> Outcome {
        let page = self.page;
        match page.printed {
            Some(printed) => Outcome::printed_page(printed, self.list_ts),
            None => Outcome::page(page.printed_rows(), self.list_ts, page.total, page.has_more),
        }
    }
}

impl Shard {
    /// GET/HEAD on a plural: load, authorize, preconditions, the page.
    pub(super) async fn list(
        &self,
        req: &Request,
        who: &Principals,
    ) -> Result<Outcome, KintoError> {
        check_listable(&req.target, who)?;
        let l = self.load_list(req, who, Need::Read, false).await?;
        // Kinto's record caching headers are for anonymous reads only.
        let anonymous_records = req.target.kind == Kind::Record && who.user_id.is_none();
        let cache_expires = if anonymous_records {
            super::cache_expires::of(l.collection.as_deref())
        } else {
            None
        };
        let mut outcome = l.into_page();
        outcome.cache_expires = cache_expires;
        Ok(outcome)
    }

    /// DELETE on a plural: lock, load, authorize, preconditions, then the
    /// matched objects stamped as tombstones and committed. Buckets are each
    /// locked and committed on their own.
    pub(super) async fn delete_list(
        &self,
        req: &Request,
        who: &Principals,
    ) -> Result<Outcome, KintoError> {
        let t = &req.target;
        check_listable(t, who)?;
        let guard = if t.kind != Kind::Bucket {
            Some(self.lock_for_write(t).await)
        } else {
            None
        };
        let l = self
            .load_list(req, who, Need::Write, guard.is_some())
            .await?;
        if req.query.dry_run {
            // What would be deleted (the gateway merges `DELETE /buckets`'
            // pages from every shard before any deletes).
            return Ok(l.into_page());
        }
        // After every check Kinto makes first (its 403 on shared lists too).
        self.consume_token(req)?;
        let has_more = l.page.has_more;
        let matched = l.page.into_objects();
        let (tombstones, last_ts) = if t.kind == Kind::Bucket {
            self.delete_buckets(t, matched, l.list_ts).await?
        } else {
            let parents = (l.bucket.as_deref(), l.collection.as_deref());
            self.delete_in_list(t, matched, l.list_ts, parents, who)
                .await?
        };
        let outcome = Outcome::list(Value::Array(tombstones), last_ts, 0, has_more);
        self.issue_token(req, &outcome);
        Ok(outcome)
    }

    /// The load, authorize and preconditions steps of a plural operation,
    /// and the page of the objects the caller may `need`. `locked`: the
    /// caller holds the list's write lock.
    async fn load_list(
        &self,
        req: &Request,
        who: &Principals,
        need: Need,
        locked: bool,
    ) -> Result<Listed, KintoError> {
        let t = &req.target;
        let delete = need == Need::Write;
        let (bucket, collection) = self.parents(t).await?;
        let chain = Chain {
            bucket: bucket.as_deref(),
            collection: collection.as_deref(),
            object: None,
        };
        let g = &self.settings.grants;
        let full = allowed(t.kind, need, chain, who, g);
        let can_create = allowed(t.kind, Need::Create, chain, who, g);
        if t.kind == Kind::Record && collection.is_none() {
            return Err(if full || can_create {
                resource::missing_collection(&t.collection)
            } else {
                deny(who)
            });
        }
        let list_ts = if locked {
            self.list_timestamp_locked(t).await?
        } else {
            self.list_timestamp(t).await?
        };
        // Kinto refuses a caller who may see nothing before its preconditions.
        let shared_only = !full && !can_create;
        if !shared_only {
            preconditions(req, list_ts, delete)?;
        }
        let parent = t.parent_id();
        let with_tombstones = req.query.include_tombstones && full && !delete;
        // Kinto's count (HEAD) is of the live objects the caller sees that
        // match the filters. Seeing all of them, unfiltered, that is the
        // list's counter: one read. Otherwise the walk counts.
        let head = req.method == kinto_proto::pb::Method::Head;
        let counted = head && full && req.query.filters.is_empty();
        let walk = select::Walk {
            storage: self.storage.as_ref(),
            parent: &parent,
            resource: t.kind.name(),
            with_tombstones,
            count: head && !counted,
            must_see: shared_only,
            lean: !delete,
            acl: !full,
        };
        // Without the plural permission, only objects shared with the caller.
        let keep = |o: &StoredObject| {
            full || {
                let chain = Chain {
                    bucket: bucket.as_deref(),
                    collection: collection.as_deref(),
                    object: Some(o),
                };
                !o.deleted && allowed(t.kind, need, chain, who, g)
            }
        };
        // A walker's next page (`read_ahead.rs`): a page the store prints
        // (every row the caller's, a GET), asked by its `_token`.
        let ahead = (walk.lean && !walk.acl && !walk.count && !walk.must_see)
            .then_some(req.query.after.as_ref())
            .flatten()
            .map(|_| PageKey::new(&parent, t.kind.name(), with_tombstones, &req.query));
        let kept = (ahead.as_ref()).and_then(|key| self.read_ahead.take(key, list_ts));
        // Kinto answers a HEAD with the count alone (no objects, no
        // `Next-Page`): with the counter, no page is read at all.
        let page = if counted {
            select::Selected::count_only(self.storage.count(&parent, t.kind.name()).await?)
        } else if let Some(printed) = kept {
            select::Selected::printed(printed)
        } else {
            select::select(walk, &req.query, keep, &req.budget).await?
        };
        let printed = page.printed.as_ref().filter(|p| p.has_more);
        if let Some(next) = ahead.zip(printed).and_then(|(key, p)| key.next(p)) {
            self.read_ahead.start(Arc::clone(&self.storage), next);
        }
        if shared_only && page.visible == 0 {
            return Err(deny(who));
        } else if shared_only {
            preconditions(req, list_ts, delete)?;
        }
        Ok(Listed {
            bucket,
            collection,
            list_ts,
            page,
        })
    }

    /// Deletes each matched bucket (with its cascade), one commit per bucket
    /// since each has its own lock. The tombstones, and the last timestamp.
    async fn delete_buckets(
        &self,
        t: &Target,
        matched: Vec<(Value, StoredObject)>,
        list_ts: u64,
    ) -> Result<(Vec<Value>, u64), KintoError> {
        let mut tombstones = Vec::with_capacity(matched.len());
        let mut last_ts = list_ts;
        for (_, o) in matched {
            let target = Target {
                id: Some(o.id.clone()),
                ..t.clone()
            };
            let _guard = self.lock_for_write(&target).await;
            let Some(current) = self
                .storage
                .get("", "bucket", &o.id)
                .await?
                .filter(|c| !c.deleted)
            else {
                continue;
            };
            let ts = self.locked_timestamp("", "bucket").await?.unwrap_or(0);
            let (tomb, mut writes) = self.tombstone_writes(&target, &current, ts, None).await?;
            writes.push(Write::Timestamp {
                parent: String::new(),
                resource: "bucket",
                value: tomb.last_modified,
            });
            self.commit(writes).await?;
            last_ts = tomb.last_modified;
            tombstones.push(tomb.to_json());
        }
        Ok((tombstones, last_ts))
    }

    /// Deletes each matched object of a list the caller has locked (with
    /// its cascade) in one commit. The tombstones, and the last timestamp.
    async fn delete_in_list(
        &self,
        t: &Target,
        matched: Vec<(Value, StoredObject)>,
        list_ts: u64,
        parents: (Option<&StoredObject>, Option<&StoredObject>),
        who: &Principals,
    ) -> Result<(Vec<Value>, u64), KintoError> {
        let mut tombstones = Vec::with_capacity(matched.len());
        let mut writes = Vec::new();
        let mut ts = list_ts;
        let mut deleted = Vec::with_capacity(matched.len());
        for (_, o) in matched {
            let (tomb, w) = self.tombstone_writes(t, &o, ts, None).await?;
            ts = tomb.last_modified;
            writes.extend(w);
            tombstones.push(tomb.to_json());
            deleted.push(tomb);
        }
        if self.tracks_history(t.kind) {
            let changes: Vec<Change<'_>> = deleted
                .iter()
                .map(|object| Change {
                    target: t,
                    action: "delete",
                    object,
                    bucket: parents.0,
                    collection: parents.1,
                })
                .collect();
            let user = who.user_id.as_deref();
            writes.extend(self.history_writes(&t.bucket, user, &changes).await?);
        }
        if writes.is_empty() {
            return Ok((tombstones, list_ts));
        }
        // One timestamp write per list: a batch must not set a key twice.
        writes.push(Write::Timestamp {
            parent: t.parent_id(),
            resource: t.kind.name(),
            value: ts,
        });
        self.commit(writes).await?;
        Ok((tombstones, ts))
    }
}

/// Kinto: anonymous callers cannot list accounts, not even to get `[]`.
fn check_listable(t: &Target, who: &Principals) -> Result<(), KintoError> {
    if t.kind == Kind::Account && who.user_id.is_none() {
        return Err(KintoError::new(ErrorKind::AccountsUnreadable));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
