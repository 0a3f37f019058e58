//! ffmpeg as the player: decodes every video frame of an input (a URL or a local playlist) under
//! a hard timeout and returns each frame's MD5 (`-f framemd5`), per stream, so two inputs can be
//! compared frame by frame.

use std::collections::BTreeMap;
use std::process::Command;

/// Stream index → MD5 of each decoded video frame; `Err` with ffmpeg's message when it fails.
pub fn decoded_frames(input: &str) -> Result<BTreeMap<u32, Vec<String>>, String> {
    decoded(input, "0:v")
}

/// Stream index → MD5 of each decoded frame of the streams `map` selects (`0:v`, `0:a`).
pub fn decoded(input: &str, map: &str) -> Result<BTreeMap<u32, Vec<String>>, String> {
    decoded_with(&[], input, map)
}

/// [`decoded`] with input options before `-i` (e.g. `-cenc_decryption_key HEX`).
pub fn decoded_with(
    input_options: &[&str],
    input: &str,
    map: &str,
) -> Result<BTreeMap<u32, Vec<String>>, String> {
    run_player(input_options, input, map, &[])
}

/// Stream index → MD5 of each decoded audio frame as 32-bit float PCM (`-c:a pcm_f32le`): for
/// a mono stream the same bytes GStreamer's `avdec_aac` gives ([`smooth_played_with_audio`]).
pub fn decoded_audio_f32(input: &str) -> Result<BTreeMap<u32, Vec<String>>, String> {
    run_player(&[], input, "0:a", &["-c:a", "pcm_f32le"])
}

/// The first `seconds` of a live playlist from the oldest segment of its window
/// (`-live_start_index 0`): ffmpeg follows a live playlist for as long as it is live, so the
/// output is cut after that much (`-t`), all of it already in the window when playback starts.
pub fn decoded_live(
    input: &str,
    map: &str,
    seconds: u32,
) -> Result<BTreeMap<u32, Vec<String>>, String> {
    run_player(
        &["-live_start_index", "0"],
        input,
        map,
        &["-t", &seconds.to_string()],
    )
}

/// The first `seconds` of a live playlist from where its `EXT-X-START` says
/// (`-prefer_x_start 1`), as a player that honours the tag starts.
pub fn decoded_live_from_start_tag(
    input: &str,
    map: &str,
    seconds: u32,
) -> Result<BTreeMap<u32, Vec<String>>, String> {
    run_player(
        &["-prefer_x_start", "1"],
        input,
        map,
        &["-t", &seconds.to_string()],
    )
}

fn run_player(
    input_options: &[&str],
    input: &str,
    map: &str,
    output_options: &[&str],
) -> Result<BTreeMap<u32, Vec<String>>, String> {
    let out = Command::new("timeout")
        .args([
            "-s",
            "KILL",
            "120",
            "ffmpeg",
            "-hide_banner",
            "-v",
            "error",
            "-xerror",
        ])
        .args(input_options)
        .args(["-i", input, "-map", map])
        .args(output_options)
        .args(["-f", "framemd5", "-"])
        .output()
        .map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let mut per = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
    {
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        let (Some(stream), Some(md5)) = (cols.first().and_then(|s| s.parse().ok()), cols.last())
        else {
            return Err(format!("unexpected framemd5 line: {line}"));
        };
        per.entry(stream)
            .or_insert_with(Vec::new)
            .push((*md5).to_owned());
    }
    Ok(per)
}

/// What GStreamer decoded from a Smooth Streaming manifest.
#[derive(Debug)]
pub struct SmoothPlayback {
    /// MD5 of each decoded video frame (I420, as ffmpeg's `framemd5` hashes it), in order.
    pub video: Vec<String>,
    /// Per audio stream (`audio_00`, `audio_01`, …): the MD5 of each decoded buffer (one AAC
    /// frame; for mono, the same bytes ffmpeg's `framemd5` hashes).
    pub audio: Vec<Vec<String>>,
    /// The manifest ended (not live, or a live stream that ended) before `limit_s`.
    pub ended: bool,
}

/// GStreamer as the Smooth Streaming player (`mssdemux`, Debian's gstreamer1.0-plugins-bad):
/// it reads the manifest at `url`, takes the video QualityLevel that fits `kbps` (its
/// `connection-speed`), decodes every video frame (`avdec_h264`, each frame's MD5) and the audio
/// (`avdec_aac`). A live manifest never ends: playback is stopped (killed) after `limit_s`
/// seconds and what was decoded until then returned.
pub fn smooth_played(url: &str, kbps: u32, limit_s: u32) -> Result<SmoothPlayback, String> {
    smooth_played_with_audio(url, kbps, limit_s, 1)
}

/// [`smooth_played`] of a manifest with `audio_streams` audio streams (one per language), each
/// decoded to 32-bit float and hashed per AAC frame (1,024 samples of a mono stream: the MD5s
/// ffmpeg's `framemd5` gives with `-c:a pcm_f32le`).
pub fn smooth_played_with_audio(
    url: &str,
    kbps: u32,
    limit_s: u32,
    audio_streams: usize,
) -> Result<SmoothPlayback, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut pipeline = format!(
        "souphttpsrc location={url} ! typefind ! mssdemux name=d connection-speed={kbps} \
         d.video_00 ! queue ! qtdemux ! h264parse ! avdec_h264 ! checksumsink hash=md5 sync=false"
    );
    for i in 0..audio_streams {
        pipeline.push_str(&format!(
            " d.audio_{i:02} ! queue ! qtdemux ! aacparse ! avdec_aac ! \
             audio/x-raw,format=F32LE ! filesink location={}",
            dir.path().join(format!("audio_{i}.raw")).display()
        ));
    }
    let out = Command::new("timeout")
        .args(["-s", "KILL", &limit_s.to_string()])
        // Line-buffered: what was decoded before the stop is not lost in a buffer.
        .args(["stdbuf", "-oL", "gst-launch-1.0", "-q"])
        .args(pipeline.split_whitespace())
        .output()
        .map_err(|e| format!("cannot run gst-launch-1.0: {e}"))?;
    // Killed at the limit: timeout exits 128 + 9.
    let stopped = matches!(out.status.code(), Some(124 | 137) | None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && !stopped {
        return Err(format!("gst-launch-1.0 failed ({}): {stderr}", out.status));
    }
    if stderr.contains("ERROR") {
        return Err(format!("GStreamer reported an error: {stderr}"));
    }
    // The video sink prints "{timestamp} {md5}" per frame.
    let video = stdout
        .lines()
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            match (cols.next(), cols.next(), cols.next()) {
                (Some(_), Some(sum), None) if sum.len() == 32 => Some(sum.to_owned()),
                _ => None,
            }
        })
        .collect();
    let mut audio = Vec::with_capacity(audio_streams);
    for i in 0..audio_streams {
        use md5::Digest as _;
        let pcm = std::fs::read(dir.path().join(format!("audio_{i}.raw"))).unwrap_or_default();
        audio.push(
            pcm.chunks(1024 * 4)
                .map(|frame| hex::encode(md5::Md5::digest(frame)))
                .collect(),
        );
    }
    Ok(SmoothPlayback {
        video,
        audio,
        ended: !stopped,
    })
}

/// The framemd5 hashes of stream `map` (`0:v`, `0:a`) that ffmpeg decodes from `file` (an fMP4
/// initialization segment and its fragments, joined as a player appends them), decrypting
/// common encryption with `key` (hex).
pub fn piped_frames(file: &[u8], key: &str, map: &str) -> Result<Vec<String>, String> {
    let out = piped_ffmpeg(
        file,
        &[
            "-decryption_key",
            key,
            "-i",
            "pipe:0",
            "-map",
            map,
            "-f",
            "framemd5",
            "-",
        ],
    )?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_owned()))
        .collect())
}

/// ffmpeg run with `args` (quiet; `-i pipe:0` among them) reading `input` on its standard input,
/// its standard output captured.
pub fn piped_ffmpeg(input: &[u8], args: &[&str]) -> Result<std::process::Output, String> {
    use std::io::Write as _;
    let mut child = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "quiet"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ffmpeg (apt-get install ffmpeg): {e}"))?;
    let mut stdin = child.stdin.take().ok_or("ffmpeg has no stdin")?;
    let body = input.to_vec();
    let writer = std::thread::spawn(move || {
        // ffmpeg may stop reading early (an undecodable stream): a broken pipe is its answer.
        let _ = stdin.write_all(&body);
    });
    let out = child
        .wait_with_output()
        .map_err(|e| format!("ffmpeg: {e}"))?;
    let _ = writer.join();
    Ok(out)
}
