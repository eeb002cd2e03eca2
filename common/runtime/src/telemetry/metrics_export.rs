//! Periodic push of this process's Prometheus metrics over OTLP/gRPC.
//!
//! Why a bridge rather than the OpenTelemetry metrics SDK: every metric of
//! kinto-rs is already a `prometheus` instrument in the process's default
//! registry (served at `/__metrics__` and `metrics_bind`), and the SDK has no
//! asynchronous histogram, so feeding it would mean recording every value
//! twice at every call site. Instead, every `otlp_metrics_interval_ms`, the
//! registry is gathered and each family is translated as it stands into OTLP
//! messages, then sent with `MetricsService/Export`: one source of truth, two
//! ways out. Values are cumulative since the process started, as Prometheus
//! counts them. An export that fails is logged and the next tick tries again
//! with fresh totals; it never stops the process.

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prometheus::proto::{MetricFamily, MetricType};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Default of `otlp_metrics_interval_ms`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// Stops the export task when dropped.
pub struct MetricsExport {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MetricsExport {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts exporting the default registry to `endpoint` every `interval`.
/// Must run inside a Tokio runtime. Fails only on a malformed endpoint; the
/// collector being down is not an error here (the channel connects lazily).
pub fn start(
    endpoint: &str,
    interval: Duration,
    resource: &opentelemetry_sdk::Resource,
) -> Result<MetricsExport, String> {
    if interval.is_zero() {
        return Err("otlp_metrics_interval_ms must be above 0".into());
    }
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
        .map_err(|e| format!("otlp_endpoint {endpoint}: {e}"))?
        // A stuck collector must not pile up exports: one at a time, each
        // bounded by the interval (and by 10 s, OTLP's usual timeout).
        .timeout(interval.min(Duration::from_secs(10)))
        .connect_lazy();
    let mut client = MetricsServiceClient::new(channel);
    let resource = Resource {
        attributes:
            opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema::from(
                resource,
            )
            .attributes
            .0,
        ..Default::default()
    };
    let endpoint = endpoint.to_owned();
    let started = unix_nanos(SystemTime::now());
    let task = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await; // the first tick is immediate: nothing measured yet
        let mut failing = false;
        loop {
            ticks.tick().await;
            let now = unix_nanos(SystemTime::now());
            let request = export_request(&resource, &prometheus::gather(), started, now);
            match client.export(request).await {
                Ok(response) => {
                    if failing {
                        tracing::info!(endpoint, "OTLP metrics export recovered");
                        failing = false;
                    }
                    if let Some(partial) = response.into_inner().partial_success {
                        if partial.rejected_data_points > 0 {
                            tracing::warn!(
                                endpoint,
                                rejected = partial.rejected_data_points,
                                reason = partial.error_message,
                                "OTLP collector rejected metric data points"
                            );
                        }
                    }
                }
                // Logged once per outage, not at every tick.
                Err(status) if !failing => {
                    tracing::warn!(endpoint, error = %status, "OTLP metrics export failed");
                    failing = true;
                }
                Err(status) => {
                    tracing::debug!(endpoint, error = %status, "OTLP metrics export failed")
                }
            }
        }
    });
    Ok(MetricsExport { task })
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// One export: every family of `families` under one resource and scope.
pub fn export_request(
    resource: &Resource,
    families: &[MetricFamily],
    start: u64,
    now: u64,
) -> ExportMetricsServiceRequest {
    let metrics = families
        .iter()
        .filter_map(|f| convert(f, start, now))
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource.clone()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "kinto-rs".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Counters become monotonic cumulative sums, gauges gauges, histograms
/// explicit-bucket histograms. kinto-rs has no summaries nor untyped
/// metrics: they are skipped.
fn convert(family: &MetricFamily, start: u64, now: u64) -> Option<Metric> {
    let cumulative = AggregationTemporality::Cumulative as i32;
    let samples = family.get_metric();
    let number = |value: f64, m: &prometheus::proto::Metric| NumberDataPoint {
        attributes: attributes(m),
        start_time_unix_nano: start,
        time_unix_nano: now,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    };
    let data = match family.get_field_type() {
        MetricType::COUNTER => metric::Data::Sum(Sum {
            data_points: samples
                .iter()
                .map(|m| number(m.get_counter().get_value(), m))
                .collect(),
            aggregation_temporality: cumulative,
            is_monotonic: true,
        }),
        MetricType::GAUGE => metric::Data::Gauge(Gauge {
            data_points: samples
                .iter()
                .map(|m| number(m.get_gauge().get_value(), m))
                .collect(),
        }),
        MetricType::HISTOGRAM => metric::Data::Histogram(Histogram {
            data_points: samples.iter().map(|m| histogram(m, start, now)).collect(),
            aggregation_temporality: cumulative,
        }),
        MetricType::SUMMARY | MetricType::UNTYPED => return None,
    };
    let name = family.name();
    Some(Metric {
        name: name.to_owned(),
        description: family.help().to_owned(),
        unit: if name.ends_with("_seconds") { "s" } else { "" }.to_owned(),
        data: Some(data),
        ..Default::default()
    })
}

/// Prometheus buckets hold cumulative counts below each bound, with +Inf
/// implicit (the sample count); OTLP wants the count of each bucket, one more
/// bucket than bounds, the last one above the highest bound.
fn histogram(m: &prometheus::proto::Metric, start: u64, now: u64) -> HistogramDataPoint {
    let h = m.get_histogram();
    let mut explicit_bounds = Vec::new();
    let mut bucket_counts = Vec::new();
    let mut below = 0u64;
    for b in h.get_bucket() {
        if !b.upper_bound().is_finite() {
            continue;
        }
        explicit_bounds.push(b.upper_bound());
        bucket_counts.push(b.cumulative_count().saturating_sub(below));
        below = below.max(b.cumulative_count());
    }
    bucket_counts.push(h.get_sample_count().saturating_sub(below));
    HistogramDataPoint {
        attributes: attributes(m),
        start_time_unix_nano: start,
        time_unix_nano: now,
        count: h.get_sample_count(),
        sum: Some(h.get_sample_sum()),
        bucket_counts,
        explicit_bounds,
        ..Default::default()
    }
}

fn attributes(m: &prometheus::proto::Metric) -> Vec<KeyValue> {
    m.get_label()
        .iter()
        .map(|l| KeyValue {
            key: l.name().to_owned(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(l.value().to_owned())),
            }),
            ..Default::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};

    fn families() -> Vec<MetricFamily> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(Opts::new("t_requests_total", "help"), &["route"])
            .expect("valid counter");
        let latency = prometheus::Histogram::with_opts(
            HistogramOpts::new("t_seconds", "latency").buckets(vec![0.1, 1.0]),
        )
        .expect("valid histogram");
        let depth = IntGauge::new("t_depth", "depth").expect("valid gauge");
        registry
            .register(Box::new(requests.clone()))
            .expect("registered");
        registry
            .register(Box::new(latency.clone()))
            .expect("registered");
        registry
            .register(Box::new(depth.clone()))
            .expect("registered");
        requests.with_label_values(&["bucket"]).inc_by(3);
        for v in [0.05, 0.5, 0.7, 5.0] {
            latency.observe(v);
        }
        depth.set(2);
        registry.gather()
    }

    fn find<'a>(req: &'a ExportMetricsServiceRequest, name: &str) -> &'a metric::Data {
        req.resource_metrics[0].scope_metrics[0]
            .metrics
            .iter()
            .find(|m| m.name == name)
            .and_then(|m| m.data.as_ref())
            .expect("metric exported")
    }

    #[test]
    fn converts_counters_gauges_and_histograms() {
        let req = export_request(&Resource::default(), &families(), 1, 2);
        match find(&req, "t_requests_total") {
            metric::Data::Sum(s) => {
                assert!(s.is_monotonic);
                assert_eq!(
                    s.aggregation_temporality,
                    AggregationTemporality::Cumulative as i32
                );
                let p = &s.data_points[0];
                assert_eq!(p.value, Some(number_data_point::Value::AsDouble(3.0)));
                assert_eq!(p.attributes[0].key, "route");
                assert_eq!((p.start_time_unix_nano, p.time_unix_nano), (1, 2));
            }
            other => panic!("counter became {other:?}"),
        }
        match find(&req, "t_depth") {
            metric::Data::Gauge(g) => assert_eq!(
                g.data_points[0].value,
                Some(number_data_point::Value::AsDouble(2.0))
            ),
            other => panic!("gauge became {other:?}"),
        }
        match find(&req, "t_seconds") {
            metric::Data::Histogram(h) => {
                let p = &h.data_points[0];
                assert_eq!(p.count, 4);
                assert_eq!(p.explicit_bounds, vec![0.1, 1.0]);
                // ≤0.1: one; (0.1, 1]: two; above 1: one.
                assert_eq!(p.bucket_counts, vec![1, 2, 1]);
                assert!((p.sum.unwrap_or_default() - 6.25).abs() < 1e-9);
            }
            other => panic!("histogram became {other:?}"),
        }
    }
}
