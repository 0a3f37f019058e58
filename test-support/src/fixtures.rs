//! Inputs shared by the benchmarks: a store media playlist as the
//! sidecar writes it, and an MPEG-TS input as an encoder makes it.

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

/// [`store_playlist`] with an ad break every `every` segments lasting half as many, tagged as
/// the store's view carries them: the encoder's `EXT-X-CUE-OUT`/`-CONT`/`-IN` and the store's
/// own `#EXT-X-EDGEPACK-CUE` reading of each.
pub fn store_playlist_with_breaks(n: u64, every: u64) -> String {
    let mut s = String::from(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n",
    );
    let length = every / 2;
    let seconds = length * 2;
    for i in 0..n {
        let t = chrono::DateTime::from_timestamp_millis(T0 + i as i64 * 2000).unwrap_or_default();
        let into = i % every;
        let id = i - into;
        if into == 0 {
            s.push_str(&format!(
                "#EXT-X-CUE-OUT:{seconds}\n#EXT-X-EDGEPACK-CUE:EDGE=OUT,ID=\"{id}\",DURATION={seconds}.000\n"
            ));
        } else if into < length {
            s.push_str(&format!(
                "#EXT-X-CUE-OUT-CONT:ElapsedTime={},Duration={seconds}\n#EXT-X-EDGEPACK-CUE:EDGE=CONT,ID=\"{id}\",DURATION={seconds}.000\n",
                into * 2
            ));
        } else if into == length {
            s.push_str(&format!(
                "#EXT-X-CUE-IN\n#EXT-X-EDGEPACK-CUE:EDGE=IN,ID=\"{id}\"\n"
            ));
        }
        s.push_str(&format!(
            "#EXT-X-PROGRAM-DATE-TIME:{}\n#EXTINF:2.000000,\n{i}.ts\n",
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        ));
    }
    s
}

/// Encodes `seconds` of 720p H.264 (5 Mb/s, 2 s GOPs) + AAC into one MPEG-TS file with Debian's
/// ffmpeg; false when ffmpeg is missing or fails.
pub fn encode_ts(path: &std::path::Path, seconds: u32) -> bool {
    std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=1280x720:rate=25")
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-b:v", "5M", "-g", "50",
        ])
        .args(["-c:a", "aac", "-f", "mpegts"])
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}
