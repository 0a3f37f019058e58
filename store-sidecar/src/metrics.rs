//! Prometheus metrics (`/metrics` on the internal listener), through `prometheus-client`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub channel: String,
    pub input: String,
    pub method: String,
    pub status_class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InputLabels {
    pub channel: String,
    pub input: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    pub channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BucketLabels {
    /// `media_get`, `media_put`, `log_get`, `log_put`, `delete`.
    pub op: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

/// Every metric the sidecar exports.
pub struct Metrics {
    pub registry: Registry,
    pub ingest_requests: Family<RequestLabels, Counter>,
    pub ingress_bytes: Family<InputLabels, Counter>,
    pub ingest_duration: Family<InputLabels, Histogram, fn() -> Histogram>,
    pub segments_stored: Family<InputLabels, Counter>,
    pub segments_retained: Family<ChannelLabels, Gauge>,
    pub active_input: Family<ChannelLabels, Gauge>,
    pub failovers: Family<ChannelLabels, Counter>,
    pub store_requests: Family<RequestLabels, Counter>,
    pub bucket_requests: Family<BucketLabels, Counter>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("edgepack_store");
        let ingest_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "ingest_requests",
            "Ingest requests by channel, input, method and status class",
            ingest_requests.clone(),
        );
        let ingress_bytes = Family::<InputLabels, Counter>::default();
        registry.register(
            "ingress_bytes",
            "Bytes of accepted uploads (segments and playlists)",
            ingress_bytes.clone(),
        );
        let ingest_duration =
            Family::<InputLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register(
            "ingest_duration_seconds",
            "Ingest request time, from headers received to answer",
            ingest_duration.clone(),
        );
        let segments_stored = Family::<InputLabels, Counter>::default();
        registry.register(
            "segments_stored",
            "Segments indexed into the startover timeline",
            segments_stored.clone(),
        );
        let segments_retained = Family::<ChannelLabels, Gauge>::default();
        registry.register(
            "segments_retained",
            "Segments currently retained, all renditions",
            segments_retained.clone(),
        );
        let active_input = Family::<ChannelLabels, Gauge>::default();
        registry.register(
            "active_input",
            "Active input (1 or 2; 0 before any input published)",
            active_input.clone(),
        );
        let failovers = Family::<ChannelLabels, Counter>::default();
        registry.register(
            "failovers",
            "Switches of the active input",
            failovers.clone(),
        );
        let store_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "internal_requests",
            "Requests to /store/v1 by channel and status class (input is the one served)",
            store_requests.clone(),
        );
        let bucket_requests = Family::<BucketLabels, Counter>::default();
        registry.register(
            "bucket_requests",
            "Requests to the S3-compatible bucket ([storage] kind = \"s3\") by operation",
            bucket_requests.clone(),
        );
        Self {
            registry,
            bucket_requests,
            ingest_requests,
            ingress_bytes,
            ingest_duration,
            segments_stored,
            segments_retained,
            active_input,
            failovers,
            store_requests,
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// `2xx`, `4xx`, …
pub fn status_class(status: u16) -> String {
    format!("{}xx", status / 100)
}
