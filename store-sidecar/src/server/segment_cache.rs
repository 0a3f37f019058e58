//! Segments in memory: the live edge is what every viewer asks for, so the store keeps the
//! segments it served last (bounded by bytes, least recently used leaves first) and answers them
//! without touching the disk. A stored segment never changes its bytes (its ETag is its content
//! hash), so a cached copy is keyed by file and ETag and never goes stale.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;

#[derive(Debug)]
struct Slot {
    body: Bytes,
    used: u64,
}

#[derive(Debug, Default)]
struct Inner {
    slots: HashMap<(PathBuf, String), Slot>,
    bytes: usize,
    clock: u64,
}

/// A bounded map of segment files to their bytes.
#[derive(Debug)]
pub struct SegmentCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl SegmentCache {
    /// A cache of up to `capacity` bytes (0: nothing is kept).
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            capacity,
        }
    }

    /// The bytes of `path` with `etag`, if kept.
    pub fn get(&self, path: &Path, etag: &str) -> Option<Bytes> {
        let mut inner = self.inner.lock().ok()?;
        inner.clock += 1;
        let now = inner.clock;
        let slot = inner
            .slots
            .get_mut(&(path.to_path_buf(), etag.to_owned()))?;
        slot.used = now;
        Some(slot.body.clone())
    }

    /// Keeps `body` as the bytes of `path` with `etag`, making room by dropping the least
    /// recently used. A segment larger than a quarter of the cache is not kept (it would push
    /// out the live edge for one request).
    pub fn put(&self, path: &Path, etag: &str, body: Bytes) {
        if body.len() > self.capacity / 4 {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        inner.clock += 1;
        let used = inner.clock;
        while inner.bytes + body.len() > self.capacity {
            let Some(oldest) = inner
                .slots
                .iter()
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(gone) = inner.slots.remove(&oldest) {
                inner.bytes -= gone.body.len();
            }
        }
        let len = body.len();
        let key = (path.to_path_buf(), etag.to_owned());
        if let Some(old) = inner.slots.insert(key, Slot { body, used }) {
            inner.bytes -= old.body.len();
        }
        inner.bytes += len;
    }

    /// Bytes kept.
    pub fn bytes(&self) -> usize {
        self.inner.lock().map_or(0, |i| i.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_recently_used_within_its_bytes() {
        let c = SegmentCache::new(400);
        let p = |n: &str| PathBuf::from(n);
        c.put(&p("a"), "1", Bytes::from(vec![1; 100]));
        c.put(&p("b"), "1", Bytes::from(vec![2; 100]));
        c.put(&p("c"), "1", Bytes::from(vec![3; 100]));
        assert!(c.get(&p("a"), "1").is_some(), "a is now the most recent");
        c.put(&p("d"), "1", Bytes::from(vec![4; 100]));
        c.put(&p("e"), "1", Bytes::from(vec![5; 100]));
        assert!(c.bytes() <= 400);
        assert!(
            c.get(&p("b"), "1").is_none(),
            "the least recently used left"
        );
        assert_eq!(c.get(&p("a"), "1").unwrap()[0], 1);
        assert!(
            c.get(&p("a"), "2").is_none(),
            "another ETag is another file"
        );
        c.put(&p("big"), "1", Bytes::from(vec![0; 101]));
        assert!(c.get(&p("big"), "1").is_none(), "over a quarter: not kept");
        let off = SegmentCache::new(0);
        off.put(&p("a"), "1", Bytes::from_static(b"x"));
        assert_eq!(off.bytes(), 0);
    }
}
