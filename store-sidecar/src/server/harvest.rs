//! Harvest jobs (MediaPackage's live-to-VOD): a time range of a channel written as a complete
//! VOD package under `[admin] harvest_dir`. The package is put together in a hidden directory
//! beside its destination and renamed into place when whole, so a destination that exists is a
//! finished package. Jobs are kept in memory (a restart forgets their reports, not their
//! packages).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::response::Response;
use edgepack_store_api::parse_pdt;

use super::App;
use super::admin::json;
use super::error::ApiError;
use crate::bucket::{Bucket, BucketError};
use crate::channel::{ChannelState, HarvestPlan, now_ms};

/// What a harvest request asks for.
#[derive(Debug, PartialEq)]
pub struct Request {
    pub start_ms: i64,
    pub end_ms: i64,
    /// As the request named it.
    pub destination: String,
    /// `s3://{bucket}/{path}`: (bucket, path); else a relative path under `[admin] harvest_dir`.
    pub bucket: Option<(String, String)>,
}

/// Epoch seconds (a number) or an ISO 8601 date (a string).
fn time(v: &serde_json::Value, field: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::Harvest(format!(
            "'{field}' must be epoch seconds or an ISO 8601 date (2026-11-28T10:00:00Z)"
        ))
    };
    match v {
        serde_json::Value::Number(n) => {
            n.as_i64().and_then(|s| s.checked_mul(1000)).ok_or_else(bad)
        }
        serde_json::Value::String(s) => parse_pdt(s).ok_or_else(bad),
        _ => Err(bad()),
    }
}

impl Request {
    /// `{"start": …, "end": …, "destination": "name/or/path"}`.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
            ApiError::Harvest(format!(
                "the body must be JSON {{\"start\", \"end\", \"destination\"}}: {e}"
            ))
        })?;
        let named = v["destination"].as_str().ok_or_else(|| {
            ApiError::Harvest(
                "'destination' (a relative path or s3://bucket/path) is missing".into(),
            )
        })?;
        let (bucket, destination) = match named.strip_prefix("s3://") {
            Some(rest) => {
                let (b, path) = rest.split_once('/').unwrap_or((rest, ""));
                (Some(b.to_owned()), path)
            }
            None => (None, named),
        };
        let ok = !destination.is_empty()
            && destination.len() <= 255
            && destination.split('/').all(|c| {
                !c.is_empty()
                    && !c.starts_with('.')
                    && c.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            });
        if !ok {
            return Err(ApiError::Harvest(format!(
                "destination '{named}' must be a relative path (or s3://bucket/path) of A-Z a-z 0-9 - _ . names (none starting with '.'), at most 255 bytes"
            )));
        }
        Ok(Request {
            start_ms: time(&v["start"], "start")?,
            end_ms: time(&v["end"], "end")?,
            destination: named.to_owned(),
            bucket: bucket.map(|b| (b, destination.to_owned())),
        })
    }
}

/// How a job stands.
#[derive(Debug, Clone)]
enum State {
    InProgress,
    Succeeded,
    Failed(String),
}

/// One harvest job.
#[derive(Debug)]
pub struct Job {
    id: String,
    channel: String,
    destination: String,
    request: (i64, i64),
    segments: u64,
    files_total: u64,
    files_done: AtomicU64,
    state: Mutex<State>,
}

impl Job {
    /// Records how the job ended; `otherwise` is the likely cause of a failure besides a
    /// segment that left the window meanwhile.
    fn finish<E: std::fmt::Display>(&self, result: Result<(), E>, otherwise: &str) {
        let state = match result {
            Ok(()) => {
                tracing::info!(job = self.id, "harvest succeeded");
                State::Succeeded
            }
            Err(e) => {
                tracing::warn!(job = self.id, error = %e, "harvest failed");
                State::Failed(format!(
                    "writing the package failed (a segment may have left the startover window, or {otherwise}): {e}"
                ))
            }
        };
        if let Ok(mut s) = self.state.lock() {
            *s = state;
        }
    }

    fn report(&self) -> serde_json::Value {
        let state = self
            .state
            .lock()
            .map(|s| s.clone())
            .unwrap_or(State::InProgress);
        let (status, error) = match state {
            State::InProgress => ("in_progress", None),
            State::Succeeded => ("succeeded", None),
            State::Failed(e) => ("failed", Some(e)),
        };
        serde_json::json!({
            "id": self.id,
            "channel": self.channel,
            "destination": self.destination,
            "start": edgepack_store_api::format_pdt(self.request.0),
            "end": edgepack_store_api::format_pdt(self.request.1),
            "status": status,
            "segments": self.segments,
            "files_total": self.files_total,
            "files_done": self.files_done.load(Ordering::Relaxed),
            "error": error,
        })
    }
}

/// The jobs of this process.
#[derive(Debug, Default)]
pub struct Jobs {
    jobs: Mutex<HashMap<String, Arc<Job>>>,
    next: AtomicU64,
}

/// Plans the package under the channel lock, then writes it in the background; answers 202 with
/// the job's report.
pub async fn start(
    app: &App,
    channel: &str,
    state: Arc<tokio::sync::Mutex<ChannelState>>,
    r: Request,
) -> Result<Response, ApiError> {
    if let Some((bucket, path)) = r.bucket.clone() {
        return start_to_bucket(app, channel, state, r, bucket, path).await;
    }
    let root = app
        .settings
        .harvest_dir
        .clone()
        .ok_or(ApiError::HarvestOff)?;
    let destination = root.join(&r.destination);
    if destination.exists() {
        return Err(ApiError::HarvestExists(r.destination));
    }
    let (plan, job) = plan_job(app, channel, state, &r).await?;
    tracing::info!(channel, job = job.id, destination = %destination.display(),
        segments = plan.segments, "harvest started");
    // The answer says how the job starts, whatever it is by the time it is sent.
    let started = job.report();
    let running = job.clone();
    tokio::task::spawn_blocking(move || {
        let temp = root.join(format!(".{}", running.id));
        let result = write(&plan, &temp, &running).and_then(|()| {
            if let Some(parent) = destination.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::rename(&temp, &destination)
        });
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&temp);
        }
        running.finish(result, "the disk is full");
    });
    Ok(json(StatusCode::ACCEPTED, &started))
}

/// Plans a harvest under the channel lock and registers its job.
async fn plan_job(
    app: &App,
    channel: &str,
    state: Arc<tokio::sync::Mutex<ChannelState>>,
    r: &Request,
) -> Result<(HarvestPlan, Arc<Job>), ApiError> {
    let (start_ms, end_ms) = (r.start_ms, r.end_ms);
    let plan = tokio::task::spawn_blocking(move || {
        state
            .blocking_lock()
            .harvest_plan(start_ms, end_ms, now_ms())
    })
    .await
    .map_err(|e| ApiError::Worker(e.to_string()))?
    .map_err(ApiError::HarvestRange)?;
    let n = app.harvests.next.fetch_add(1, Ordering::Relaxed) + 1;
    let job = Arc::new(Job {
        id: format!("harvest-{}-{n}", now_ms()),
        channel: channel.to_owned(),
        destination: r.destination.clone(),
        request: (start_ms, end_ms),
        segments: plan.segments,
        files_total: (plan.files.len() + plan.texts.len()) as u64,
        files_done: AtomicU64::new(0),
        state: Mutex::new(State::InProgress),
    });
    if let Ok(mut jobs) = app.harvests.jobs.lock() {
        jobs.insert(job.id.clone(), job.clone());
    }
    Ok((plan, job))
}

/// A harvest into this sidecar's bucket (`[storage] kind = "s3"`): segments copied inside the
/// bucket from their content-hash keys, the media playlists written after them and the
/// multivariant `index.m3u8` last, so a package with its `index.m3u8` is whole.
async fn start_to_bucket(
    app: &App,
    channel: &str,
    state: Arc<tokio::sync::Mutex<ChannelState>>,
    r: Request,
    bucket_name: String,
    path: String,
) -> Result<Response, ApiError> {
    let Some(bucket) = app.bucket.clone() else {
        return Err(ApiError::Harvest(
            "an s3:// destination needs [storage] kind = \"s3\"; this sidecar stores on its disk"
                .into(),
        ));
    };
    let own = app.settings.storage.bucket.clone().unwrap_or_default();
    if bucket_name != own {
        return Err(ApiError::Harvest(format!(
            "this sidecar writes harvests only to its own bucket (s3://{own}/…), not '{bucket_name}'"
        )));
    }
    match bucket.exists(&format!("{path}/index.m3u8")).await {
        Ok(false) => {}
        Ok(true) => return Err(ApiError::HarvestExists(r.destination)),
        Err(e) => {
            return Err(ApiError::BucketWrite {
                what: "harvest",
                error: e.message,
            });
        }
    }
    let (plan, job) = plan_job(app, channel, state, &r).await?;
    tracing::info!(
        channel,
        job = job.id,
        destination = r.destination,
        segments = plan.segments,
        "harvest started"
    );
    let started = job.report();
    let channel = channel.to_owned();
    tokio::spawn(async move {
        let result = write_to_bucket(&bucket, &channel, &plan, &path, &job).await;
        job.finish(result, "the bucket did not answer");
    });
    Ok(json(StatusCode::ACCEPTED, &started))
}

async fn write_to_bucket(
    bucket: &Bucket,
    channel: &str,
    plan: &HarvestPlan,
    path: &str,
    job: &Job,
) -> Result<(), BucketError> {
    for (_, rel, hash) in &plan.files {
        bucket
            .copy_media(channel, hash, &format!("{path}/{rel}"))
            .await?;
        job.files_done.fetch_add(1, Ordering::Relaxed);
    }
    // The multivariant playlist (`index.m3u8` at the top) last: its presence means whole.
    let (top, renditions): (Vec<_>, Vec<_>) =
        plan.texts.iter().partition(|(rel, _)| rel == "index.m3u8");
    for (rel, text) in renditions.into_iter().chain(top) {
        bucket
            .put_text(&format!("{path}/{rel}"), text.clone())
            .await?;
        job.files_done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Writes the package into `dir`: files hard-linked where the file system allows (segments are
/// immutable), else copied.
fn write(plan: &HarvestPlan, dir: &Path, job: &Job) -> std::io::Result<()> {
    let place = |rel: &str| -> std::io::Result<PathBuf> {
        let to = dir.join(rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        Ok(to)
    };
    for (from, rel, _) in &plan.files {
        let to = place(rel)?;
        if std::fs::hard_link(from, &to).is_err() {
            std::fs::copy(from, &to)?;
        }
        job.files_done.fetch_add(1, Ordering::Relaxed);
    }
    for (rel, text) in &plan.texts {
        std::fs::write(place(rel)?, text)?;
        job.files_done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// `GET /admin/v1/harvests/{id}`.
pub fn status(app: &App, id: &str) -> Result<Response, ApiError> {
    let job = app
        .harvests
        .jobs
        .lock()
        .ok()
        .and_then(|j| j.get(id).cloned())
        .ok_or_else(|| ApiError::NoSuchHarvest(id.to_owned()))?;
    Ok(json(StatusCode::OK, &job.report()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked() {
        let r = Request::parse(
            br#"{"start":"2026-11-28T10:00:00Z","end":1795860120,"destination":"news/day-1"}"#,
        )
        .unwrap();
        assert_eq!(r.start_ms, parse_pdt("2026-11-28T10:00:00Z").unwrap());
        assert_eq!(
            (r.end_ms, r.destination.as_str()),
            (1_795_860_120_000, "news/day-1")
        );
        for (body, why) in [
            (&br#"nope"#[..], "must be JSON"),
            (br#"{"start":1,"end":2}"#, "'destination'"),
            (
                br#"{"start":1,"end":2,"destination":"../x"}"#,
                "relative path",
            ),
            (
                br#"{"start":1,"end":2,"destination":"/etc"}"#,
                "relative path",
            ),
            (
                br#"{"start":1,"end":2,"destination":"a/.hidden"}"#,
                "relative path",
            ),
            (
                br#"{"start":"yesterday","end":2,"destination":"a"}"#,
                "'start'",
            ),
        ] {
            let e = Request::parse(body).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
    }
}
