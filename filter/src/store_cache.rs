//! A bounded cache of the store's playlist answers, one per VM (per Envoy worker): a viewer
//! population asking for the same live playlist costs one store request per `ttl_ms`, not one
//! per viewer. Only 200 answers are kept (an error is asked again next time); the oldest entry
//! makes room when it is full. No clock inside: the caller passes the time.

use std::collections::HashMap;

/// A store answer kept: when it arrived and its body.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    at_ms: i64,
    body: Vec<u8>,
}

/// Store paths → their latest 200 answer.
#[derive(Debug, Default)]
pub struct StoreCache {
    entries: HashMap<String, Entry>,
    capacity: usize,
    ttl_ms: i64,
}

impl StoreCache {
    /// A cache of up to `capacity` answers, each fresh for `ttl_ms` (0: nothing is kept).
    pub fn new(capacity: usize, ttl_ms: u64) -> Self {
        Self {
            entries: HashMap::with_capacity(capacity.min(1024)),
            capacity,
            ttl_ms: ttl_ms.min(i64::MAX as u64) as i64,
        }
    }

    /// The body of `path`'s answer, if it arrived less than the TTL ago.
    pub fn get(&self, path: &str, now_ms: i64) -> Option<&[u8]> {
        self.entries
            .get(path)
            .filter(|e| now_ms.saturating_sub(e.at_ms) < self.ttl_ms && now_ms >= e.at_ms)
            .map(|e| e.body.as_slice())
    }

    /// Keeps `path`'s answer, dropping stale entries, or the oldest one, to stay bounded.
    pub fn put(&mut self, path: &str, now_ms: i64, body: &[u8]) {
        if self.ttl_ms == 0 || self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(path) {
            let ttl = self.ttl_ms;
            self.entries
                .retain(|_, e| now_ms.saturating_sub(e.at_ms) < ttl && now_ms >= e.at_ms);
            if self.entries.len() >= self.capacity
                && let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.at_ms)
                    .map(|(k, _)| k.clone())
            {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(
            path.to_owned(),
            Entry {
                at_ms: now_ms,
                body: body.to_vec(),
            },
        );
    }

    /// How many answers are kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn fresh_answers_only_and_bounded() {
        let mut c = StoreCache::new(2, 500);
        c.put("/a", 1000, b"A");
        assert_eq!(c.get("/a", 1000), Some(&b"A"[..]));
        assert_eq!(c.get("/a", 1499), Some(&b"A"[..]));
        assert_eq!(c.get("/a", 1500), None, "stale at the TTL");
        assert_eq!(c.get("/a", 999), None, "a clock that went back");
        c.put("/b", 1100, b"B");
        c.put("/c", 1200, b"C");
        assert_eq!(c.len(), 2, "bounded");
        assert_eq!(c.get("/a", 1200), None, "the oldest made room");
        assert_eq!(c.get("/c", 1200), Some(&b"C"[..]));
        c.put("/c", 1300, b"C2");
        assert_eq!(c.get("/c", 1300), Some(&b"C2"[..]));
        let mut off = StoreCache::new(8, 0);
        off.put("/a", 0, b"A");
        assert!(off.is_empty());
    }
}
