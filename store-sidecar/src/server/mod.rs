//! The sidecar's HTTP side: the encoder-facing ingest listener (authenticated), the
//! filter-facing internal API (`/store/v1`, `/metrics`, `/healthz`), and what runs beside them.
//!
//! - `error`: the one error type every refusal is answered with
//! - `ingest`: the ingest router and its handlers
//! - `admin`: the operator's API on the ingest listener (channel reset, harvest)
//! - `harvest`: harvest jobs writing VOD packages
//! - `access_log`: one JSON line per ingest request
//! - `internal`: the internal API's router and handlers
//! - `serve`: accepting connections until shutdown
//! - `housekeeping`: failover checks, pruning and upload GC in the background
//! - `replication`: keeping a channel and its bucket in step (`[storage] kind = "s3"`)

mod access_log;
mod admin;
mod error;
mod harvest;
mod housekeeping;
mod ingest;
mod internal;
pub mod replication;
pub mod segment_cache;
mod serve;

use segment_cache::SegmentCache;
use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;

pub use error::ApiError;
pub use housekeeping::housekeeping;
pub use ingest::ingest_router;
pub use internal::internal_router;
pub use serve::{ClientAddr, serve};

use crate::auth::Authenticator;
use crate::bucket::{Bucket, BucketError};
use crate::channel::ChannelState;
use crate::config::{Settings, StorageKind};
use crate::metrics::Metrics;

/// Shared by every request.
pub struct App {
    pub settings: Settings,
    pub auth: Authenticator,
    pub channels: HashMap<String, Arc<Mutex<ChannelState>>>,
    pub metrics: Metrics,
    /// The segments served last, in memory.
    pub segments: SegmentCache,
    /// Harvest jobs and their reports.
    pub harvests: harvest::Jobs,
    /// `[storage] kind = "s3"`: the bucket every sidecar of the channels shares.
    pub bucket: Option<Arc<Bucket>>,
    /// One bucket sync at a time per channel.
    pub sync_locks: HashMap<String, Mutex<()>>,
    /// Media being fetched from the bucket.
    pub inflight: replication::Inflight,
    /// Index snapshots written or read, per channel.
    pub snapshots: replication::SnapshotMarks,
    /// When each channel's log last advanced here (an edge checks it was not left behind).
    pub followed: std::sync::Mutex<HashMap<String, std::time::Instant>>,
}

impl App {
    /// Opens every configured channel from `data_dir`.
    pub fn open(settings: Settings) -> Result<Self, StartupError> {
        let auth = Authenticator::new(&settings.server.realm, settings.server.nonce_ttl_seconds)
            .map_err(StartupError::Random)?;
        let metrics = Metrics::new();
        let bucket = match settings.storage.kind {
            StorageKind::Disk => None,
            StorageKind::S3 => Some(Arc::new(
                Bucket::open(&settings.storage, metrics.bucket_requests.clone())
                    .map_err(StartupError::Bucket)?,
            )),
        };
        let mut channels = HashMap::new();
        for c in &settings.channels {
            let started = std::time::Instant::now();
            let opened = if bucket.is_some() {
                ChannelState::open_replicated(
                    c.clone(),
                    &settings.server.data_dir,
                    settings.local_inputs(),
                )
            } else {
                ChannelState::open(c.clone(), &settings.server.data_dir)
            };
            let state = opened.map_err(|source| StartupError::Channel {
                channel: c.id.clone(),
                dir: settings.server.data_dir.display().to_string(),
                source,
            })?;
            // A long startover window takes a while to read back: say how long.
            tracing::info!(channel = %c.id, segments = state.retained_segments(),
                ms = started.elapsed().as_millis() as u64, "channel index read back");
            channels.insert(c.id.clone(), Arc::new(Mutex::new(state)));
        }
        let cache_bytes = settings
            .server
            .segment_cache_megabytes
            .saturating_mul(1 << 20);
        Ok(Self {
            sync_locks: channels
                .keys()
                .map(|k| (k.clone(), Mutex::new(())))
                .collect(),
            inflight: Default::default(),
            snapshots: Default::default(),
            followed: Default::default(),
            bucket,
            segments: SegmentCache::new(usize::try_from(cache_bytes).unwrap_or(usize::MAX)),
            settings,
            auth,
            channels,
            metrics,
            harvests: harvest::Jobs::default(),
        })
    }
}

/// Why the sidecar could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("no system randomness for Digest nonces: {0}")]
    Random(getrandom::Error),
    #[error("[storage]: {0}")]
    Bucket(BucketError),
    #[error("cannot open channel '{channel}' under {dir}: {source}")]
    Channel {
        channel: String,
        dir: String,
        source: std::io::Error,
    },
}

/// Runs blocking channel work (disk I/O) off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| std::io::Error::other(format!("worker failed: {e}")))?
}

/// An app over a fresh data directory with one channel, `news`, and requests to it.
#[cfg(test)]
mod test_support {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, Response};
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    use super::*;
    use crate::config::{Channel, Credentials, ServerConfig};

    pub(super) const PASSWORD_1: &str = "secret-1";

    pub(super) fn app(dir: &std::path::Path) -> Arc<App> {
        let input = |username: &str, password: &str| Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
        };
        let settings = Settings {
            server: ServerConfig {
                data_dir: dir.to_owned(),
                ..ServerConfig::default()
            },
            channels: vec![Channel {
                id: "news".to_owned(),
                startover_window_seconds: 7200,
                failover_after_seconds: None,
                inputs: [input("enc1", PASSWORD_1), input("enc2", "secret-2")],
            }],
            admin: Some(input("admin", "admin-secret")),
            harvest_dir: None,
            storage: Default::default(),
        };
        Arc::new(App::open(settings).unwrap())
    }

    /// Sends one request through `router` in process; returns the answer and its body as text.
    pub(super) async fn send(router: &Router, req: Request<Body>) -> (Response<Body>, String) {
        let response = router.clone().oneshot(req).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            Response::from_parts(parts, Body::empty()),
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    pub(super) fn header<'a>(r: &'a Response<Body>, name: &str) -> &'a str {
        r.headers()
            .get(name)
            .map_or("", |v| v.to_str().unwrap_or(""))
    }
}
