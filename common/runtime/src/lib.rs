//! What every kinto-rs process runs besides its own work: settings (file
//! and `KINTO_*` environment), telemetry (JSON logs, OTLP traces, metrics
//! export), the Prometheus registry, and start-up and shutdown.

pub mod metrics;
pub mod process;
pub mod settings;
pub mod telemetry;
pub mod tls;
