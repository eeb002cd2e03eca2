//! Start-up and shutdown shared by every binary (`kinto`, `kinto-gateway`,
//! `kinto-shard`), so each `main` holds only what differs between them.

use crate::settings::RawSettings;
use crate::telemetry::{Telemetry, TelemetryConfig};
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

/// The settings option every binary takes (`#[command(flatten)]`).
#[derive(clap::Args, Debug)]
pub struct SettingsArgs {
    /// TOML settings file; KINTO_* environment variables override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

impl SettingsArgs {
    /// The file's settings (if any) overlaid with the environment's.
    pub fn load(&self) -> Result<RawSettings, String> {
        RawSettings::load(self.config.as_deref())
    }
}

/// Logs, traces and metrics export for this process; keep the returned
/// guard alive until exit so queued spans are flushed.
pub fn start_telemetry(raw: &RawSettings, service_name: &str) -> Result<Telemetry, String> {
    crate::telemetry::init(&TelemetryConfig::from_raw(raw, service_name)?)
}

/// Runs a binary's body; an error (a bad setting, a port in use, a store
/// that will not open) is printed with the binary's name and ends the
/// process with status 1, so a misconfigured node never starts half-way.
pub async fn exit_code(binary: &str, body: impl Future<Output = Result<(), String>>) -> ExitCode {
    match body.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("{binary}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves when the process is asked to stop (Ctrl-C, or SIGTERM from an
/// orchestrator).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
