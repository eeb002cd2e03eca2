//! `kinto-storage-bench`: writes/s and `_since` reads/s of a storage backend,
//! below the HTTP layer, at several collection sizes and with many small
//! buckets (issue 4). Each write is what the shard commits for a record
//! creation (the record and its list timestamp, one atomic commit); each
//! read is a `_since` asking for the last 10 changes of a list.
//!
//! The embedded backend is measured in the same run as the baseline:
//! `kinto-storage-bench --backend embedded,cql --sizes 1000,100000,1000000`.
//! The CQL backend needs a node (`tools/cassandra/start`); each case gets a
//! fresh keyspace, dropped afterwards.

use clap::Parser;
use futures::StreamExt;
use kinto_shard::config::{DEFAULT_CACHE_MB, DEFAULT_MEMTABLE_MB};
use kinto_shard::storage::cql::{schema, settings::CqlSettings, Cluster};
use kinto_shard::storage::embedded::EmbeddedStorage;
use kinto_shard::storage::{Storage, StoredObject, Write};
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Cli {
    /// Backends to measure, in order: embedded, cql.
    #[arg(long, default_value = "embedded,cql", value_delimiter = ',')]
    backend: Vec<String>,
    /// Records in the one collection, one case per size.
    #[arg(long, default_value = "1000,100000,1000000", value_delimiter = ',')]
    sizes: Vec<u64>,
    /// Small buckets (one collection of 3 records each); 0 skips the case.
    #[arg(long, default_value_t = 100_000)]
    buckets: u64,
    /// Operations in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds of `_since` reads per case.
    #[arg(long, default_value_t = 10)]
    read_seconds: u64,
    /// Lightweight-transaction probe (CQL only): this many conditional
    /// updates against as many plain ones; 0 skips it.
    #[arg(long, default_value_t = 2000)]
    lwt: u64,
    #[arg(long, default_value = "127.0.0.1:9042")]
    cql_contact_points: String,
    /// Where the JSON results go (also printed as a table).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

struct Case {
    store: Arc<dyn Storage>,
    /// For the CQL backend: a session and the keyspace, to measure partitions.
    cql: Option<(Arc<scylla::client::session::Session>, String)>,
    cleanup: Box<dyn FnOnce() -> futures::future::BoxFuture<'static, ()>>,
}

async fn open(backend: &str, cli: &Cli) -> Result<Case, String> {
    match backend {
        "embedded" => {
            let dir = std::env::temp_dir().join(format!("kinto-bench-{}", uuid::Uuid::new_v4()));
            // The server's default: journal handed to the OS before the answer, fsynced every second.
            let store = EmbeddedStorage::open(
                &dir,
                Duration::from_secs(1),
                DEFAULT_CACHE_MB << 20,
                DEFAULT_MEMTABLE_MB << 20,
            )
            .map_err(|e| e.to_string())?;
            Ok(Case {
                store,
                cql: None,
                cleanup: Box::new(move || {
                    Box::pin(async move {
                        let _ = std::fs::remove_dir_all(dir);
                    })
                }),
            })
        }
        "cql" => {
            let keyspace = format!("bench_{}", uuid::Uuid::new_v4().simple());
            let raw = kinto_runtime::settings::RawSettings::default().with_env([
                (
                    "KINTO_CQL_CONTACT_POINTS".to_owned(),
                    cli.cql_contact_points.clone(),
                ),
                ("KINTO_CQL_KEYSPACE".to_owned(), keyspace.clone()),
            ]);
            // The node's login, if it has one (tools/cassandra: cassandra/cassandra).
            let raw = raw.with_env(
                std::env::vars()
                    .filter(|(k, _)| k == "KINTO_CQL_USERNAME" || k == "KINTO_CQL_PASSWORD"),
            );
            let settings: CqlSettings = raw.parse()?;
            let session = settings.connect().await?;
            schema::migrate(&session, &keyspace, &settings.cql_replication).await?;
            let cluster = Cluster::connect(&settings).await?;
            let measure = Some((session.clone(), keyspace.clone()));
            Ok(Case {
                store: cluster.storage(0, 1),
                cql: measure,
                cleanup: Box::new(move || {
                    Box::pin(async move {
                        let _ = session
                            .query_unpaged(format!("DROP KEYSPACE {keyspace}"), ())
                            .await;
                    })
                }),
            })
        }
        other => Err(format!("unknown backend {other}")),
    }
}

fn record(id: String, lm: u64) -> StoredObject {
    let mut data = Map::new();
    data.insert(
        "title".into(),
        json!("a storage.sync value of a typical size"),
    );
    data.insert("n".into(), json!(lm));
    StoredObject {
        id,
        last_modified: lm,
        deleted: false,
        data,
        permissions: Default::default(),
    }
}

fn create(parent: &str, resource: &'static str, obj: StoredObject) -> Vec<Write> {
    let lm = obj.last_modified;
    vec![
        Write::Put {
            parent: parent.to_owned(),
            resource,
            object: obj,
            previous_last_modified: None,
        },
        Write::Timestamp {
            parent: parent.to_owned(),
            resource,
            value: lm,
        },
    ]
}

/// Runs `n` commits, each persisted as one shard call would, `concurrency`
/// at a time; returns commits per second.
async fn write_all(
    store: &Arc<dyn Storage>,
    n: u64,
    concurrency: usize,
    make: impl Fn(u64) -> Vec<Write>,
) -> Result<f64, String> {
    let start = Instant::now();
    let mut results = futures::stream::iter((0..n).map(|i| {
        let (store, writes) = (store.clone(), make(i));
        // As the shard answers a call: the commit, then `persist`.
        async move {
            store.commit(writes).await?;
            store.persist().await
        }
    }))
    .buffer_unordered(concurrency);
    while let Some(r) = results.next().await {
        r.map_err(|e| e.to_string())?;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// `_since` reads for `seconds`, `concurrency` at a time; returns reads per second.
async fn read_for(
    store: &Arc<dyn Storage>,
    seconds: u64,
    concurrency: usize,
    pick: impl Fn(u64) -> (String, u64) + Send + Sync + 'static,
    expect: usize,
) -> Result<f64, String> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let count = Arc::new(AtomicU64::new(0));
    let pick = Arc::new(pick);
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let (store, count, pick) = (store.clone(), count.clone(), pick.clone());
            tokio::spawn(async move {
                let mut i = t as u64;
                while Instant::now() < deadline {
                    let (parent, since) = pick(i);
                    let got = store
                        .list(&parent, "record", Some(since), true)
                        .await
                        .map_err(|e| e.to_string())?;
                    if got.len() != expect {
                        return Err(format!(
                            "{parent} since {since}: {} changes, expected {expect}",
                            got.len()
                        ));
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                    i += concurrency as u64;
                }
                Ok::<_, String>(())
            })
        })
        .collect();
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

async fn one_collection(cli: &Cli, backend: &str, size: u64) -> Result<Value, String> {
    let case = open(backend, cli).await?;
    let parent = "/buckets/bench/collections/big".to_owned();
    let p = parent.clone();
    let writes = write_all(&case.store, size, cli.concurrency, move |i| {
        create(&p, "record", record(format!("r{i:08}"), 1_000 + i))
    })
    .await?;
    // The last 10 changes: lm 1000+size-10 .. 1000+size-1.
    let since = 1_000 + size - 11;
    let reads = read_for(
        &case.store,
        cli.read_seconds,
        cli.concurrency,
        move |_| (parent.clone(), since),
        10,
    )
    .await?;
    let partition = match &case.cql {
        Some((session, ks)) => {
            Some(partition_bytes(session, ks, "/buckets/bench/collections/big").await?)
        }
        None => None,
    };
    (case.cleanup)().await;
    Ok(
        json!({"backend": backend, "case": format!("{size} records in one collection"),
              "writes_per_s": writes, "since_reads_per_s": reads, "largest_partition": partition}),
    )
}

/// Rows and bytes (keys + values as stored, before compression and per-cell
/// overhead) of the largest `objects` and `changes` partitions of a list:
/// a size-estimate query, since JMX (nodetool) is off on the test node.
async fn partition_bytes(
    session: &scylla::client::session::Session,
    ks: &str,
    parent: &str,
) -> Result<Value, String> {
    let mut out = Map::new();
    for table in ["objects", "changes"] {
        let mut largest = (0u64, 0u64);
        for part in 0..kinto_shard::storage::cql::schema::SPLIT as i16 {
            let q = format!("SELECT id, body FROM {ks}.{table} WHERE parent = ? AND resource = 'record' AND part = ?");
            let pager = session
                .query_iter(q, (parent, part))
                .await
                .map_err(|e| e.to_string())?;
            let mut rows = pager
                .rows_stream::<(String, Vec<u8>)>()
                .map_err(|e| e.to_string())?;
            let (mut n, mut bytes) = (0u64, 0u64);
            while let Some(row) = rows.next().await {
                let (id, body) = row.map_err(|e| e.to_string())?;
                n += 1;
                // + the clustering key's last_modified (8) on `changes`, the cell timestamps are not counted.
                bytes += (id.len() + body.len() + 8) as u64;
            }
            if bytes > largest.1 {
                largest = (n, bytes);
            }
        }
        out.insert(table.into(), json!({"rows": largest.0, "bytes": largest.1}));
    }
    Ok(Value::Object(out))
}

/// A UUID, as the default bucket's ids are, spread over the key space as
/// theirs (an HMAC of the user id) are.
fn bucket_id(b: u64) -> String {
    let spread = u128::from(b).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
    uuid::Uuid::from_u128(spread).hyphenated().to_string()
}

async fn many_buckets(cli: &Cli, backend: &str, buckets: u64) -> Result<Value, String> {
    let case = open(backend, cli).await?;
    // Per bucket: the bucket, its collection and 3 records, 5 commits.
    let commits = buckets * 5;
    let writes = write_all(&case.store, commits, cli.concurrency, |i| {
        let (b, step) = (i / 5, i % 5);
        let lm = 1_000 + step;
        match step {
            0 => create("", "bucket", record(bucket_id(b), lm)),
            1 => create(
                &format!("/buckets/{}", bucket_id(b)),
                "collection",
                record("c".into(), lm),
            ),
            _ => create(
                &format!("/buckets/{}/collections/c", bucket_id(b)),
                "record",
                record(format!("r{step}"), lm),
            ),
        }
    })
    .await?;
    let reads = read_for(
        &case.store,
        cli.read_seconds,
        cli.concurrency,
        move |i| {
            (
                format!("/buckets/{}/collections/c", bucket_id((i * 7919) % buckets)),
                1_002,
            )
        },
        2,
    )
    .await?;
    (case.cleanup)().await;
    Ok(
        json!({"backend": backend, "case": format!("{buckets} buckets, 3 records each"),
              "writes_per_s": writes, "since_reads_per_s": reads}),
    )
}

/// What a lightweight transaction (Paxos) costs against a plain write, the
/// way a slot lease would use one: `UPDATE … IF generation = ?`, one at a
/// time (latency) and `concurrency` at a time on distinct rows (throughput).
async fn lwt_cost(cli: &Cli) -> Result<Value, String> {
    let case = open("cql", cli).await?;
    let Some((session, ks)) = &case.cql else {
        return Err("no session".into());
    };
    let run = |cql: String| async move {
        session
            .query_unpaged(cql, ())
            .await
            .map_err(|e| e.to_string())
    };
    run(format!(
        "CREATE TABLE {ks}.lwt_probe (slot int PRIMARY KEY, owner text, generation bigint)"
    ))
    .await?;
    let plain = session
        .prepare(format!(
            "UPDATE {ks}.lwt_probe SET owner = ?, generation = ? WHERE slot = ?"
        ))
        .await
        .map_err(|e| e.to_string())?;
    let lwt = session
        .prepare(format!(
            "UPDATE {ks}.lwt_probe SET owner = ?, generation = ? WHERE slot = ? IF generation = ?"
        ))
        .await
        .map_err(|e| e.to_string())?;
    let rows = 256i32;
    for slot in 0..rows {
        session
            .execute_unpaged(&plain, ("a", 0i64, slot))
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut figures = Map::new();
    for (name, conditional) in [("plain", false), ("lwt", true)] {
        // Sequential: latency of one.
        let n = cli.lwt.min(2000) as i64;
        let start = Instant::now();
        for g in 0..n {
            let slot = (g % i64::from(rows)) as i32;
            let gen = g / i64::from(rows);
            if conditional {
                session
                    .execute_unpaged(&lwt, ("a", gen + 1, slot, gen))
                    .await
                    .map_err(|e| e.to_string())?;
            } else {
                session
                    .execute_unpaged(&plain, ("a", gen + 1, slot))
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        let sequential_ms = start.elapsed().as_secs_f64() * 1000.0 / n as f64;
        // Reset the generations for the concurrent round.
        for slot in 0..rows {
            session
                .execute_unpaged(&plain, ("a", 0i64, slot))
                .await
                .map_err(|e| e.to_string())?;
        }
        let start = Instant::now();
        let total = cli.lwt as i64;
        let per_row = total / i64::from(rows);
        let tasks = futures::stream::iter((0..rows).map(|slot| {
            let (plain, lwt) = (&plain, &lwt);
            async move {
                for gen in 0..per_row {
                    if conditional {
                        session
                            .execute_unpaged(lwt, ("a", gen + 1, slot, gen))
                            .await
                            .map_err(|e| e.to_string())?;
                    } else {
                        session
                            .execute_unpaged(plain, ("a", gen + 1, slot))
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                }
                Ok::<_, String>(())
            }
        }))
        .buffer_unordered(cli.concurrency);
        let results: Vec<_> = tasks.collect().await;
        for r in results {
            r?;
        }
        let per_s = (per_row * i64::from(rows)) as f64 / start.elapsed().as_secs_f64();
        figures.insert(
            name.into(),
            json!({"sequential_ms_per_op": sequential_ms, "concurrent_ops_per_s": per_s}),
        );
    }
    (case.cleanup)().await;
    Ok(
        json!({"backend": "cql", "case": "lightweight transaction vs plain update", "figures": figures}),
    )
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let cli = Cli::parse();
    let mut results = Vec::new();
    println!(
        "{:<10} {:<36} {:>12} {:>16}",
        "backend", "case", "writes/s", "_since reads/s"
    );
    for backend in &cli.backend {
        eprintln!("measuring {backend}…");
        let mut cases = Vec::new();
        for size in &cli.sizes {
            cases.push(one_collection(&cli, backend, *size).await?);
        }
        if cli.buckets > 0 {
            cases.push(many_buckets(&cli, backend, cli.buckets).await?);
        }
        if backend == "cql" && cli.lwt > 0 {
            let lwt = lwt_cost(&cli).await?;
            println!("{:<10} lightweight transactions: {lwt}", backend);
            results.push(lwt);
        }
        for c in cases {
            if let Some(p) = c.get("largest_partition").filter(|p| !p.is_null()) {
                println!("{:<10} largest partitions: {p}", backend);
            }
            println!(
                "{:<10} {:<36} {:>12.0} {:>16.0}",
                backend,
                c["case"].as_str().unwrap_or(""),
                c["writes_per_s"].as_f64().unwrap_or(0.0),
                c["since_reads_per_s"].as_f64().unwrap_or(0.0)
            );
            results.push(c);
        }
    }
    if let Some(out) = &cli.out {
        let doc = json!({"concurrency": cli.concurrency, "read_seconds": cli.read_seconds, "results": results});
        std::fs::write(
            out,
            serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}
