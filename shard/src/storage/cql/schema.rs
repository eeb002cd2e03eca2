//! The CQL schema and its versioned, idempotent migrations
//! (`kinto-shard migrate`). The data model and its reasons: docs/storage-cql.md.
//!
//! Each migration is a list of statements that are themselves idempotent
//! (`IF NOT EXISTS`), applied in order; `schema_version` records the last one
//! applied, so a rerun does nothing and a newer binary applies only what is new.
//! A shard refuses to start on a keyspace older than [`CURRENT`].

use scylla::client::session::Session;
use scylla::statement::unprepared::Statement;
use std::time::Duration;

/// The version this binary reads and writes.
pub const CURRENT: i32 = 3;

/// A non-root list is spread over this many partitions by a hash of the id,
/// so a 1M-record collection is 16 partitions of ~62k rows. Part of the
/// on-disk format: changing it needs a migration that rewrites the lists.
pub const SPLIT: u32 = 16;

/// `{ks}` is replaced by the keyspace name.
const MIGRATIONS: &[(i32, &[&str])] = &[
    (
        1,
        &[
            // Objects and tombstones of one list: `part` is hash(id) mod SPLIT, or
            // for the root lists (buckets, accounts) the placement slot of the id.
            "CREATE TABLE IF NOT EXISTS {ks}.objects (
            parent text, resource text, part smallint, id text,
            last_modified bigint, body blob,
            PRIMARY KEY ((parent, resource, part), id))",
            // The `_since` index, a copy of each current version keyed by its
            // timestamp: a `_since` read is one slice per part, O(changes).
            "CREATE TABLE IF NOT EXISTS {ks}.changes (
            parent text, resource text, part smallint, last_modified bigint, id text,
            body blob,
            PRIMARY KEY ((parent, resource, part), last_modified, id))",
            // Every list of a tenant (bucket) with its timestamp: what a cascade
            // deletion reads to find the partitions it drops.
            "CREATE TABLE IF NOT EXISTS {ks}.lists (
            tenant text, parent text, resource text, timestamp bigint,
            PRIMARY KEY ((tenant), parent, resource))",
            // Principal → groups naming it: read on every request (cached by the shard).
            "CREATE TABLE IF NOT EXISTS {ks}.members (
            principal text, group_uri text,
            PRIMARY KEY ((principal), group_uri))",
        ],
    ),
    (
        2,
        &[
            // Live objects per list, rewritten in the commit that changes it
            // (by the list's single writer); partitioned like `lists`, so a
            // cascade drops the counters of the lists it finds there.
            "CREATE TABLE IF NOT EXISTS {ks}.counts (
            tenant text, parent text, resource text, live bigint,
            PRIMARY KEY ((tenant), parent, resource))",
            // Principal → objects whose ACL names it: `/permissions` and
            // `__user_data__` read one partition per principal.
            "CREATE TABLE IF NOT EXISTS {ks}.grantees (
            principal text, parent text, resource text, id text,
            PRIMARY KEY ((principal), parent, resource, id))",
            // The same entries by tenant: what a cascade reads to drop the
            // entries of the objects it removes.
            "CREATE TABLE IF NOT EXISTS {ks}.grants (
            tenant text, parent text, resource text, id text, principal text,
            PRIMARY KEY ((tenant), parent, resource, id, principal))",
        ],
    ),
    (
        3,
        &[
            // The shard map (docs/placement.md, section 3): one row, `name =
            // 'map'`, changed only by `UPDATE … IF generation = g`.
            "CREATE TABLE IF NOT EXISTS {ks}.placement (
            name text PRIMARY KEY, generation bigint, body blob)",
        ],
    ),
];

fn statement(template: &str, keyspace: &str) -> String {
    template.replace("{ks}", keyspace)
}

/// Creates the keyspace and applies every migration not yet applied.
/// Returns the versions applied by this call.
pub async fn migrate(
    session: &Session,
    keyspace: &str,
    replication: &str,
) -> Result<Vec<i32>, String> {
    let create = format!(
        "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {replication} \
         AND durable_writes = true"
    );
    run(session, &create).await?;
    run(
        session,
        &statement(
            "CREATE TABLE IF NOT EXISTS {ks}.schema_version (
                component text PRIMARY KEY, version int, applied_at timestamp)",
            keyspace,
        ),
    )
    .await?;
    let mut applied = Vec::new();
    let current = version(session, keyspace).await?.unwrap_or(0);
    for (v, statements) in MIGRATIONS {
        if *v <= current {
            continue;
        }
        for s in *statements {
            run(session, &statement(s, keyspace)).await?;
        }
        let record = format!(
            "INSERT INTO {keyspace}.schema_version (component, version, applied_at) \
             VALUES ('storage', {v}, toTimestamp(now()))"
        );
        run(session, &record).await?;
        applied.push(*v);
    }
    Ok(applied)
}

/// The schema version recorded in `keyspace`, `None` before the first migration.
pub async fn version(session: &Session, keyspace: &str) -> Result<Option<i32>, String> {
    let q = format!("SELECT version FROM {keyspace}.schema_version WHERE component = 'storage'");
    let result = match session.query_unpaged(ddl(q), ()).await {
        Ok(r) => r,
        // No keyspace or table yet: not migrated.
        Err(e)
            if e.to_string().contains("unconfigured table")
                || e.to_string().contains("does not exist") =>
        {
            return Ok(None)
        }
        Err(e) => return Err(format!("reading the schema version: {e}")),
    };
    let rows = result
        .into_rows_result()
        .map_err(|e| format!("reading the schema version: {e}"))?;
    let row = rows
        .maybe_first_row::<(i32,)>()
        .map_err(|e| format!("reading the schema version: {e}"))?;
    Ok(row.map(|(v,)| v))
}

/// Fails unless `keyspace` holds exactly the schema this binary expects.
pub async fn check(session: &Session, keyspace: &str) -> Result<(), String> {
    match version(session, keyspace).await? {
        Some(CURRENT) => Ok(()),
        Some(v) if v > CURRENT => Err(format!(
            "keyspace {keyspace} has schema version {v}, newer than this binary's {CURRENT}"
        )),
        found => Err(format!(
            "keyspace {keyspace} has schema version {}, this binary needs {CURRENT}: run `kinto-shard migrate`",
            found.map_or("none".to_owned(), |v| v.to_string())
        )),
    }
}

/// Schema changes wait for every node to agree, which takes seconds on a
/// busy cluster: they get a longer timeout than requests.
pub fn ddl(cql: impl Into<String>) -> Statement {
    let mut statement = Statement::new(cql.into());
    statement.set_request_timeout(Some(Duration::from_secs(120)));
    statement
}

async fn run(session: &Session, cql: &str) -> Result<(), String> {
    session
        .query_unpaged(ddl(cql), ())
        .await
        .map(|_| ())
        .map_err(|e| {
            format!(
                "{e} (in: {})",
                cql.split_whitespace().collect::<Vec<_>>().join(" ")
            )
        })
}
