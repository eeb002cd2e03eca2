//! Logs and traces of every kinto-rs process, set up in one place.
//!
//! * Logs: `tracing` to stderr, human-readable or one JSON object per line
//!   (`log_format = "json"`), filtered by `log_level`.
//! * Traces: when `otlp_endpoint` is set (e.g. `http://collector:4317`),
//!   spans are exported over OTLP/gRPC with `service.name` = the process
//!   role (`kinto-gateway`, `kinto-shard`, `kinto`).
//! * Metrics: with `otlp_endpoint`, the process's Prometheus registry is also
//!   pushed over OTLP/gRPC every `otlp_metrics_interval_ms`
//!   ([`metrics_export`]), under the same resource as the spans.
//! * Propagation: the W3C trace context travels in the gRPC metadata of
//!   every gateway → shard call ([`inject`] / [`extract`]), so one request
//!   is one trace across processes.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub mod metrics_export;

/// What [`init`] needs; from the settings (docs/configuration.md).
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    pub service_name: String,
    pub log_level: Option<String>,
    /// `json` for one JSON object per line; anything else: human-readable.
    pub log_format: Option<String>,
    pub otlp_endpoint: Option<String>,
    /// How often metrics are pushed to `otlp_endpoint`.
    pub otlp_metrics_interval: std::time::Duration,
}

/// Keeps the exporters alive; dropping it flushes the spans still queued and
/// stops the metrics export.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    _metrics: Option<metrics_export::MetricsExport>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            service_name: String::new(),
            log_level: None,
            log_format: None,
            otlp_endpoint: None,
            otlp_metrics_interval: metrics_export::DEFAULT_INTERVAL,
        }
    }
}

impl TelemetryConfig {
    /// `log_level`, `log_format`, `otlp_endpoint` and
    /// `otlp_metrics_interval_ms` from the settings.
    pub fn from_raw(
        raw: &crate::settings::RawSettings,
        service_name: &str,
    ) -> Result<Self, String> {
        let get = |k: &str| {
            raw.0
                .get(k)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        #[derive(serde::Deserialize)]
        struct Interval {
            #[serde(default, deserialize_with = "crate::settings::de_opt_u64")]
            otlp_metrics_interval_ms: Option<u64>,
        }
        let otlp_metrics_interval = match raw
            .parse::<Interval>()
            .map_err(|e| format!("otlp_metrics_interval_ms: {e}"))?
            .otlp_metrics_interval_ms
        {
            None => metrics_export::DEFAULT_INTERVAL,
            Some(0) => return Err("otlp_metrics_interval_ms must be above 0".into()),
            Some(ms) => std::time::Duration::from_millis(ms),
        };
        Ok(TelemetryConfig {
            service_name: service_name.to_owned(),
            log_level: get("log_level"),
            log_format: get("log_format"),
            otlp_endpoint: get("otlp_endpoint"),
            otlp_metrics_interval,
        })
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Installs the global subscriber. Call once, inside the Tokio runtime.
pub fn init(cfg: &TelemetryConfig) -> Result<Telemetry, String> {
    let filter = EnvFilter::try_new(cfg.log_level.as_deref().unwrap_or("info"))
        .map_err(|e| format!("log_level: {e}"))?;
    let json = cfg.log_format.as_deref() == Some("json");
    let fmt = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed()
    };
    let mut provider = None;
    let mut metrics = None;
    let otel = match cfg.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) {
        None => None,
        Some(endpoint) => {
            use opentelemetry_otlp::WithExportConfig;
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .map_err(|e| format!("otlp_endpoint {endpoint}: {e}"))?;
            // The instance id tells apart processes of the same role (two
            // shards' cumulative totals must not be summed as one series).
            let resource = opentelemetry_sdk::Resource::builder()
                .with_service_name(cfg.service_name.clone())
                .with_attribute(opentelemetry::KeyValue::new(
                    "service.instance.id",
                    uuid::Uuid::new_v4().to_string(),
                ))
                .build();
            metrics = Some(metrics_export::start(
                endpoint,
                cfg.otlp_metrics_interval,
                &resource,
            )?);
            let p = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource)
                .build();
            let tracer = p.tracer("kinto-rs");
            provider = Some(p);
            opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
            Some(tracing_opentelemetry::layer().with_tracer(tracer))
        }
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|e| e.to_string())?;
    Ok(Telemetry {
        provider,
        _metrics: metrics,
    })
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(k, v);
        }
    }
}

struct MetadataExtractor<'a>(&'a tonic::metadata::MetadataMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|k| match k {
                tonic::metadata::KeyRef::Ascii(k) => Some(k.as_str()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

/// A gRPC request carrying the current span's trace context.
pub fn inject<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let cx = tracing::Span::current().context();
    TraceContextPropagator::new()
        .inject_context(&cx, &mut MetadataInjector(request.metadata_mut()));
    request
}

/// Makes `span` a child of the trace context the caller sent, if any.
pub fn extract(metadata: &tonic::metadata::MetadataMap, span: &tracing::Span) {
    let cx = TraceContextPropagator::new().extract(&MetadataExtractor(metadata));
    let _ = span.set_parent(cx);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::RawSettings;

    fn interval(vars: &[(&str, &str)]) -> Result<std::time::Duration, String> {
        let raw = RawSettings::default().with_env(
            vars.iter()
                .map(|(k, v)| (format!("KINTO_{}", k.to_uppercase()), v.to_string())),
        );
        TelemetryConfig::from_raw(&raw, "kinto").map(|c| c.otlp_metrics_interval)
    }

    #[test]
    fn metrics_interval_setting() {
        assert_eq!(interval(&[]), Ok(metrics_export::DEFAULT_INTERVAL));
        assert_eq!(
            interval(&[("otlp_metrics_interval_ms", "250")]),
            Ok(std::time::Duration::from_millis(250))
        );
        assert!(interval(&[("otlp_metrics_interval_ms", "0")]).is_err());
        assert!(interval(&[("otlp_metrics_interval_ms", "soon")]).is_err());
    }
}
