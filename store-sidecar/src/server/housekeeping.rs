//! Background work on every channel: failover checks, pruning the startover window, deleting
//! uploads no playlist listed; in a bucket, following and publishing the index log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{App, blocking};
use crate::channel::now_ms;
use crate::metrics::ChannelLabels;

/// Failover checks four times a second, pruning every 5 s, upload GC every minute.
pub async fn housekeeping(app: Arc<App>) {
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    let stale = Duration::from_secs(app.settings.server.stale_upload_seconds);
    let mut bucket_down = std::collections::HashSet::new();
    loop {
        ticker.tick().await;
        n += 1;
        for (id, state) in &app.channels {
            let state = state.clone();
            let prune = n.is_multiple_of(20);
            let gc = n.is_multiple_of(240);
            let result = blocking(move || {
                let mut st = state.blocking_lock();
                let failover = st.tick(Instant::now())?;
                if prune {
                    st.prune(now_ms())?;
                }
                if gc {
                    st.gc_uploads(stale)?;
                }
                Ok((failover, st.active(), st.retained_segments()))
            })
            .await;
            // In a bucket: the other sidecars' changes in, this one's out.
            let synced = super::replication::sync(&app, id).await;
            match (&synced, bucket_down.contains(id)) {
                (Err(e), false) => {
                    tracing::warn!(channel = %id, error = %e, "the bucket does not answer; retrying");
                    bucket_down.insert(id.clone());
                }
                (Ok(()), true) => {
                    tracing::info!(channel = %id, "the bucket answers again");
                    bucket_down.remove(id);
                }
                _ => {}
            }
            let labels = ChannelLabels {
                channel: id.clone(),
            };
            match result {
                Ok((failover, active, retained)) => {
                    // Counted from 0, so a dashboard shows "none" rather than "no data".
                    let failovers = app.metrics.failovers.get_or_create(&labels);
                    if let Some(f) = failover {
                        tracing::warn!(
                            channel = %id,
                            from = f.from + 1,
                            to = f.to + 1,
                            "input failover: active input stopped advancing"
                        );
                        failovers.inc();
                    }
                    app.metrics
                        .active_input
                        .get_or_create(&labels)
                        .set(active.map_or(0, |a| a as i64 + 1));
                    app.metrics
                        .segments_retained
                        .get_or_create(&labels)
                        .set(retained as i64);
                }
                Err(e) => tracing::error!(channel = %id, error = %e, "housekeeping failed"),
            }
        }
    }
}
