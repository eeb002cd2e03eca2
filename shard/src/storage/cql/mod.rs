//! The wide-column backend: ScyllaDB or Cassandra through the `scylla` driver.
//!
//! One keyspace holds every shard's data (docs/storage-cql.md). What keeps
//! shards apart is ownership, not separate tables: each bucket has one
//! writer, the shard owning its placement slot, and the few reads that span
//! tenants (the root lists of buckets and accounts, the group index) are
//! filtered to the slots this shard owns, exactly what a shard's own
//! embedded store would hold.
//!
//! A commit is one LOGGED batch: all of an operation's writes apply or none
//! do, even if this process dies mid-way (the coordinator's batchlog replays
//! it). Batches are not isolated across partitions, which the single writer
//! makes harmless: nobody else writes or reads its buckets meanwhile.

mod indexes;
pub mod map_store;
mod reindex;
mod resend;
pub mod roles;
mod scan;
pub mod schema;
pub mod settings;
pub mod slots;
mod statements;

use super::slots::slot_of_write;
use super::{Chunk, Grant, Range, Storage, StorageError, StorageResult, StoredObject, Write};
use async_trait::async_trait;
use futures_util::TryStreamExt;
use kinto_placement::{slot_of, PlacementKey, ShardLayout};
use scylla::client::session::Session;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use statements::Statements;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// What a process shares between its shards: one session, prepared statements.
pub struct Cluster {
    session: Arc<Session>,
    statements: Statements,
    keyspace: String,
    /// The last CQL write timestamp handed out, in µs.
    clock: AtomicI64,
    /// Set once Cassandra refused a commit for want of permission: a
    /// rebalance revoked this process's role (docs/placement.md, section 6).
    fenced: tokio::sync::watch::Sender<bool>,
}

impl Cluster {
    /// Connects, checks the schema version and prepares every statement.
    pub async fn connect(settings: &settings::CqlSettings) -> Result<Arc<Self>, String> {
        Self::with_session(settings, settings.connect().await?).await
    }

    /// Connects as shard `index`: under a role of this start's own when
    /// `cql_shard_roles` is set (see [`roles`]), created before anything
    /// reads the map.
    pub async fn connect_shard(
        settings: &settings::CqlSettings,
        index: u32,
    ) -> Result<Arc<Self>, String> {
        if !settings.cql_shard_roles {
            return Self::connect(settings).await;
        }
        let keyspace = settings.keyspace()?;
        let role = roles::create(settings.connect().await?.as_ref(), keyspace, index)
            .await
            .map_err(|e| format!("cql_shard_roles: cannot create this shard's role: {e}"))?;
        tracing::info!(role = %role.name, "writing under a role of this start's own");
        // A new role may take a moment to be known by every node.
        let mut tries = 0;
        let session = loop {
            tries += 1;
            match settings
                .connect_as(Some((&role.name, &role.password)))
                .await
            {
                Ok(session) => break session,
                Err(e) if tries >= 20 => return Err(e),
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
            }
        };
        Self::with_session(settings, session).await
    }

    async fn with_session(
        settings: &settings::CqlSettings,
        session: Arc<Session>,
    ) -> Result<Arc<Self>, String> {
        let keyspace = settings.keyspace()?.to_owned();
        schema::check(&session, &keyspace).await?;
        let statements = Statements::prepare(&session, &keyspace, settings.page_size()).await?;
        Ok(Arc::new(Cluster {
            session,
            statements,
            keyspace,
            clock: AtomicI64::new(0),
            fenced: tokio::sync::watch::channel(false).0,
        }))
    }

    /// Resolves once a commit was refused because this process's role may
    /// no longer write. The process must then stop: its restart takes a new
    /// role and reads the map, which shows what was taken from it.
    pub async fn fenced(&self) {
        let mut seen = self.fenced.subscribe();
        let _ = seen.wait_for(|&fenced| fenced).await;
    }

    pub fn is_fenced(&self) -> bool {
        *self.fenced.borrow()
    }

    /// The error of a commit Cassandra refused for certain.
    fn refused(&self, e: scylla::errors::ExecutionError) -> StorageError {
        if resend::fenced(&e) {
            tracing::error!(error = %e, "Cassandra refused a commit of this shard's role: a rebalance fenced this shard; it stops");
            self.fenced.send_replace(true);
            return StorageError::Frozen(
                "this shard was fenced by a rebalance (its role may no longer write)".into(),
            );
        }
        unavailable(e)
    }

    /// `n` consecutive CQL write timestamps, all above any handed out before.
    ///
    /// Why explicit timestamps: Cassandra orders writes to a cell by them, and
    /// within one batch every statement would otherwise share one, so a
    /// partition deletion and a later insert into that partition in the same
    /// commit would tie (and the deletion would win). The counter also keeps
    /// commits of this process ordered if the wall clock steps back.
    fn timestamps(&self, n: usize) -> i64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        let n = n as i64;
        let mut base = 0;
        let _ = self
            .clock
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                base = now.max(last + 1);
                Some(base + n - 1)
            });
        base
    }

    /// The storage of shard `index` of `count`, owning the slots of the
    /// static map until its mover attaches it to the live one.
    pub fn storage(self: &Arc<Self>, index: u32, count: u32) -> Arc<CqlStorage> {
        let layout = ShardLayout::fixed(count);
        Arc::new(CqlStorage {
            cluster: self.clone(),
            index,
            slots: slots::CqlSlots::new(|s| layout.owner_of_slot(s) == index),
        })
    }

    pub fn keyspace(&self) -> &str {
        &self.keyspace
    }

    /// The deployment's shard map, in this keyspace.
    pub async fn map_store(&self) -> Result<map_store::CqlMapStore, String> {
        map_store::CqlMapStore::new(Arc::clone(&self.session), &self.keyspace).await
    }
}

/// One shard's view of the cluster.
pub struct CqlStorage {
    cluster: Arc<Cluster>,
    index: u32,
    /// Which slots this shard serves and writes, and its commits in flight.
    slots: Arc<slots::CqlSlots>,
}

fn unavailable(e: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(e.to_string())
}

fn decode(bytes: &[u8]) -> StorageResult<StoredObject> {
    serde_json::from_slice(bytes).map_err(|e| StorageError::Corrupt(e.to_string()))
}

/// FNV-1a: a hash fixed forever (it decides where rows live), unlike std's.
fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The root lists (parent `""`) are split by placement slot, so a shard reads
/// only its own buckets and accounts, by their placement keys.
fn root_slot(resource: &str, id: &str) -> u32 {
    if resource == "account" {
        PlacementKey::Account(id).slot()
    } else {
        slot_of(id)
    }
}

fn part_of(parent: &str, resource: &str, id: &str) -> i16 {
    if parent.is_empty() {
        root_slot(resource, id) as i16
    } else {
        (fnv1a(id) % schema::SPLIT) as i16
    }
}

/// The bucket a parent belongs to (`/buckets/b/collections/c` → `/buckets/b`),
/// the partition of the `lists` table that a cascade deletion reads.
fn tenant(parent: &str) -> &str {
    if let Some(rest) = parent.strip_prefix("/buckets/") {
        let end = rest
            .find('/')
            .map_or(parent.len(), |i| "/buckets/".len() + i);
        &parent[..end]
    } else {
        parent
    }
}

/// The values of one batch statement, whatever its columns.
type Row = Box<dyn SerializeRow + Send + Sync>;
/// A statement's values given its write timestamp (µs).
type Bind = Box<dyn FnOnce(i64) -> Row + Send>;

impl CqlStorage {
    fn parts(&self, parent: &str) -> Vec<i16> {
        if parent.is_empty() {
            self.slots.served_parts()
        } else {
            (0..schema::SPLIT as i16).collect()
        }
    }

    /// The `lists` partition of `parent`; root lists are kept per shard, as
    /// each shard had its own store (their timestamps are its own).
    fn tenant_of(&self, parent: &str) -> String {
        if parent.is_empty() {
            format!("@shard/{}", self.index)
        } else {
            tenant(parent).to_owned()
        }
    }

    fn owns_group(&self, group_uri: &str) -> bool {
        let bucket = group_uri
            .strip_prefix("/buckets/")
            .and_then(|r| r.split('/').next())
            .unwrap_or(group_uri);
        self.slots.served(slot_of(bucket))
    }

    /// The one `bigint` column `statement` reads from the list's row (in
    /// `lists` or `counts`), if set.
    async fn list_value(
        &self,
        statement: &PreparedStatement,
        parent: &str,
        resource: &str,
    ) -> StorageResult<Option<i64>> {
        let tenant = self.tenant_of(parent);
        let result = self
            .cluster
            .session
            .execute_unpaged(statement, (tenant.as_str(), parent, resource))
            .await
            .map_err(unavailable)?
            .into_rows_result()
            .map_err(unavailable)?;
        let row = result
            .maybe_first_row::<(Option<i64>,)>()
            .map_err(unavailable)?;
        Ok(row.and_then(|(v,)| v))
    }

    /// Reads every row's body from `statement` run once per chunk of parts.
    async fn bodies(
        &self,
        statement: &PreparedStatement,
        parent: &str,
        resource: &str,
        since: Option<i64>,
    ) -> StorageResult<Vec<StoredObject>> {
        let session = &self.cluster.session;
        let mut out = Vec::new();
        // IN lists stay short: the coordinator reads those partitions in parallel.
        for chunk in self.parts(parent).chunks(64) {
            let parts = chunk.to_vec();
            let pager = match since {
                Some(s) => session
                    .execute_iter(statement.clone(), (parent, resource, parts, s))
                    .await
                    .map_err(unavailable)?,
                None => session
                    .execute_iter(statement.clone(), (parent, resource, parts))
                    .await
                    .map_err(unavailable)?,
            };
            let mut rows = pager.rows_stream::<(Vec<u8>,)>().map_err(unavailable)?;
            while let Some((body,)) = rows.try_next().await.map_err(unavailable)? {
                out.push(decode(&body)?);
            }
        }
        Ok(out)
    }

    /// The batch statements of one write. Each gets its values once the
    /// commit knows its write timestamp (see [`Cluster::timestamps`]).
    /// `stamped`: the lists whose timestamp this commit sets; that UPDATE
    /// already keeps their `lists` row alive, so their puts need no touch.
    async fn plan(
        &self,
        w: Write,
        stamped: &[(String, &'static str)],
        out: &mut Vec<(PreparedStatement, Bind)>,
    ) -> StorageResult<()> {
        let s = &self.cluster.statements;
        match w {
            Write::Put {
                parent,
                resource,
                object,
                previous_last_modified,
            } => {
                let part = part_of(&parent, resource, &object.id);
                let body = serde_json::to_vec(&object)
                    .map_err(|e| StorageError::Corrupt(e.to_string()))?;
                let (lm, id, r) = (object.last_modified as i64, object.id, resource.to_owned());
                if let Some(prev) = previous_last_modified.map(|p| p as i64) {
                    if prev != lm {
                        let (p, r, id) = (parent.clone(), r.clone(), id.clone());
                        out.push((
                            s.delete_change.clone(),
                            Box::new(move |ts| Box::new((ts, p, r, part, prev, id)) as Row),
                        ));
                    }
                }
                let (p, r2, id2, b) = (parent.clone(), r.clone(), id.clone(), body.clone());
                out.push((
                    s.insert_object.clone(),
                    Box::new(move |ts| Box::new((p, r2, part, id2, lm, b, ts)) as Row),
                ));
                let (p, r2) = (parent.clone(), r.clone());
                out.push((
                    s.insert_change.clone(),
                    Box::new(move |ts| Box::new((p, r2, part, lm, id, body, ts)) as Row),
                ));
                if !stamped
                    .iter()
                    .any(|(p, res)| *p == parent && *res == resource)
                {
                    let tenant = self.tenant_of(&parent);
                    out.push((
                        s.touch_list.clone(),
                        Box::new(move |ts| Box::new((tenant, parent, r, ts)) as Row),
                    ));
                }
            }
            Write::Timestamp {
                parent,
                resource,
                value,
            } => {
                let tenant = self.tenant_of(&parent);
                let (value, r) = (value as i64, resource.to_owned());
                out.push((
                    s.set_timestamp.clone(),
                    Box::new(move |ts| Box::new((ts, value, tenant, parent, r)) as Row),
                ));
            }
            Write::PurgeTree { parent } => {
                let tenant = self.tenant_of(&parent);
                let below = format!("{parent}/");
                let rows = self
                    .cluster
                    .session
                    .execute_unpaged(&s.lists_of_tenant, (tenant.as_str(),))
                    .await
                    .map_err(unavailable)?
                    .into_rows_result()
                    .map_err(unavailable)?;
                for row in rows.rows::<(String, String)>().map_err(unavailable)? {
                    let (p, r) = row.map_err(unavailable)?;
                    if p != parent && !p.starts_with(&below) {
                        continue;
                    }
                    // Partition-level deletions: one tombstone per partition,
                    // never one per row for later reads to step over.
                    for part in self.parts(&p) {
                        for statement in [&s.drop_objects, &s.drop_changes] {
                            let (p, r) = (p.clone(), r.clone());
                            out.push((
                                statement.clone(),
                                Box::new(move |ts| Box::new((ts, p, r, part)) as Row),
                            ));
                        }
                    }
                    let (t, p2, r2) = (tenant.clone(), p.clone(), r.clone());
                    out.push((
                        s.drop_count.clone(),
                        Box::new(move |ts| Box::new((ts, t, p2, r2)) as Row),
                    ));
                    let tenant = tenant.clone();
                    out.push((
                        s.drop_list.clone(),
                        Box::new(move |ts| Box::new((ts, tenant, p, r)) as Row),
                    ));
                }
                self.plan_purge_index(&parent, out).await?;
            }
            Write::AddMember {
                principal,
                group_uri,
            } => out.push((
                s.add_member.clone(),
                Box::new(move |ts| Box::new((principal, group_uri, ts)) as Row),
            )),
            Write::RemoveMember {
                principal,
                group_uri,
            } => out.push((
                s.remove_member.clone(),
                Box::new(move |ts| Box::new((ts, principal, group_uri)) as Row),
            )),
        }
        Ok(())
    }
}

#[async_trait]
impl Storage for CqlStorage {
    async fn get(
        &self,
        parent: &str,
        resource: &str,
        id: &str,
    ) -> StorageResult<Option<StoredObject>> {
        let part = part_of(parent, resource, id);
        let result = self
            .cluster
            .session
            .execute_unpaged(
                &self.cluster.statements.get_object,
                (parent, resource, part, id),
            )
            .await
            .map_err(unavailable)?
            .into_rows_result()
            .map_err(unavailable)?;
        match result
            .maybe_first_row::<(Vec<u8>,)>()
            .map_err(unavailable)?
        {
            Some((body,)) => Ok(Some(decode(&body)?)),
            None => Ok(None),
        }
    }

    async fn list(
        &self,
        parent: &str,
        resource: &str,
        since: Option<u64>,
        with_tombstones: bool,
    ) -> StorageResult<Vec<StoredObject>> {
        let s = &self.cluster.statements;
        let mut out = match since {
            Some(since) => {
                let since = i64::try_from(since).unwrap_or(i64::MAX);
                let mut rows = self
                    .bodies(&s.changes_since, parent, resource, Some(since))
                    .await?;
                // An index row of a replaced version can come back if a
                // replica missed its deletion past gc_grace_seconds: the
                // newest version of an id is the only true one.
                rows.sort_by(|a, b| a.id.cmp(&b.id).then(b.last_modified.cmp(&a.last_modified)));
                rows.dedup_by(|later, first| later.id == first.id);
                rows
            }
            None => self.bodies(&s.list_objects, parent, resource, None).await?,
        };
        if !with_tombstones {
            out.retain(|o| !o.deleted);
        }
        Ok(out)
    }

    async fn scan(&self, range: &Range<'_>) -> StorageResult<Chunk> {
        self.scan_list(range).await
    }

    async fn count(&self, parent: &str, resource: &str) -> StorageResult<u64> {
        self.count_of(parent, resource).await
    }

    async fn granted(&self, principal: &str) -> StorageResult<Vec<Grant>> {
        self.granted_to(principal).await
    }

    async fn timestamp(&self, parent: &str, resource: &str) -> StorageResult<Option<u64>> {
        let ts = self
            .list_value(&self.cluster.statements.get_timestamp, parent, resource)
            .await?;
        Ok(ts.map(|ts| ts as u64))
    }

    async fn groups_of(&self, principals: &[String]) -> StorageResult<Vec<String>> {
        let statement = &self.cluster.statements.groups_of;
        let reads = principals.iter().map(|p| {
            self.cluster
                .session
                .execute_unpaged(statement, (p.as_str(),))
        });
        let mut out = Vec::new();
        for result in futures_util::future::join_all(reads).await {
            let rows = result
                .map_err(unavailable)?
                .into_rows_result()
                .map_err(unavailable)?;
            for row in rows.rows::<(String,)>().map_err(unavailable)? {
                let (uri,) = row.map_err(unavailable)?;
                if self.owns_group(&uri) && !out.contains(&uri) {
                    out.push(uri);
                }
            }
        }
        Ok(out)
    }

    async fn commit(&self, writes: Vec<Write>) -> StorageResult<()> {
        use tracing::Instrument;
        let span = tracing::info_span!("storage.commit", writes = writes.len(), backend = "cql");
        async move {
            let _timer = crate::metrics::COMMITS.as_ref().map(|h| h.start_timer());
            // Before anything is read: a freeze waits for this commit.
            let in_flight = self
                .slots
                .enter(writes.iter().filter_map(slot_of_write).collect())?;
            let stamped: Vec<(String, &'static str)> = writes
                .iter()
                .filter_map(|w| match w {
                    Write::Timestamp {
                        parent, resource, ..
                    } => Some((parent.clone(), *resource)),
                    _ => None,
                })
                .collect();
            let replaced = self.replaced(&writes).await?;
            let mut planned = Vec::new();
            let mut deltas = indexes::CountDeltas::new();
            let mut purged = Vec::new();
            for (w, old) in writes.into_iter().zip(replaced) {
                match &w {
                    Write::Put {
                        parent,
                        resource,
                        object,
                        ..
                    } => self.plan_put_index(
                        parent,
                        resource,
                        old.as_ref(),
                        object,
                        &mut deltas,
                        &mut planned,
                    ),
                    Write::PurgeTree { parent } => purged.push(parent.clone()),
                    _ => {}
                }
                self.plan(w, &stamped, &mut planned).await?;
            }
            // Last: each counter's write then has the batch's latest timestamp.
            self.plan_counts(deltas, &purged, &mut planned).await?;
            if planned.is_empty() {
                return Ok(());
            }
            let base = self.cluster.timestamps(planned.len());
            let mut batch = Batch::new(BatchType::Logged);
            let mut values = Vec::with_capacity(planned.len());
            for (i, (statement, bind)) in planned.into_iter().enumerate() {
                values.push(bind(base + i as i64));
                batch.append_statement(statement);
            }
            // On a task of its own: a caller that gives up (its deadline)
            // does not stop the resends, nor leave the drain early.
            let cluster = Arc::clone(&self.cluster);
            tokio::spawn(async move {
                let sent = resend::until_answered(&cluster.session, &batch, &values).await;
                drop(in_flight);
                sent.map_err(|e| cluster.refused(e))
            })
            .await
            .map_err(unavailable)?
        }
        .instrument(span)
        .await
    }

    fn slot_moves(&self) -> Option<&dyn super::slots::SlotMoves> {
        Some(self.slots.as_ref())
    }

    async fn flush(&self) -> StorageResult<()> {
        let ks = &self.cluster.keyspace;
        for table in [
            "objects", "changes", "lists", "members", "counts", "grantees", "grants",
        ] {
            self.cluster
                .session
                .query_unpaged(schema::ddl(format!("TRUNCATE {ks}.{table}")), ())
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn health(&self) -> StorageResult<()> {
        self.cluster
            .session
            .execute_unpaged(&self.cluster.statements.health, ())
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// The conformance suite against a real node: `KINTO_TEST_CQL=host:port`
/// (tests/run starts one). Without it the test says so and passes, unless
/// `CI` is set: CI must not skip it silently.
#[cfg(test)]
mod tests {
    use super::*;

    pub(in crate::storage::cql) fn contact_point() -> Option<String> {
        match std::env::var("KINTO_TEST_CQL") {
            Ok(v) if !v.is_empty() => Some(v),
            _ => {
                assert!(
                    std::env::var("CI").is_err(),
                    "CI is set but KINTO_TEST_CQL is not: the CQL backend would go untested"
                );
                eprintln!("KINTO_TEST_CQL not set: CQL conformance skipped");
                None
            }
        }
    }

    /// The settings of `keyspace` on the test node, with its login
    /// (`KINTO_TEST_CQL_USERNAME`, `KINTO_TEST_CQL_PASSWORD`) if it has one.
    pub(super) fn node_env(contact: &str, keyspace: &str) -> Vec<(String, String)> {
        let mut env = vec![
            ("KINTO_CQL_CONTACT_POINTS".to_owned(), contact.to_owned()),
            ("KINTO_CQL_KEYSPACE".to_owned(), keyspace.to_owned()),
        ];
        for key in ["USERNAME", "PASSWORD"] {
            if let Ok(v) = std::env::var(format!("KINTO_TEST_CQL_{key}")) {
                env.push((format!("KINTO_CQL_{key}"), v));
            }
        }
        env
    }

    pub(in crate::storage::cql) async fn fresh_keyspace(contact: &str) -> settings::CqlSettings {
        let raw = kinto_runtime::settings::RawSettings::default().with_env(node_env(
            contact,
            &format!("conformance_{}", uuid::Uuid::new_v4().simple()),
        ));
        let settings: settings::CqlSettings = raw.parse().expect("settings");
        let session = settings.connect().await.expect("connect");
        let ks = settings.keyspace().expect("keyspace");
        assert_eq!(
            schema::migrate(&session, ks, &settings.cql_replication)
                .await
                .expect("migrate"),
            (1..=schema::CURRENT).collect::<Vec<_>>()
        );
        // Idempotent: a second run applies nothing.
        assert!(schema::migrate(&session, ks, &settings.cql_replication)
            .await
            .expect("migrate again")
            .is_empty());
        settings
    }

    /// A connected cluster on a new, migrated keyspace; `None` when no node is configured.
    pub(super) async fn fresh_cluster() -> Option<(settings::CqlSettings, Arc<Cluster>)> {
        let settings = fresh_keyspace(&contact_point()?).await;
        let cluster = Cluster::connect(&settings).await.expect("connect");
        Some((settings, cluster))
    }

    /// Best effort: the node's data directory goes at the end of the run anyway.
    pub(in crate::storage::cql) async fn drop_keyspace(settings: &settings::CqlSettings) {
        let session = settings.connect().await.expect("connect");
        let ks = settings.keyspace().expect("keyspace");
        if let Err(e) = session
            .query_unpaged(schema::ddl(format!("DROP KEYSPACE {ks}")), ())
            .await
        {
            eprintln!("DROP KEYSPACE {ks}: {e}");
        }
    }

    #[tokio::test]
    async fn passes_the_conformance_suite() {
        let Some((settings, cluster)) = fresh_cluster().await else {
            return;
        };
        let store = cluster.storage(0, 1);
        crate::storage::conformance::run_all(store.as_ref()).await;
        drop_keyspace(&settings).await;
    }

    /// Two shards on one keyspace each see only the buckets and groups they own.
    #[tokio::test]
    async fn shards_sharing_a_keyspace_see_their_own_slots() {
        let Some((settings, cluster)) = fresh_cluster().await else {
            return;
        };
        let shards = [cluster.storage(0, 2), cluster.storage(1, 2)];
        let mut owner_of = std::collections::HashMap::new();
        for i in 0..20 {
            let id = format!("b{i}");
            let owner = ShardLayout::fixed(2).owner(PlacementKey::Bucket(&id)) as usize;
            owner_of.insert(id.clone(), owner);
            shards[owner]
                .commit(vec![
                    Write::Put {
                        parent: String::new(),
                        resource: "bucket",
                        object: StoredObject {
                            deleted: false,
                            ..StoredObject::tombstone(&id, 1)
                        },
                        previous_last_modified: None,
                    },
                    Write::AddMember {
                        principal: "alice".into(),
                        group_uri: format!("/buckets/{id}/groups/g"),
                    },
                ])
                .await
                .expect("commit");
        }
        let mut seen = 0;
        for (index, shard) in shards.iter().enumerate() {
            let listed = shard.list("", "bucket", None, false).await.expect("list");
            for b in &listed {
                assert_eq!(owner_of[&b.id], index, "{} listed by shard {index}", b.id);
            }
            let groups = shard.groups_of(&["alice".into()]).await.expect("groups");
            assert_eq!(groups.len(), listed.len());
            seen += listed.len();
        }
        assert_eq!(seen, 20);
        drop_keyspace(&settings).await;
    }

    /// A `changes` row of a replaced version that comes back (a replica that
    /// missed the deletion) must not resurrect the old version in `_since`.
    #[tokio::test]
    async fn a_resurrected_index_row_is_ignored() {
        let Some((settings, cluster)) = fresh_cluster().await else {
            return;
        };
        let store = cluster.storage(0, 1);
        let p = "/buckets/b/collections/c";
        let v = |lm| StoredObject {
            deleted: false,
            ..StoredObject::tombstone("r", lm)
        };
        let put = |lm, prev| Write::Put {
            parent: p.into(),
            resource: "record",
            object: v(lm),
            previous_last_modified: prev,
        };
        store.commit(vec![put(10, None)]).await.expect("commit");
        store.commit(vec![put(20, Some(10))]).await.expect("commit");
        let old = serde_json::to_vec(&v(10)).expect("json");
        cluster
            .session
            .query_unpaged(
                format!(
                    "INSERT INTO {}.changes (parent, resource, part, last_modified, id, body) \
                     VALUES (?, 'record', ?, 10, 'r', ?)",
                    cluster.keyspace()
                ),
                (p, part_of(p, "record", "r"), old),
            )
            .await
            .expect("resurrect");
        let listed = store.list(p, "record", Some(0), true).await.expect("list");
        assert_eq!(listed, vec![v(20)]);
        drop_keyspace(&settings).await;
    }

    /// A keyspace written before schema version 2 gets its counters and
    /// principal index from `reindex`.
    #[tokio::test]
    async fn reindex_builds_counters_and_index_of_stored_objects() {
        let Some((settings, cluster)) = fresh_cluster().await else {
            return;
        };
        let store = cluster.storage(0, 1);
        let p = "/buckets/b/collections/c";
        let mut writes = crate::storage::conformance_indexes::eve_records(p);
        let mut bucket = StoredObject::tombstone("b", 1);
        bucket.deleted = false;
        writes.push(Write::Put {
            parent: String::new(),
            resource: "bucket",
            object: bucket,
            previous_last_modified: None,
        });
        store.commit(writes).await.expect("commit");
        for table in ["counts", "grantees", "grants"] {
            cluster
                .session
                .query_unpaged(
                    schema::ddl(format!("TRUNCATE {}.{table}", cluster.keyspace())),
                    (),
                )
                .await
                .expect("truncate");
        }
        assert_eq!(store.count(p, "record").await.expect("count"), 0);
        assert_eq!(cluster.reindex(1).await.expect("reindex"), 3);
        assert_eq!(store.count("", "bucket").await.expect("count"), 1);
        crate::storage::conformance_indexes::assert_eve_indexed(store.as_ref(), p).await;
        drop_keyspace(&settings).await;
    }

    #[tokio::test]
    async fn a_shard_refuses_an_unmigrated_keyspace() {
        let Some(contact) = contact_point() else {
            return;
        };
        let raw = kinto_runtime::settings::RawSettings::default()
            .with_env(node_env(&contact, "never_migrated"));
        let settings: settings::CqlSettings = raw.parse().expect("settings");
        let err = Cluster::connect(&settings).await.err().expect("refused");
        assert!(err.contains("kinto-shard migrate"), "{err}");
    }

    #[test]
    fn rows_are_placed_by_fixed_hashes() {
        // Pinned: these decide where existing rows live.
        assert_eq!(fnv1a(""), 0x811c_9dc5);
        assert_eq!(fnv1a("a"), 0xe40c_292c);
        assert_eq!(tenant("/buckets/b/collections/c"), "/buckets/b");
        assert_eq!(tenant("/buckets/b"), "/buckets/b");
        assert_eq!(tenant("/x"), "/x");
        assert_eq!(part_of("", "bucket", "b"), slot_of("b") as i16);
        assert_eq!(part_of("", "account", "u"), slot_of("account/u") as i16);
    }
}
