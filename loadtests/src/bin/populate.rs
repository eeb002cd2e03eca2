//! `kinto-populate`: gives a server a population of users for the `scale`
//! scenario, each with a default bucket, one collection (`prefs`) and a few
//! records, one `/batch` per user. `--users 100000 --records 3 --host URL`.

use clap::Parser;
use futures::stream::{self, StreamExt};
use serde_json::json;
use std::time::Instant;

use kinto_loadtests::{kinto, scenarios::scale};

#[derive(Parser)]
struct Cli {
    #[arg(long, default_value = "http://127.0.0.1:8888")]
    host: String,
    #[arg(long, default_value_t = 1000)]
    users: u64,
    /// First user index (to grow a population in steps).
    #[arg(long, default_value_t = 0)]
    from: u64,
    #[arg(long, default_value_t = 3)]
    records: u64,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let cli = Cli::parse();
    let client = reqwest::Client::new();
    let url = format!("{}/v1/batch", cli.host.trim_end_matches('/'));
    let started = Instant::now();
    let results = stream::iter(cli.from..cli.from + cli.users)
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            let requests: Vec<_> = (0..cli.records)
                .map(|r| {
                    json!({"method": "PUT",
                    "path": format!("/buckets/default/collections/prefs/records/r{r}"),
                    "body": {"data": {"key": format!("k{r}"), "value": "v"}}})
                })
                .collect();
            async move {
                let name = scale::name(i);
                let r = client
                    .post(&url)
                    .header("Authorization", kinto::basic(&name))
                    .json(&json!({"requests": requests}))
                    .send()
                    .await;
                matches!(r, Ok(r) if r.status().is_success())
            }
        })
        .buffer_unordered(cli.concurrency.max(1))
        .fold((0u64, 0u64), |(ok, bad), good| async move {
            if good {
                (ok + 1, bad)
            } else {
                (ok, bad + 1)
            }
        })
        .await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "populated {} users ({} failed) in {secs:.1} s: {:.0} users/s",
        results.0,
        results.1,
        results.0 as f64 / secs.max(1e-9)
    );
    if results.1 > 0 {
        return Err(format!("{} users failed", results.1));
    }
    Ok(())
}
