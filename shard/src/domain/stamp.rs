//! Step 5 of a write: stamp. A new version gets a `last_modified` above its
//! list's timestamp (or the client's, when greater: [`clock::stamp`]), read
//! under the bucket's lock so two writes of a list never share one.

use super::clock;
use super::draft::Draft;
use super::members::members_of;
use super::resource::{self, Kind, Target};
use super::Shard;
use crate::storage::{StoredObject, Write};
use kinto_proto::KintoError;

impl Shard {
    /// The object `draft` proposes at `id` in the list `(parent, resource)`,
    /// stamped, with the list's new timestamp.
    pub(super) async fn stamp(
        &self,
        parent: &str,
        resource: &'static str,
        id: String,
        draft: Draft,
    ) -> Result<(StoredObject, u64), KintoError> {
        let list_ts = self.locked_timestamp(parent, resource).await?.unwrap_or(0);
        let (ts, new_list_ts) = clock::stamp(list_ts, draft.client_ts);
        let object = StoredObject {
            id,
            last_modified: ts,
            deleted: false,
            data: draft.data,
            permissions: draft.acl,
        };
        Ok((object, new_list_ts))
    }

    /// The writes that delete `existing`: its tombstone, stamped after
    /// `list_ts` (or at `forced`, when greater), and the cascade below it
    /// (children, their tombstones and timestamps, group memberships).
    /// The caller writes the list timestamp once: a batch never sets a key twice.
    pub(super) async fn tombstone_writes(
        &self,
        t: &Target,
        existing: &StoredObject,
        list_ts: u64,
        forced: Option<u64>,
    ) -> Result<(StoredObject, Vec<Write>), KintoError> {
        let parent = t.parent_id();
        let resource = t.kind.name();
        let (ts, _) = clock::stamp(list_ts, forced);
        let tombstone = StoredObject::tombstone(&existing.id, ts);
        let mut writes = vec![Write::Put {
            parent,
            resource,
            object: tombstone.clone(),
            previous_last_modified: Some(existing.last_modified),
        }];
        match t.kind {
            Kind::Bucket => {
                let uri = resource::bucket_uri(&existing.id);
                for group in self.storage.list(&uri, "group", None, false).await? {
                    let group_uri = format!("{uri}/groups/{}", group.id);
                    for principal in members_of(Some(&group)) {
                        writes.push(Write::RemoveMember {
                            principal,
                            group_uri: group_uri.clone(),
                        });
                    }
                }
                writes.push(Write::PurgeTree { parent: uri });
            }
            Kind::Collection => writes.push(Write::PurgeTree {
                parent: resource::collection_uri(&t.bucket, &existing.id),
            }),
            Kind::Group => {
                let group_uri = t.object_uri(&existing.id);
                for principal in members_of(Some(existing)) {
                    writes.push(Write::RemoveMember {
                        principal,
                        group_uri: group_uri.clone(),
                    });
                }
            }
            // Deleting an account leaves its owner's data, as in Kinto.
            Kind::Record | Kind::Account | Kind::History => {}
        }
        Ok((tombstone, writes))
    }
}
