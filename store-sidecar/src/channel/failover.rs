//! Which input is served: the one that delivered last at start-up, then the active one until it
//! stalls while the other keeps delivering.

use std::io;
use std::time::{Duration, Instant};

use super::ChannelState;

/// A failover that just happened.
#[derive(Debug, PartialEq)]
pub struct Failover {
    pub from: usize,
    pub to: usize,
}

impl ChannelState {
    /// After a restart: the input that delivered last is the active one until the encoders
    /// speak again.
    pub(super) fn restore_active(&mut self) {
        let mut latest = [None::<i64>; 2];
        for r in self.renditions.values() {
            if let Some(e) = r.timeline.entries.back() {
                for (i, c) in e.copies.iter().enumerate() {
                    if let Some(c) = c {
                        latest[i] = latest[i].max(Some(c.received_ms));
                    }
                }
            }
        }
        self.active = match latest {
            [None, None] => None,
            [a, b] => Some(usize::from(b > a)),
        };
        for (i, l) in latest.iter().enumerate() {
            self.inputs[i].last_indexed_ms = *l;
        }
    }

    fn max_target_duration(&self) -> u64 {
        self.inputs
            .iter()
            .flat_map(|i| {
                i.renditions
                    .values()
                    .filter_map(|r| r.source.target_duration)
            })
            .max()
            .unwrap_or(6)
    }

    /// How long the active input may stand still before the other takes over.
    pub fn failover_after(&self) -> Duration {
        Duration::from_secs_f64(
            self.cfg
                .failover_after_seconds
                .unwrap_or(2.0 * self.max_target_duration() as f64),
        )
    }

    /// True when `input` indexed a segment within the failover delay before `now`.
    pub(super) fn publishing(&self, input: usize, now: Instant) -> bool {
        let after = self.failover_after();
        self.inputs[input]
            .last_indexed
            .is_some_and(|t| now.duration_since(t) < after)
    }

    /// Periodic work: skip lost uploads and switch inputs when the active one stalled. Switches
    /// only from a stalled input to one that is advancing, so two healthy inputs never flap.
    pub fn tick(&mut self, now: Instant) -> io::Result<Option<Failover>> {
        // In a bucket: nothing before the log is read back; an edge follows the writers'
        // decisions in the log.
        if self
            .replica
            .as_ref()
            .is_some_and(|r| !r.caught_up || !r.writer())
        {
            return Ok(None);
        }
        for input in 0..2 {
            self.index_all(input, now)?;
        }
        let Some(active) = self.active else {
            return Ok(None);
        };
        let other = 1 - active;
        if !self.publishing(active, now) && self.publishing(other, now) {
            self.active = Some(other);
            self.log(super::LogRecord::Active { input: other });
            self.failovers += 1;
            self.multivariant_cache = None;
            for r in self.renditions.values_mut() {
                r.cache = None;
            }
            return Ok(Some(Failover {
                from: active,
                to: other,
            }));
        }
        Ok(None)
    }

    /// The active input (0 or 1), if any input has published.
    pub fn active(&self) -> Option<usize> {
        self.active
    }

    /// The inputs in the order their copies are served: the active one first.
    pub(super) fn preferred_inputs(&self) -> [usize; 2] {
        match self.active {
            Some(1) => [1, 0],
            _ => [0, 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn failover_only_from_a_stalled_input_to_a_live_one() {
        let d = tempfile::tempdir().unwrap();
        let mut st = ChannelState::open(channel(), d.path()).unwrap();
        upload(&mut st, 0, "s0.ts");
        st.accept_playlist(0, "hd.m3u8", playlist(0, 1).as_bytes())
            .unwrap();
        upload(&mut st, 1, "s0.ts");
        st.accept_playlist(1, "hd.m3u8", playlist(0, 1).as_bytes())
            .unwrap();
        assert_eq!(st.active(), Some(0));
        let t0 = Instant::now();
        assert_eq!(st.failover_after(), Duration::from_secs(4));
        // Both fresh: no switch.
        assert_eq!(st.tick(t0 + Duration::from_secs(1)).unwrap(), None);
        // Both stalled: nowhere better to go.
        assert_eq!(st.tick(t0 + Duration::from_secs(10)).unwrap(), None);
        // Input 2 delivers again while input 1 stays silent: switch once, then stay.
        st.inputs[1].last_indexed = Some(t0 + Duration::from_secs(9));
        assert_eq!(
            st.tick(t0 + Duration::from_secs(10)).unwrap(),
            Some(Failover { from: 0, to: 1 })
        );
        assert_eq!(st.tick(t0 + Duration::from_secs(11)).unwrap(), None);
        assert_eq!(st.active(), Some(1));
    }
}
