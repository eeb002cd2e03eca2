//! The list counters and the principal index on CQL, written in the same
//! logged batch as the objects they describe (tables `counts`, `grantees`
//! and `grants`, docs/storage-cql.md).
//!
//! A counter is a plain `bigint` read and rewritten by the commit: CQL
//! counter columns cannot share a logged batch with other tables. The read
//! is exact because each list has one writer, the shard owning its bucket,
//! under that bucket's lock (the same argument as the quota counters).

use super::{root_slot, unavailable, Bind, CqlStorage, Row};
use crate::storage::grants::{self, Grant};
use crate::storage::{StorageResult, StoredObject, Write};
use futures_util::TryStreamExt;
use kinto_placement::slot_of;
use scylla::statement::prepared::PreparedStatement;
use std::collections::HashMap;

/// Reads of replaced versions one commit keeps in flight at once.
const READS_IN_FLIGHT: usize = 64;

/// Count changes of one commit, by list.
pub(super) type CountDeltas = HashMap<(String, &'static str), i64>;

impl CqlStorage {
    /// The stored versions the commit's `Put`s replace (`None` where the
    /// write says there is none), read concurrently.
    pub(super) async fn replaced(
        &self,
        writes: &[Write],
    ) -> StorageResult<Vec<Option<StoredObject>>> {
        let mut out = Vec::with_capacity(writes.len());
        // A plural DELETE replaces a page of rows: a bounded number in flight.
        for chunk in writes.chunks(READS_IN_FLIGHT) {
            let reads = chunk.iter().map(|w| self.replaced_by(w));
            for old in futures_util::future::join_all(reads).await {
                out.push(old?);
            }
        }
        Ok(out)
    }

    /// The stored version `w` replaces, if it is a `Put` over one.
    async fn replaced_by(&self, w: &Write) -> StorageResult<Option<StoredObject>> {
        use crate::storage::Storage;
        match w {
            Write::Put {
                parent,
                resource,
                object,
                previous_last_modified: Some(_),
            } => self.get(parent, resource, &object.id).await,
            _ => Ok(None),
        }
    }

    /// The index statements of a `Put` of `new` over `old`, and its count change.
    pub(super) fn plan_put_index(
        &self,
        parent: &str,
        resource: &'static str,
        old: Option<&StoredObject>,
        new: &StoredObject,
        deltas: &mut CountDeltas,
        out: &mut Vec<(PreparedStatement, Bind)>,
    ) {
        let delta = grants::count_delta(old, new);
        if delta != 0 {
            *deltas.entry((parent.to_owned(), resource)).or_default() += delta;
        }
        let (gone, added) = grants::changed(resource, old, new);
        for (principals, add) in [(gone, false), (added, true)] {
            for p in principals {
                self.plan_grant(add, p, parent, resource, &new.id, out);
            }
        }
    }

    /// Adds or removes one index entry, in both tables.
    fn plan_grant(
        &self,
        add: bool,
        principal: &str,
        parent: &str,
        resource: &str,
        id: &str,
        out: &mut Vec<(PreparedStatement, Bind)>,
    ) {
        let s = &self.cluster.statements;
        let (p, pa, r, i) = (
            principal.to_owned(),
            parent.to_owned(),
            resource.to_owned(),
            id.to_owned(),
        );
        let tenant = self.tenant_of(parent);
        let (p2, pa2, r2, i2) = (p.clone(), pa.clone(), r.clone(), i.clone());
        if add {
            out.push((
                s.add_grantee.clone(),
                Box::new(move |ts| Box::new((p, pa, r, i, ts)) as Row),
            ));
            out.push((
                s.add_grant.clone(),
                Box::new(move |ts| Box::new((tenant, pa2, r2, i2, p2, ts)) as Row),
            ));
        } else {
            out.push((
                s.remove_grantee.clone(),
                Box::new(move |ts| Box::new((ts, p, pa, r, i)) as Row),
            ));
            out.push((
                s.remove_grant.clone(),
                Box::new(move |ts| Box::new((ts, tenant, pa2, r2, i2, p2)) as Row),
            ));
        }
    }

    /// The removal of every index entry of the tree at `parent`: the
    /// tenant's entries (objects with an ACL only), filtered to the tree.
    pub(super) async fn plan_purge_index(
        &self,
        parent: &str,
        out: &mut Vec<(PreparedStatement, Bind)>,
    ) -> StorageResult<()> {
        let tenant = self.tenant_of(parent);
        let result = self
            .cluster
            .session
            .execute_unpaged(
                &self.cluster.statements.grants_of_tenant,
                (tenant.as_str(),),
            )
            .await
            .map_err(unavailable)?
            .into_rows_result()
            .map_err(unavailable)?;
        let purged = [parent.to_owned()];
        for row in result
            .rows::<(String, String, String, String)>()
            .map_err(unavailable)?
        {
            let (p, r, id, principal) = row.map_err(unavailable)?;
            if grants::in_purged(&purged, &p) {
                self.plan_grant(false, &principal, &p, &r, &id, out);
            }
        }
        Ok(())
    }

    /// The new values of the counters `deltas` moves, but those of lists in
    /// the `purged` trees (their counters go with them).
    pub(super) async fn plan_counts(
        &self,
        deltas: CountDeltas,
        purged: &[String],
        out: &mut Vec<(PreparedStatement, Bind)>,
    ) -> StorageResult<()> {
        let moved: Vec<_> = deltas
            .into_iter()
            .filter(|((p, _), _)| !grants::in_purged(purged, p))
            .collect();
        let reads = moved
            .iter()
            .map(|((parent, resource), _)| self.count_of(parent, resource));
        let now = futures_util::future::join_all(reads).await;
        for (((parent, resource), delta), now) in moved.into_iter().zip(now) {
            let next = now?.saturating_add_signed(delta) as i64;
            let tenant = self.tenant_of(&parent);
            out.push((
                self.cluster.statements.set_count.clone(),
                Box::new(move |ts| Box::new((ts, next, tenant, parent, resource)) as Row),
            ));
        }
        Ok(())
    }

    pub(super) async fn count_of(&self, parent: &str, resource: &str) -> StorageResult<u64> {
        let n = self
            .list_value(&self.cluster.statements.get_count, parent, resource)
            .await?;
        Ok(n.map_or(0, |n| n.max(0) as u64))
    }

    /// The principal's entries, of the buckets and accounts this shard owns.
    pub(super) async fn granted_to(&self, principal: &str) -> StorageResult<Vec<Grant>> {
        // Never indexed (see `grants::principals`), and not a partition key.
        if principal.is_empty() {
            return Ok(Vec::new());
        }
        let pager = self
            .cluster
            .session
            .execute_iter(self.cluster.statements.grantees_of.clone(), (principal,))
            .await
            .map_err(unavailable)?;
        let mut rows = pager
            .rows_stream::<(String, String, String)>()
            .map_err(unavailable)?;
        let mut out = Vec::new();
        while let Some((parent, resource, id)) = rows.try_next().await.map_err(unavailable)? {
            if self.owns(&parent, &resource, &id) {
                out.push(Grant {
                    parent,
                    resource,
                    id,
                });
            }
        }
        Ok(out)
    }

    /// Does this shard serve the object `(parent, resource, id)`?
    fn owns(&self, parent: &str, resource: &str, id: &str) -> bool {
        let slot = match parent.strip_prefix("/buckets/") {
            Some(rest) => slot_of(rest.split('/').next().unwrap_or(rest)),
            None if parent.is_empty() => root_slot(resource, id),
            None => return false,
        };
        self.slots.served(slot)
    }
}
