//! A role of its own for each `kinto-shard` process, and its revocation: the
//! fence of a shard that does not answer a freeze (docs/placement.md,
//! section 6, "CQL", path 2).
//!
//! Cassandra checks a role's permissions on every request, batches
//! included, so once a coordinator revokes `MODIFY` from a shard's role, no
//! commit of that process lands any more, however long it was paused before
//! sending it. Every start creates a new role (`<keyspace>_shard_<i>_<ms>`):
//! a restarted shard writes again, under a role nobody revoked, only after
//! it has read the map, which by then shows its lost slots moving or moved.
//! A role is created before the map is read and revoked after the map shows
//! the move, so either the revocation finds it or its process reads the move.

use scylla::client::session::Session;
use scylla::value::{CqlValue, Row};

/// The prefix of every role of shard `index` on `keyspace`.
fn prefix(keyspace: &str, index: u32) -> String {
    format!("{}_shard_{index}_", keyspace.to_ascii_lowercase())
}

/// A login created for one start of one shard.
pub struct ShardRole {
    pub name: String,
    pub password: String,
}

/// Role names are spliced into CQL text: only what [`prefix`] makes passes.
fn checked(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `name` is `prefix` followed by a start time, and safe to splice.
fn ours(prefix: &str, name: &str) -> bool {
    let start = name.strip_prefix(prefix).unwrap_or_default();
    !start.is_empty() && start.bytes().all(|b| b.is_ascii_digit()) && checked(name)
}

async fn run(session: &Session, cql: String) -> Result<(), String> {
    session
        .query_unpaged(cql.as_str(), ())
        .await
        .map(|_| ())
        .map_err(|e| format!("{cql}: {e}"))
}

/// Every role named `prefix` and a start time: the digits keep keyspace
/// `a`'s shard 1 (`a_shard_1_…`) from matching keyspace `a_shard_1`'s roles.
async fn roles_named(session: &Session, prefix: &str) -> Result<Vec<String>, String> {
    let rows = session
        .query_unpaged("LIST ROLES", ())
        .await
        .map_err(|e| format!("LIST ROLES: {e}"))?
        .into_rows_result()
        .map_err(|e| format!("LIST ROLES: {e}"))?;
    let mut out = Vec::new();
    for row in rows.rows::<Row>().map_err(|e| format!("LIST ROLES: {e}"))? {
        let row = row.map_err(|e| format!("LIST ROLES: {e}"))?;
        if let Some(Some(CqlValue::Text(name))) = row.columns.into_iter().next() {
            if ours(prefix, &name) {
                out.push(name);
            }
        }
    }
    Ok(out)
}

/// Creates this start's role of shard `index`, allowed to read and write
/// `keyspace` only, through `admin` (a login that may create roles). The
/// roles of earlier starts are dropped first: a process still running
/// under one of them (paused, partitioned) is fenced by that too.
pub async fn create(admin: &Session, keyspace: &str, index: u32) -> Result<ShardRole, String> {
    let prefix = prefix(keyspace, index);
    for old in roles_named(admin, &prefix).await? {
        run(admin, format!("DROP ROLE IF EXISTS {old}")).await?;
    }
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let name = format!("{prefix}{started}");
    let password = format!("{:032x}", rand::random::<u128>());
    run(
        admin,
        format!("CREATE ROLE {name} WITH PASSWORD = '{password}' AND LOGIN = true"),
    )
    .await?;
    for permission in ["SELECT", "MODIFY"] {
        run(
            admin,
            format!("GRANT {permission} ON KEYSPACE {keyspace} TO {name}"),
        )
        .await?;
    }
    Ok(ShardRole { name, password })
}

/// Revokes `MODIFY` on `keyspace` from every role of shard `index`; returns
/// their names. Reads stay allowed: the fenced process still reads the map
/// that tells it why.
pub async fn revoke(admin: &Session, keyspace: &str, index: u32) -> Result<Vec<String>, String> {
    let roles = roles_named(admin, &prefix(keyspace, index)).await?;
    for role in &roles {
        run(
            admin,
            format!("REVOKE MODIFY ON KEYSPACE {keyspace} FROM {role}"),
        )
        .await?;
    }
    Ok(roles)
}

/// [`revoke`] with a login of its own, for `kinto-shard admin` and for the
/// `ShardAdmin.Fence` call a shard answers for the operator.
pub struct RoleFence {
    settings: super::settings::CqlSettings,
}

impl RoleFence {
    pub fn new(settings: super::settings::CqlSettings) -> Self {
        RoleFence { settings }
    }
}

#[async_trait::async_trait]
impl crate::storage::ShardFence for RoleFence {
    async fn fence(&self, shard: u32) -> Result<Vec<String>, String> {
        let keyspace = self.settings.keyspace()?;
        // Rare: a session of its own, closed after.
        let admin = self.settings.connect().await?;
        let roles = revoke(&admin, keyspace, shard).await?;
        if roles.is_empty() {
            return Err(format!(
                "shard {shard} has no role of its own on keyspace {keyspace} \
                 (was it started without cql_shard_roles?)"
            ));
        }
        Ok(roles)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shards_roles_are_named_by_keyspace_and_index_only() {
        assert_eq!(prefix("Kinto_1", 3), "kinto_1_shard_3_");
        // Shard 1's prefix is not a prefix of shard 10's roles.
        assert!(!"kinto_shard_10_5".starts_with(&prefix("kinto", 1)));
        assert!(checked("kinto_shard_1_1733"));
        assert!(ours("a_shard_1_", "a_shard_1_1733"));
        assert!(!ours("a_shard_1_", "a_shard_1_shard_2_1733"));
        assert!(!ours("a_shard_1_", "a_shard_1_"));
        assert!(!checked("kinto_shard_1_x; DROP KEYSPACE kinto"));
        assert!(!checked(""));
    }
}

/// Against a real node with authentication (tools/cassandra): the fence
/// holds once the permission cache expires, and only for the shard revoked.
#[cfg(test)]
mod node_tests {
    use super::*;
    use crate::storage::cql::tests::{contact_point, drop_keyspace, fresh_keyspace};
    use crate::storage::cql::Cluster;
    use crate::storage::{Storage, StorageError, StoredObject, Write};
    use std::time::{Duration, Instant};

    fn put(id: &str) -> Vec<Write> {
        vec![Write::Put {
            parent: "/buckets/b/collections/c".into(),
            resource: "record",
            object: StoredObject {
                deleted: false,
                ..StoredObject::tombstone(id, 1)
            },
            previous_last_modified: None,
        }]
    }

    #[tokio::test]
    async fn a_revoked_role_fences_its_process_and_a_restart_writes_again() {
        let Some(contact) = contact_point() else {
            return;
        };
        if std::env::var("KINTO_TEST_CQL_USERNAME").is_err() {
            assert!(
                std::env::var("CI").is_err(),
                "CI is set but the node has no login (KINTO_TEST_CQL_USERNAME): the fence would go untested"
            );
            eprintln!("no KINTO_TEST_CQL_USERNAME: the node has no roles to revoke; skipped");
            return;
        }
        let mut settings = fresh_keyspace(&contact).await;
        settings.cql_shard_roles = true;
        let ks = settings.keyspace().expect("keyspace").to_owned();
        let zero = Cluster::connect_shard(&settings, 0).await.expect("shard 0");
        let one = Cluster::connect_shard(&settings, 1).await.expect("shard 1");
        let (zero_store, one_store) = (zero.storage(0, 1), one.storage(0, 1));
        zero_store
            .commit(put("a"))
            .await
            .expect("under its own role");
        let admin = settings.connect().await.expect("admin login");
        let revoked = revoke(&admin, &ks, 0).await.expect("revoke");
        assert_eq!(revoked.len(), 1, "{revoked:?}");
        // Permissions are cached (1 s on tools/cassandra): writes stop within that.
        let deadline = Instant::now() + Duration::from_secs(30);
        let refused = loop {
            match zero_store.commit(put("b")).await {
                Err(e) => break e,
                Ok(()) => {
                    assert!(
                        Instant::now() < deadline,
                        "still writing 30 s after the revocation"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        assert!(
            matches!(&refused, StorageError::Frozen(m) if m.contains("fenced")),
            "{refused:?}"
        );
        tokio::time::timeout(Duration::from_secs(1), zero.fenced())
            .await
            .expect("the process learns it is fenced");
        // Shard 1 was not revoked.
        one_store.commit(put("c")).await.expect("shard 1 writes on");
        // A restart of shard 0 drops the revoked role and writes under a new one.
        let restarted = Cluster::connect_shard(&settings, 0).await.expect("restart");
        restarted
            .storage(0, 1)
            .commit(put("d"))
            .await
            .expect("a restart writes");
        let left = roles_named(&admin, &prefix(&ks, 0)).await.expect("roles");
        assert!(left.len() == 1 && !revoked.contains(&left[0]), "{left:?}");
        for index in [0, 1] {
            revoke(&admin, &ks, index).await.expect("tidy");
            for role in roles_named(&admin, &prefix(&ks, index))
                .await
                .expect("roles")
            {
                run(&admin, format!("DROP ROLE IF EXISTS {role}"))
                    .await
                    .expect("drop");
            }
        }
        drop_keyspace(&settings).await;
    }
}
