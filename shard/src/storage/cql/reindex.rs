//! The one-time build of the list counters and the principal index of a
//! keyspace that held objects before schema version 2 (`kinto-shard migrate`
//! runs it when it applies that version to a keyspace of version 1).
//!
//! One paged walk of `objects`; the root lists' counters are per shard, so
//! it needs the deployment's shard count to know which shard each bucket's
//! and account's slot belongs to. Writes are idempotent (explicit values,
//! no increments): a walk interrupted and run again ends with the same rows.

use super::{root_slot, tenant, unavailable, Cluster};
use crate::storage::grants;
use crate::storage::{StorageError, StorageResult, StoredObject};
use futures_util::TryStreamExt;
use kinto_placement::ShardLayout;
use std::collections::HashMap;

impl Cluster {
    /// Indexes every live object of the keyspace for a deployment of
    /// `shard_count` shards (static map). Returns the objects indexed.
    pub async fn reindex(&self, shard_count: u32) -> StorageResult<u64> {
        let layout = ShardLayout::fixed(shard_count.max(1));
        let s = &self.statements;
        let pager = self
            .session
            .execute_iter(s.every_object.clone(), ())
            .await
            .map_err(unavailable)?;
        let mut rows = pager
            .rows_stream::<(String, String, Vec<u8>)>()
            .map_err(unavailable)?;
        let mut counts: HashMap<(String, String, String), i64> = HashMap::new();
        let mut indexed = 0;
        while let Some((parent, resource, body)) = rows.try_next().await.map_err(unavailable)? {
            let object: StoredObject =
                serde_json::from_slice(&body).map_err(|e| StorageError::Corrupt(e.to_string()))?;
            if object.deleted {
                continue;
            }
            let tenant = if parent.is_empty() {
                let slot = root_slot(&resource, &object.id);
                format!("@shard/{}", layout.owner_of_slot(slot))
            } else {
                tenant(&parent).to_owned()
            };
            let ts = self.timestamps(1);
            let named = grants::principals(&object.permissions);
            for p in named.into_iter().filter(|_| grants::indexed(&resource)) {
                let id = object.id.as_str();
                self.session
                    .execute_unpaged(&s.add_grantee, (p, &parent, &resource, id, ts))
                    .await
                    .map_err(unavailable)?;
                self.session
                    .execute_unpaged(&s.add_grant, (&tenant, &parent, &resource, id, p, ts))
                    .await
                    .map_err(unavailable)?;
            }
            *counts.entry((tenant, parent, resource)).or_default() += 1;
            indexed += 1;
        }
        for ((tenant, parent, resource), n) in counts {
            self.session
                .execute_unpaged(
                    &s.set_count,
                    (self.timestamps(1), n, tenant, parent, resource),
                )
                .await
                .map_err(unavailable)?;
        }
        Ok(indexed)
    }
}
