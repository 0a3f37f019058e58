//! Inputs shared by the benchmarks (included with `#[path]`): a store media playlist as the
//! sidecar writes it.

/// 2026-11-25T…: the first segment's program date time, in ms since the epoch.
pub const T0: i64 = 1_795_600_000_000;

/// A store media playlist of `n` 2 s segments with program date times, numbered from 0.
pub fn store_playlist(n: u64) -> String {
    let mut s = String::from(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n",
    );
    for i in 0..n {
        let t = chrono::DateTime::from_timestamp_millis(T0 + i as i64 * 2000).unwrap_or_default();
        s.push_str(&format!(
            "#EXT-X-PROGRAM-DATE-TIME:{}\n#EXTINF:2.000000,\n{i}.ts\n",
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        ));
    }
    s
}
