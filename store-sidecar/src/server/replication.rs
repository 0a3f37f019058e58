//! Keeping a channel and its bucket in step: reading the index log to its end, publishing what
//! this sidecar indexed, deleting pruned media; and reading media from the bucket for `/store/v1`
//! through the memory cache, one bucket GET however many viewers ask at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::OnceCell;

use super::App;
use crate::bucket::{Bucket, BucketError};
use crate::channel::{decode_log, encode_log};

/// Media being fetched: a late asker awaits the first one's answer.
pub type Inflight = std::sync::Mutex<HashMap<String, Arc<OnceCell<Result<Bytes, BucketError>>>>>;

/// Brings channel `id` up to date with the bucket's log, then publishes what this sidecar has not
/// (retrying on the next number when the other ingest sidecar wrote first). Serialized per
/// channel. Without a bucket, nothing to do.
pub async fn sync(app: &App, id: &str) -> Result<(), BucketError> {
    let (Some(bucket), Some(state), Some(lock)) = (
        app.bucket.as_deref(),
        app.channels.get(id),
        app.sync_locks.get(id),
    ) else {
        return Ok(());
    };
    let _one_at_a_time = lock.lock().await;
    loop {
        // Read to the end of the log.
        loop {
            let Some(n) = state.lock().await.log_position() else {
                return Ok(());
            };
            match bucket.read_log(id, n).await? {
                Some(body) => {
                    let records = decode_log(&body).map_err(|e| {
                        BucketError::other(format!(
                            "index log object {n} of channel '{id}' is damaged: {e}"
                        ))
                    })?;
                    state.lock().await.apply_log(n, records);
                    followed(app, id, true);
                }
                None => {
                    if behind_snapshots(app, bucket, id, n).await? {
                        continue;
                    }
                    break;
                }
            }
        }
        let Some((n, batch)) = state.lock().await.log_pending() else {
            return Ok(());
        };
        if batch.is_empty() {
            break;
        }
        let body = encode_log(&batch).map_err(|e| BucketError::other(e.to_string()))?;
        if bucket.create_log(id, n, body).await? {
            state.lock().await.log_published(n, batch.len());
        }
        // Else another writer took number `n`: read it, rebase, try the next.
    }
    snapshot(app, bucket, id, state).await;
    let deletes = state.lock().await.take_deletes();
    for hash in deletes {
        if let Err(e) = bucket.delete_media(id, &hash).await {
            tracing::warn!(channel = id, error = %e, "could not delete pruned media from the bucket; it stays");
        }
    }
    Ok(())
}

/// Where a channel's snapshots stand: (the newest, the one before). Log objects before the one
/// before are deleted when a newer snapshot is written, so a follower a whole snapshot interval
/// behind still finds its next object.
pub type SnapshotMarks = std::sync::Mutex<HashMap<String, (u64, u64)>>;

/// A writer snapshots the index every `storage.snapshot_every` log objects and deletes what the
/// snapshot before supersedes. Failures are logged: the log stays readable without it.
async fn snapshot(
    app: &App,
    bucket: &Bucket,
    id: &str,
    state: &tokio::sync::Mutex<crate::channel::ChannelState>,
) {
    let (newest, before) = app
        .snapshots
        .lock()
        .ok()
        .and_then(|m| m.get(id).copied())
        .unwrap_or((0, 0));
    let taken = {
        let st = state.lock().await;
        if st.read_only() {
            return;
        }
        match st.log_position() {
            Some(n) if n >= newest + app.settings.storage.snapshot_every => st.log_snapshot(),
            _ => None,
        }
    };
    let Some((n, records)) = taken else {
        return;
    };
    let body = match encode_log(&records) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(channel = id, error = %e, "could not encode an index snapshot");
            return;
        }
    };
    if let Err(e) = bucket.put_snapshot(id, n, body).await {
        tracing::warn!(channel = id, error = %e, "could not write an index snapshot; the log stays whole");
        return;
    }
    if let Ok(mut m) = app.snapshots.lock() {
        m.insert(id.to_owned(), (n, newest));
    }
    tracing::info!(
        channel = id,
        at = n,
        entries = records.len(),
        "index snapshot written"
    );
    if newest > before
        && let Err(e) = bucket.delete_log_before(id, before, newest).await
    {
        tracing::warn!(channel = id, error = %e, "could not delete superseded index log");
    }
}

/// A sidecar starting on a bucket: the newest snapshot, then the log after it.
async fn start_from_snapshot(app: &App, bucket: &Bucket, id: &str) -> Result<(), BucketError> {
    let Some(state) = app.channels.get(id) else {
        return Ok(());
    };
    if state.lock().await.log_position() != Some(0) {
        return Ok(());
    }
    if let Some((n, body)) = bucket.latest_snapshot(id).await? {
        let records = decode_log(&body).map_err(|e| {
            BucketError::other(format!(
                "index snapshot {n} of channel '{id}' is damaged: {e}"
            ))
        })?;
        state.lock().await.start_from_snapshot(n, records);
        if let Ok(mut m) = app.snapshots.lock() {
            m.insert(id.to_owned(), (n, n));
        }
        tracing::info!(channel = id, at = n, "index snapshot read");
    }
    Ok(())
}

/// How long a follower's log may stand still before it checks that the objects it waits for
/// were not deleted under it (it was cut off for longer than two snapshot intervals).
const STILL_BEFORE_CHECK: Duration = Duration::from_secs(5);

/// Notes that channel `id`'s log advanced (`true`), or asks whether it has stood still for
/// [`STILL_BEFORE_CHECK`] (then the clock restarts: one check per interval).
fn followed(app: &App, id: &str, advanced: bool) -> bool {
    let Ok(mut f) = app.followed.lock() else {
        return false;
    };
    let now = std::time::Instant::now();
    let last = f.entry(id.to_owned()).or_insert(now);
    if advanced || now.duration_since(*last) >= STILL_BEFORE_CHECK {
        *last = now;
        return !advanced;
    }
    false
}

/// An edge whose next log object `n` is missing while a newer snapshot exists was cut off while
/// the objects it needs were deleted: it starts again from the newest snapshot (true).
async fn behind_snapshots(
    app: &App,
    bucket: &Bucket,
    id: &str,
    n: u64,
) -> Result<bool, BucketError> {
    let Some(state) = app.channels.get(id) else {
        return Ok(false);
    };
    if !state.lock().await.read_only() || !followed(app, id, false) {
        return Ok(false);
    }
    match bucket.newest_snapshot(id).await? {
        Some(newest) if newest > n => {}
        _ => return Ok(false),
    }
    let Some((at, body)) = bucket.latest_snapshot(id).await? else {
        return Ok(false);
    };
    let records = decode_log(&body).map_err(|e| {
        BucketError::other(format!(
            "index snapshot {at} of channel '{id}' is damaged: {e}"
        ))
    })?;
    let cfg = state.lock().await.cfg.clone();
    let mut fresh = crate::channel::ChannelState::open_replicated(
        cfg,
        &app.settings.server.data_dir,
        app.settings.local_inputs(),
    )
    .map_err(|e| BucketError::other(format!("channel '{id}': {e}")))?;
    fresh.start_from_snapshot(at, records);
    fresh
        .log_caught_up()
        .map_err(|e| BucketError::other(format!("channel '{id}': {e}")))?;
    *state.lock().await = fresh;
    tracing::warn!(
        channel = id,
        was_at = n,
        snapshot = at,
        "the index log this edge needed was deleted while it could not read the bucket; started again from the newest snapshot"
    );
    Ok(true)
}

/// At start-up: every channel's log read back (retrying while the bucket does not answer, up to
/// `patience`), then what waits is indexed.
pub async fn catch_up(app: &App, patience: Duration) -> Result<(), BucketError> {
    let Some(bucket) = &app.bucket else {
        return Ok(());
    };
    let deadline = tokio::time::Instant::now() + patience;
    for (id, state) in &app.channels {
        loop {
            let read = match start_from_snapshot(app, bucket, id).await {
                Ok(()) => sync(app, id).await,
                Err(e) => Err(e),
            };
            match read {
                Ok(()) => break,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(channel = %id, error = %e, "cannot read the bucket yet; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e),
            }
        }
        let st = state.clone();
        super::blocking(move || st.blocking_lock().log_caught_up())
            .await
            .map_err(|e| BucketError::other(format!("channel '{id}': {e}")))?;
        let st = state.lock().await;
        tracing::info!(channel = %id, segments = st.retained_segments(),
            "channel index read back from the bucket");
    }
    Ok(())
}

/// A segment or initialization segment from the bucket, by content hash: from memory if kept,
/// else one GET shared by everyone asking meanwhile.
pub async fn media(
    app: &App,
    bucket: &Bucket,
    channel: &str,
    hash: &str,
) -> Result<Bytes, BucketError> {
    let key = std::path::PathBuf::from(format!("bucket/{channel}/{hash}"));
    if let Some(b) = app.segments.get(&key, hash) {
        return Ok(b);
    }
    let cell = {
        let Ok(mut inflight) = app.inflight.lock() else {
            return Err(BucketError::other("the fetch table is poisoned"));
        };
        inflight
            .entry(format!("{channel}/{hash}"))
            .or_insert_with(|| Arc::new(OnceCell::new()))
            .clone()
    };
    let got = cell
        .get_or_init(|| async {
            let got = bucket.get_media(channel, hash).await;
            if let Ok(b) = &got {
                app.segments.put(&key, hash, b.clone());
            }
            got
        })
        .await
        .clone();
    if let Ok(mut inflight) = app.inflight.lock() {
        inflight.remove(&format!("{channel}/{hash}"));
    }
    got
}
