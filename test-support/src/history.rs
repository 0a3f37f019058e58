//! A long live history made quickly: [`fabricate`] runs the store's `fabricate_history` example,
//! which cycles a few real segments per rendition ([`make_media`], made once by ffmpeg) through
//! the store's own history writer (`edgepack_store::channel::history`) by hard links — 14 days of
//! 2 s segments in seconds. (The writer lives in the store crate, next to the on-disk format it
//! writes; this crate depends on none of edgepack's crates.)
//!
//! Every segment is its own MPEG-TS stream (ffmpeg's `segment` muxer, a header per segment,
//! `initial_discontinuity` on each stream's first packet) starting with a keyframe, so a player
//! decodes any sequence of them: continuity counters restart flagged, and the timestamps going
//! back when the cycle restarts are an MPEG-TS discontinuity that players follow. (Segments cut
//! from one continuous stream, as the HLS muxer writes them, do not: ffmpeg flags the first
//! packet after a cycle restart corrupt.)

use std::path::{Path, PathBuf};
use std::process::Command;

/// The largest startover window the sidecar accepts: 14 days.
pub const FOURTEEN_DAYS_SECONDS: u64 = 14 * 24 * 3600;

/// Frame rate of the media.
pub const FRAME_RATE: u32 = 25;

/// The segments made for each rendition and the multivariant playlist that lists them.
#[derive(Debug, Clone)]
pub struct Media {
    /// Rendition id (`stream_{n}`, as the test encoder names them) → its segments in order.
    pub renditions: Vec<(String, Vec<PathBuf>)>,
    /// An encoder's multivariant playlist for them: variant URIs `{id}.m3u8`.
    pub multivariant: String,
}

/// Writes `hours` of `renditions` renditions of `segment_seconds` segments, ending now, for
/// channel `channel` under `store_dir` (the sidecar's `data_dir`) with the `fabricate_history`
/// tool ([`crate::artifacts::optimized_store_tools`]); returns the tool's summary (segments per
/// rendition, first and last program date times, seconds taken).
pub fn fabricate(
    tool: &Path,
    store_dir: &Path,
    channel: &str,
    renditions: usize,
    hours: f64,
    segment_seconds: u32,
) -> Result<serde_json::Value, String> {
    let out = Command::new(tool)
        .arg("--store-dir")
        .arg(store_dir)
        .args(["--channel", channel])
        .args(["--renditions", &renditions.to_string()])
        .args(["--hours", &hours.to_string()])
        .args(["--segment-seconds", &segment_seconds.to_string()])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", tool.display()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("fabricate_history's summary: {e}"))
}

/// Picture size and video bitrate of rendition `r`: 320×240 at 400 kb/s, then smaller.
fn rendition_format(r: usize) -> (u32, u32, u32) {
    let h = (240 / (r as u32 + 1)) & !1;
    let w = (h * 4 / 3) & !1;
    (w, h, 400_000 / (r as u32 + 1))
}

/// Makes `segments` segments of `segment_seconds` for each of `renditions` renditions under
/// `dir` with one ffmpeg run (testsrc2 + a sine tone, H.264/AAC, a keyframe per segment).
pub fn make_media(
    dir: &Path,
    renditions: usize,
    segment_seconds: u32,
    segments: usize,
) -> Result<Media, String> {
    if renditions == 0 || segments == 0 || segment_seconds == 0 {
        return Err("needs at least one rendition, one segment and one second".into());
    }
    let gop = (FRAME_RATE * segment_seconds).to_string();
    let mut args = crate::sidecar::test_pattern_inputs(false);
    let seconds = (segment_seconds as usize * segments).to_string();
    let mut graph = format!("[0:v]split={renditions}");
    for r in 0..renditions {
        graph.push_str(&format!("[s{r}]"));
    }
    for r in 0..renditions {
        let (w, h, _) = rendition_format(r);
        graph.push_str(&format!(";[s{r}]scale={w}:{h}[v{r}]"));
    }
    args.extend(["-filter_complex".to_owned(), graph]);
    let mut out = Vec::new();
    for r in 0..renditions {
        let id = format!("stream_{r}");
        let rdir = dir.join(&id);
        std::fs::create_dir_all(&rdir).map_err(|e| format!("{}: {e}", rdir.display()))?;
        let (_, _, bps) = rendition_format(r);
        let opts = [
            "-t",
            &seconds,
            "-map",
            &format!("[v{r}]"),
            "-map",
            "1:a",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-threads",
            "1",
            "-g",
            &gop,
            "-keyint_min",
            &gop,
            "-sc_threshold",
            "0",
            "-b:v",
            &bps.to_string(),
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-f",
            "segment",
            "-segment_time",
            &segment_seconds.to_string(),
            "-segment_format",
            "mpegts",
            "-segment_format_options",
            "mpegts_flags=+initial_discontinuity",
        ];
        args.extend(opts.iter().map(|s| s.to_string()));
        args.push(rdir.join("%d.ts").display().to_string());
        out.push((id, rdir));
    }
    let run = Command::new("ffmpeg")
        .args(&args)
        .output()
        .map_err(|e| format!("cannot run ffmpeg (apt-get install ffmpeg): {e}"))?;
    if !run.status.success() {
        return Err(format!(
            "ffmpeg failed: {}",
            String::from_utf8_lossy(&run.stderr)
        ));
    }
    let mut renditions_out = Vec::new();
    let mut multivariant = String::from("#EXTM3U\n#EXT-X-VERSION:3\n");
    for (r, (id, rdir)) in out.into_iter().enumerate() {
        let files: Vec<PathBuf> = (0..segments)
            .map(|i| rdir.join(format!("{i}.ts")))
            .collect();
        let mut peak = 0;
        for f in &files {
            let len = std::fs::metadata(f)
                .map_err(|e| format!("ffmpeg made no {}: {e}", f.display()))?
                .len();
            peak = peak.max(len * 8 / u64::from(segment_seconds));
        }
        if rdir.join(format!("{segments}.ts")).exists() {
            return Err(format!("ffmpeg cut more than {segments} segments"));
        }
        let (w, h, _) = rendition_format(r);
        multivariant.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={peak},RESOLUTION={w}x{h}\n{id}.m3u8\n"
        ));
        renditions_out.push((id, files));
    }
    Ok(Media {
        renditions: renditions_out,
        multivariant,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn segments_decode_in_any_order_with_every_frame() {
        let d = std::env::temp_dir().join(format!("edgepack-history-{}", std::process::id()));
        let media = make_media(&d, 2, 2, 3).unwrap();
        assert_eq!(media.renditions.len(), 2);
        assert!(
            media
                .multivariant
                .contains("RESOLUTION=160x120\nstream_1.m3u8\n")
        );
        // The cycle played twice over, restarting: 6 segments, 2 s each, every frame.
        let files = &media.renditions[0].1;
        let mut list = String::from(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n",
        );
        for f in files.iter().chain(files) {
            list.push_str(&format!("#EXTINF:2.000000,\n{}\n", f.display()));
        }
        list.push_str("#EXT-X-ENDLIST\n");
        let playlist = d.join("cycle.m3u8");
        std::fs::write(&playlist, list).unwrap();
        let frames = crate::player::decoded_with(
            &["-protocol_whitelist", "file"],
            &playlist.display().to_string(),
            "0:v",
        )
        .unwrap();
        let _ = std::fs::remove_dir_all(&d);
        assert_eq!(frames[&0].len(), 6 * 2 * FRAME_RATE as usize);
    }
}
