//! Produced segments kept once per edge: Envoy's shared data (process-wide, across the worker
//! VMs) holds the answers the filter made — encrypted TS, CMAF and DASH fragments, inits — so
//! a segment is fetched, repackaged and encrypted once per edge, not once per viewer. Every answer
//! is deterministic (same request → same bytes on every edge), so a kept one never goes stale.
//!
//! Shared data has no eviction: the cache bounds itself. One key holds the ring — the kept
//! entries, oldest first, with their sizes — and is updated with compare-and-set, so workers
//! racing to add agree on what stays; the winner clears what it evicted. This module is the
//! sans-IO part (keys, the ring, the entry encoding); the shell does the hostcalls.

use std::collections::VecDeque;

/// Shared-data key of the ring.
pub const RING_KEY: &str = "edgepack/segments/ring";

/// What the ring's value starts with (shared data cannot hold an empty value usefully: the SDK
/// reads one as missing).
const RING_HEADER: &str = "edgepack-ring 1\n";

/// Shared-data key of the answer to a request path (without its query: queries never change a
/// segment's bytes) under the configuration with this fingerprint (shared data outlives a
/// configuration change; a segment made with the old keys must not be served after it).
pub fn entry_key(fingerprint: &str, path: &str) -> String {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    format!("edgepack/segments/{fingerprint}{path}")
}

/// The entries kept, oldest first: (key, bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ring {
    entries: VecDeque<(String, u64)>,
    bytes: u64,
}

impl Ring {
    /// Reads the ring's value; anything unreadable is an empty ring.
    pub fn decode(value: &[u8]) -> Self {
        let mut ring = Ring::default();
        let Some(text) = std::str::from_utf8(value)
            .ok()
            .and_then(|t| t.strip_prefix(RING_HEADER))
        else {
            return ring;
        };
        for line in text.lines() {
            if let Some((size, key)) = line.split_once(' ')
                && let Ok(size) = size.parse::<u64>()
            {
                ring.bytes += size;
                ring.entries.push_back((key.to_owned(), size));
            }
        }
        ring
    }

    /// The ring's value.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::from(RING_HEADER);
        for (key, size) in &self.entries {
            out.push_str(&format!("{size} {key}\n"));
        }
        out.into_bytes()
    }

    /// Adds `key` of `size` bytes within `budget`, evicting the oldest: the keys to clear.
    /// `None` when it is not kept (already there, or over a quarter of the budget: one large
    /// answer must not push out the live edge).
    pub fn admit(&mut self, key: &str, size: u64, budget: u64) -> Option<Vec<String>> {
        if size > budget / 4 || self.entries.iter().any(|(k, _)| k == key) {
            return None;
        }
        let mut evicted = Vec::new();
        while self.bytes + size > budget {
            let Some((k, s)) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= s;
            evicted.push(k);
        }
        self.entries.push_back((key.to_owned(), size));
        self.bytes += size;
        Some(evicted)
    }

    /// Bytes the kept entries hold.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// How many entries are kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A kept answer: its content type, a newline, its body.
pub fn encode_entry(content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(content_type.len() + 1 + body.len());
    v.extend_from_slice(content_type.as_bytes());
    v.push(b'\n');
    v.extend_from_slice(body);
    v
}

/// A kept answer read back: (content type, body); `None` for a cleared or foreign value.
pub fn decode_entry(value: &[u8]) -> Option<(&str, &[u8])> {
    let nl = value.iter().position(|&b| b == b'\n')?;
    let content_type = std::str::from_utf8(value.get(..nl)?).ok()?;
    let body = value.get(nl + 1..)?;
    (!content_type.is_empty() && !body.is_empty()).then_some((content_type, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn the_ring_stays_within_its_budget_oldest_out() {
        let mut r = Ring::default();
        assert_eq!(r.admit("a", 20, 100), Some(vec![]));
        assert_eq!(r.admit("b", 25, 100), Some(vec![]));
        assert_eq!(r.admit("a", 20, 100), None, "already kept");
        assert_eq!(
            r.admit("big", 26, 100),
            None,
            "over a quarter of the budget"
        );
        assert_eq!(r.admit("c", 25, 100), Some(vec![]));
        assert_eq!(r.admit("d", 25, 100), Some(vec![]));
        assert_eq!(r.admit("e", 25, 100), Some(vec!["a".to_owned()]));
        assert_eq!(r.bytes(), 100);
        let back = Ring::decode(&r.encode());
        assert_eq!(back, r);
        assert_eq!(back.len(), 4);
        assert!(Ring::decode(b"garbage").is_empty());
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn entries_read_back_and_cleared_ones_are_misses() {
        let v = encode_entry("video/mp2t", b"\x47\x00\n\x01");
        assert_eq!(
            decode_entry(&v),
            Some(("video/mp2t", &b"\x47\x00\n\x01"[..]))
        );
        assert_eq!(decode_entry(b""), None);
        assert_eq!(decode_entry(b"video/mp4\n"), None);
        assert_eq!(
            entry_key("0011", "/out/v1/news/secure/hd/5.ts?token=x"),
            "edgepack/segments/0011/out/v1/news/secure/hd/5.ts"
        );
    }
}
