//! `kinto-load`: goose scenarios against any Kinto server (`--host http://…:8888`),
//! so one run measures ours and the reference Kinto alike. Scenarios (pick
//! with goose's `--scenarios`):
//!
//! * `storagesync`: Firefox storage.sync's mix, one identity per goose user;
//! * `polling` + `publisher`: remote-settings style anonymous pollers of a
//!   few public collections (mostly 304s) and one writer;
//! * `scale`: reads and writes of random users of a pre-populated server
//!   (`kinto-populate`);
//! * `ceiling`: the same JSON round trip against `kinto-ceiling`, the
//!   minimal axum handler that bounds what the machine can do;
//! * `flood`: one tenant hammering one bucket (the noisy neighbour).
//!
//! Goose prints per-request throughput, latency percentiles and errors as a
//! table and writes them as JSON with `--report-file report.json`.

use goose::prelude::*;
use kinto_loadtests::scenarios;

#[tokio::main]
async fn main() -> Result<(), GooseError> {
    GooseAttack::initialize()?
        .register_scenario(scenarios::storage_sync::scenario()?)
        .register_scenario(scenarios::polling::pollers()?)
        .register_scenario(scenarios::polling::publisher()?)
        .register_scenario(scenarios::scale::scenario()?)
        .register_scenario(scenarios::ceiling::scenario()?)
        .register_scenario(scenarios::flood::scenario()?)
        .execute()
        .await?;
    Ok(())
}
