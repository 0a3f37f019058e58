//! A bounded cache of the store's playlist answers, one per VM (per Envoy worker): a viewer
//! population asking for the same live playlist costs one store request per `ttl_ms`, not one
//! per viewer. Only 200 answers are kept (an error is asked again next time); the oldest entry
//! makes room when it is full. No clock inside: the caller passes the time.
//!
//! Beside each store answer, the viewer answers made from it: keyed by what else they were made
//! from (`K`: the packager's step, which holds everything of the request the answer depends
//! on), they live exactly as long as the store answer, so viewers asking the same playlist of
//! the same endpoint in one interval cost one parse and one rewrite, not one each.

use std::collections::HashMap;

/// Viewer answers kept per store answer (different endpoints, filters, time-shifts of one
/// rendition view); the oldest makes room.
const ANSWERS_PER_ENTRY: usize = 8;
/// A viewer answer larger than this is made again each time (long time-shift playlists).
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// A store answer kept: when it arrived, its body, and the viewer answers made from it.
#[derive(Debug, Clone, PartialEq)]
struct Entry<K, A> {
    at_ms: i64,
    body: Vec<u8>,
    answers: Vec<(K, A)>,
}

/// Store paths → their latest 200 answer, and the viewer answers made from it.
#[derive(Debug)]
pub struct StoreCache<K, A> {
    entries: HashMap<String, Entry<K, A>>,
    capacity: usize,
    ttl_ms: i64,
}

impl<K, A> Default for StoreCache<K, A> {
    fn default() -> Self {
        Self::new(0, 0)
    }
}

impl<K, A> StoreCache<K, A> {
    /// A cache of up to `capacity` answers, each fresh for `ttl_ms` (0: nothing is kept).
    pub fn new(capacity: usize, ttl_ms: u64) -> Self {
        Self {
            entries: HashMap::with_capacity(capacity.min(1024)),
            capacity,
            ttl_ms: ttl_ms.min(i64::MAX as u64) as i64,
        }
    }
}

impl<K: PartialEq, A> StoreCache<K, A> {
    fn fresh(&self, path: &str, now_ms: i64) -> Option<&Entry<K, A>> {
        self.entries
            .get(path)
            .filter(|e| now_ms.saturating_sub(e.at_ms) < self.ttl_ms && now_ms >= e.at_ms)
    }

    /// The body of `path`'s answer, if it arrived less than the TTL ago.
    pub fn get(&self, path: &str, now_ms: i64) -> Option<&[u8]> {
        self.fresh(path, now_ms).map(|e| e.body.as_slice())
    }

    /// The viewer answer made for `key` from `path`'s store answer, while that is fresh.
    pub fn answer(&self, path: &str, key: &K, now_ms: i64) -> Option<&A> {
        self.fresh(path, now_ms)?
            .answers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, a)| a)
    }

    /// Keeps a viewer answer made for `key` from `path`'s store answer (if that is still kept
    /// and fresh, and the answer is at most `MAX_ANSWER_BYTES`).
    pub fn keep_answer(&mut self, path: &str, key: K, now_ms: i64, size: usize, answer: A) {
        let ttl = self.ttl_ms;
        let Some(e) = self
            .entries
            .get_mut(path)
            .filter(|e| now_ms.saturating_sub(e.at_ms) < ttl && now_ms >= e.at_ms)
        else {
            return;
        };
        if size > MAX_ANSWER_BYTES {
            return;
        }
        e.answers.retain(|(k, _)| *k != key);
        if e.answers.len() >= ANSWERS_PER_ENTRY {
            e.answers.remove(0);
        }
        e.answers.push((key, answer));
    }

    /// Keeps `path`'s answer (its viewer answers start afresh), dropping stale entries, or the
    /// oldest one, to stay bounded.
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
                answers: Vec::new(),
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
        let mut c = StoreCache::<(), ()>::new(2, 500);
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
        let mut off = StoreCache::<(), ()>::new(8, 0);
        off.put("/a", 0, b"A");
        assert!(off.is_empty());
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn viewer_answers_live_as_long_as_their_store_answer() {
        let mut c = StoreCache::<&str, String>::new(4, 500);
        c.keep_answer("/a", "hls", 1000, 1, "nothing to keep it with".into());
        assert_eq!(
            c.answer("/a", &"hls", 1000),
            None,
            "no store answer, no viewer answer"
        );
        c.put("/a", 1000, b"A");
        c.keep_answer("/a", "hls", 1010, 1, "hls from A".into());
        c.keep_answer("/a", "cmaf", 1020, 1, "cmaf from A".into());
        assert_eq!(
            c.answer("/a", &"hls", 1400).map(String::as_str),
            Some("hls from A")
        );
        assert_eq!(
            c.answer("/a", &"cmaf", 1499).map(String::as_str),
            Some("cmaf from A")
        );
        assert_eq!(c.answer("/a", &"dash", 1100), None, "another key");
        assert_eq!(c.answer("/b", &"hls", 1100), None, "another store path");
        assert_eq!(
            c.answer("/a", &"hls", 1500),
            None,
            "stale with its store answer"
        );
        c.put("/a", 1600, b"A2");
        assert_eq!(
            c.answer("/a", &"hls", 1600),
            None,
            "a new store answer starts afresh"
        );
        c.keep_answer("/a", "big", 1600, MAX_ANSWER_BYTES + 1, "too big".into());
        assert_eq!(c.answer("/a", &"big", 1600), None, "over the size limit");
        for i in 0..ANSWERS_PER_ENTRY + 1 {
            c.keep_answer(
                "/a",
                ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8"][i],
                1600,
                1,
                format!("{i}"),
            );
        }
        assert_eq!(c.answer("/a", &"k0", 1600), None, "the oldest made room");
        assert_eq!(c.answer("/a", &"k8", 1600).map(String::as_str), Some("8"));
        c.keep_answer("/a", "k8", 1600, 1, "again".into());
        assert_eq!(
            c.answer("/a", &"k8", 1600).map(String::as_str),
            Some("again"),
            "replaced"
        );
        assert_eq!(
            c.answer("/a", &"k1", 1600).map(String::as_str),
            Some("1"),
            "not a second copy"
        );
    }
}
