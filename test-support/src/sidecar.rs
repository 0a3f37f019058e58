//! Shared helpers for the sidecar's end-to-end tests: start the real `edgepack-store` binary on
//! loopback ports chosen at run time, drive the real Debian `ffmpeg` as the encoder, and talk raw
//! HTTP/1.1 where a client library would "fix" the request (dot segments, encodings).

// Test support: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const PASSWORD_1: &str = "pw-one";
pub const PASSWORD_2: &str = "pw-two";

/// A running sidecar; killed when dropped.
pub struct Sidecar {
    child: Option<Child>,
    pub ingest: SocketAddr,
    pub internal: SocketAddr,
    pub config: PathBuf,
    pub data: PathBuf,
    /// What it printed on standard output after its ready line (its access log).
    pub printed: Printed,
}

/// The sidecar's TOML for one channel `news`, ports chosen by the OS.
pub fn write_config(dir: &Path, extra_server: &str, extra_channel: &str) -> PathBuf {
    let data = dir.join("data");
    let text = format!(
        r#"[server]
ingest_listen = "127.0.0.1:0"
internal_listen = "127.0.0.1:0"
data_dir = "{}"
{extra_server}

[[channel]]
id = "news"
{extra_channel}
[[channel.input]]
username = "enc1"
password = "{PASSWORD_1}"
[[channel.input]]
username = "enc2"
password = "{PASSWORD_2}"
"#,
        data.display()
    );
    let path = dir.join("edgepack-store.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The `edgepack-store` binary: cargo's own for the sidecar's tests and benchmarks (cargo sets
/// `CARGO_BIN_EXE_edgepack-store` when it runs them); built on demand when these helpers are used
/// from the end-to-end tests in `tests/`.
pub fn store_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CARGO_BIN_EXE_edgepack-store") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("EDGEPACK_STORE_BIN") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args(["build", "-p", "edgepack-store"])
        .status()
        .unwrap();
    assert!(status.success(), "building edgepack-store failed");
    crate::artifacts::target_dir().join("debug/edgepack-store")
}

impl Sidecar {
    /// Starts the binary and waits for its "listening" line.
    pub fn start(config: &Path) -> Sidecar {
        Self::start_binary(&store_binary(), config)
    }

    /// [`Sidecar::start`] with this build of `edgepack-store` (e.g.
    /// [`crate::artifacts::optimized_store_tools`]).
    pub fn start_binary(binary: &Path, config: &Path) -> Sidecar {
        let mut child = Command::new(binary)
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "edgepack_store=debug")
            .stdout(Stdio::piped())
            // Set EDGEPACK_TEST_LOG=1 to see the sidecar's log.
            .stderr(if std::env::var_os("EDGEPACK_TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("start edgepack-store");
        let (line, printed) = ready_line_and_rest(&mut child);
        let addr = |key: &str| address_in(&line, key);
        let text = std::fs::read_to_string(config).unwrap();
        let data = text
            .lines()
            .find_map(|l| l.strip_prefix("data_dir = \""))
            .map(|d| PathBuf::from(d.trim_end_matches('"')))
            .unwrap();
        Sidecar {
            ingest: addr("ingest="),
            internal: addr("internal="),
            child: Some(child),
            config: config.to_owned(),
            data,
            printed,
        }
    }

    /// The sidecar's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops it with SIGTERM and waits.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if c.try_wait().unwrap().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `kill -9`: no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// `GET` on the internal API; (status, headers, body).
    pub fn get(&self, path: &str) -> Response {
        raw(
            self.internal,
            format!("GET {path} HTTP/1.1\r\nHost: store\r\nConnection: close\r\n\r\n").as_bytes(),
        )
    }

    pub fn get_ok(&self, path: &str) -> Vec<u8> {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r.body
    }

    pub fn status(&self) -> serde_json::Value {
        serde_json::from_slice(&self.get_ok("/store/v1/news/status")).unwrap()
    }

    pub fn ingest_url(&self, user: &str, pass: &str, input: u8) -> String {
        format!("http://{user}:{pass}@{}/in/v1/news/{input}", self.ingest)
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET path` on `addr`, one connection.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// `start=…&end=…` covering everything the store holds for the first rendition, ending now: a
/// past range, so endpoints answer a VOD playlist a player reads from its first segment to its
/// end (ffmpeg follows a live one forever).
pub fn whole_history_range(status: &serde_json::Value) -> String {
    let first = status["renditions"][0]["first_program_date_time"]
        .as_str()
        .expect("a first program date time");
    let start = chrono::DateTime::parse_from_rfc3339(first)
        .expect("RFC 3339")
        .timestamp();
    // `end` is in whole seconds: wait for the next one, so the range reaches past the newest
    // segment the store holds now (ending in the second now truncated to would leave it out).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    std::thread::sleep(std::time::Duration::from_nanos(
        1_000_000_000 - u64::from(now.subsec_nanos()),
    ));
    let end = now.as_secs() + 1;
    format!("start={start}&end={end}")
}

/// The one line a server of ours prints on stdout once it listens (`edgepack-store listening
/// ingest=… internal=…`, `edgepack-host listening http=… admin=…`).
pub fn ready_line(child: &mut Child) -> String {
    ready_line_and_rest(child).0
}

/// Lines a child printed on standard output, collected by a thread of their own (a pipe that
/// nobody reads fills up and stops the child; one closed breaks its writes). The first 100,000
/// are kept.
pub type Printed = Arc<Mutex<Vec<String>>>;

/// [`ready_line`], and the lines printed after it as they come.
pub fn ready_line_and_rest(child: &mut Child) -> (String, Printed) {
    let mut reader = BufReader::new(child.stdout.take().expect("stdout piped"));
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let printed: Printed = Arc::default();
    let sink = printed.clone();
    std::thread::spawn(move || {
        for l in reader.lines() {
            let Ok(l) = l else { break };
            let mut kept = sink.lock().unwrap();
            if kept.len() < 100_000 {
                kept.push(l);
            }
        }
    });
    (line, printed)
}

/// The address after `key` (`ingest=`, `http=`, …) in a [`ready_line`].
pub fn address_in(line: &str, key: &str) -> SocketAddr {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
        .parse()
        .unwrap()
}

/// Sends raw bytes (the request must say `Connection: close`) and parses the answer.
pub fn raw(addr: SocketAddr, request: &[u8]) -> Response {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    parse_response(&buf)
        .unwrap_or_else(|| panic!("no whole response in {:?}", String::from_utf8_lossy(&buf)))
}

/// [`raw`] for a server that may be gone: `None` when it cannot be reached or its answer is
/// cut short.
pub fn try_raw(addr: SocketAddr, request: &[u8]) -> Option<Response> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    s.write_all(request).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    parse_response(&buf)
}

fn parse_response(buf: &[u8]) -> Option<Response> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut body = buf[end + 4..].to_vec();
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..nl]).ok()?.trim(), 16).ok()?;
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(nl + 2..nl + 2 + size)?);
            rest = rest.get(nl + 2 + size + 2..)?;
        }
        body = out;
    } else if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok())
        && body.len() < len
    {
        return None;
    }
    Some(Response {
        status,
        headers,
        body,
    })
}

/// Basic credentials header value.
pub fn basic(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// PUT with Basic auth and a Content-Length body.
pub fn put(addr: SocketAddr, path: &str, auth: Option<&str>, body: &[u8]) -> Response {
    let bytes = put_request(path, auth, body);
    raw(addr, &bytes)
}

/// [`put`] to a server that may be gone.
pub fn try_put(addr: SocketAddr, path: &str, auth: Option<&str>, body: &[u8]) -> Option<Response> {
    try_raw(addr, &put_request(path, auth, body))
}

fn put_request(path: &str, auth: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "PUT {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Every file under `dir` with its bytes, sorted, for before/after comparisons.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(listing) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in listing {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// `len` bytes the sidecar takes as an MPEG-TS segment: a sync byte (0x47) at the start of
/// every 188-byte packet, `fill` everywhere else.
pub fn ts_bytes(fill: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| if i % 188 == 0 { 0x47 } else { fill })
        .collect()
}

/// The segment URIs of a media playlist, in order.
pub fn segment_uris(playlist: &str) -> Vec<String> {
    playlist
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The value of a `#TAG:value` line.
pub fn tag_value<'a>(playlist: &'a str, tag: &str) -> Option<&'a str> {
    playlist
        .lines()
        .find_map(|l| l.strip_prefix(tag).and_then(|r| r.strip_prefix(':')))
}

/// An ffmpeg encoder pushing a live synthetic stream (testsrc2 + sine, H.264/AAC, 2 s segments).
pub struct Encoder {
    child: Child,
    /// Input files ffmpeg reads while it runs (the subtitle cues).
    _inputs: Option<tempfile::TempDir>,
}

/// How the encoder authenticates.
pub enum Auth<'a> {
    /// Credentials in the URL: ffmpeg answers the Digest challenge.
    DigestInUrl { user: &'a str, pass: &'a str },
    /// `-headers "Authorization: Basic …"`.
    BasicHeader { user: &'a str, pass: &'a str },
}

/// What to push.
pub struct EncoderSpec<'a> {
    pub ingest: SocketAddr,
    pub input: u8,
    pub auth: Auth<'a>,
    pub seconds: u32,
    /// Two renditions with a multivariant playlist, else one.
    pub two_renditions: bool,
    /// Also write the very same encode to this local directory (no upload), to compare bytes.
    pub local_copy: Option<&'a Path>,
    pub start_number: u64,
    /// fMP4 segments (`-hls_segment_type fmp4`: EXT-X-MAP + `.m4s`) instead of MPEG-TS.
    pub fmp4: bool,
    /// The encoder encrypts its segments itself (AES-128, `-hls_key_info_file`).
    pub key_info: Option<&'a Path>,
    /// The test tone's frequency (440 Hz): another one makes other bytes from the same picture.
    pub tone_hz: u32,
}

impl EncoderSpec<'_> {
    /// One rendition, numbered from 0, pushed to `input` with that input's Digest credentials in
    /// the URL; override fields with `..EncoderSpec::digest(…)`.
    pub fn digest(ingest: SocketAddr, input: u8, seconds: u32) -> Self {
        let (user, pass) = if input == 1 {
            ("enc1", PASSWORD_1)
        } else {
            ("enc2", PASSWORD_2)
        };
        EncoderSpec {
            ingest,
            input,
            auth: Auth::DigestInUrl { user, pass },
            seconds,
            two_renditions: false,
            local_copy: None,
            start_number: 0,
            fmp4: false,
            key_info: None,
            tone_hz: 440,
        }
    }
}

/// The test encoder's codecs: x264 (one thread, 2 s GOPs at 25 fps, no scene cuts) and AAC.
const LIVE_CODECS: [&str; 18] = [
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-threads",
    "1",
    "-g",
    "50",
    "-keyint_min",
    "50",
    "-sc_threshold",
    "0",
    "-b:v",
    "400k",
    "-c:a",
    "aac",
    "-b:a",
    "64k",
];

/// ffmpeg's output options to push `seconds` of a multivariant live channel to input 1
/// (Digest), `maps` (and stream options) first, then [`LIVE_CODECS`], 2 s segments dated, a
/// 3-segment window, `var_stream_map`, `master.m3u8`.
fn live_push(
    ingest: SocketAddr,
    seconds: u32,
    maps: &[&str],
    var_stream_map: &str,
    fmp4: bool,
) -> Vec<String> {
    let base = format!("http://enc1:{PASSWORD_1}@{ingest}/in/v1/news/1");
    let seconds = seconds.to_string();
    let mut a: Vec<String> = maps.iter().map(|x| x.to_string()).collect();
    a.extend(LIVE_CODECS.map(String::from));
    a.extend(
        [
            "-f",
            "hls",
            "-hls_time",
            "2",
            "-t",
            &seconds,
            "-hls_list_size",
            "3",
            "-hls_flags",
            "program_date_time+delete_segments",
            "-method",
            "PUT",
            "-var_stream_map",
            var_stream_map,
            "-master_pl_name",
            "master.m3u8",
            "-hls_segment_filename",
        ]
        .map(String::from),
    );
    if fmp4 {
        a.push(format!("{base}/stream_%v_%d.m4s"));
        a.extend(["-hls_segment_type", "fmp4"].map(String::from));
    } else {
        a.push(format!("{base}/stream_%v_%d.ts"));
    }
    a.push(format!("{base}/stream_%v.m3u8"));
    a
}

fn encode_args(spec: &EncoderSpec<'_>, vlabels: (&str, &str), alabel: &str) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |s: &[&str]| a.extend(s.iter().map(|x| x.to_string()));
    push(&["-map", &format!("[{}]", vlabels.0), "-map", alabel]);
    if spec.two_renditions {
        push(&["-map", &format!("[{}]", vlabels.1), "-map", alabel]);
    }
    push(&LIVE_CODECS);
    push(&["-f", "hls", "-hls_time", "2"]);
    push(&["-start_number", &spec.start_number.to_string()]);
    if spec.fmp4 {
        push(&["-hls_segment_type", "fmp4"]);
    }
    if let Some(info) = spec.key_info {
        push(&["-hls_key_info_file", &info.display().to_string()]);
    }
    push(&["-t", &spec.seconds.to_string()]);
    if spec.two_renditions {
        push(&[
            "-var_stream_map",
            "v:0,a:0 v:1,a:1",
            "-master_pl_name",
            "master.m3u8",
        ]);
    }
    a
}

/// ffmpeg's quiet options and the test inputs every encoder of the tests uses: a 320x240 25 fps
/// test picture and a 440 Hz tone, read at their own pace when `realtime` (a live encoder), else
/// as fast as ffmpeg encodes.
pub fn test_pattern_inputs(realtime: bool) -> Vec<String> {
    test_pattern_inputs_with_tone(realtime, 440)
}

/// [`test_pattern_inputs`] with the tone at `tone_hz`.
pub fn test_pattern_inputs_with_tone(realtime: bool, tone_hz: u32) -> Vec<String> {
    let mut args = quiet_ffmpeg();
    args.extend(lavfi_input(realtime, "testsrc2=size=320x240:rate=25"));
    args.extend(tone_input(realtime, tone_hz));
    args
}

/// ffmpeg's options before any input: errors only, no prompt, overwrite.
fn quiet_ffmpeg() -> Vec<String> {
    ["-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
        .map(String::from)
        .to_vec()
}

/// A lavfi source as an input, read at its own pace when `realtime`.
fn lavfi_input(realtime: bool, source: &str) -> Vec<String> {
    let mut args = Vec::with_capacity(5);
    if realtime {
        args.push("-re".to_owned());
    }
    args.extend(["-f", "lavfi", "-i", source].map(String::from));
    args
}

/// A 48 kHz sine tone at `hz` as an input.
fn tone_input(realtime: bool, hz: u32) -> Vec<String> {
    lavfi_input(realtime, &format!("sine=frequency={hz}:sample_rate=48000"))
}

impl Encoder {
    /// Starts ffmpeg pushing `spec`'s stream (and writing the local copy). Longer than most: it
    /// is one ffmpeg command line, built in the order ffmpeg reads its options.
    pub fn start(spec: EncoderSpec<'_>) -> Encoder {
        let mut args = test_pattern_inputs_with_tone(true, spec.tone_hz);
        // Each output needs its own filter outputs; the encodes are identical (x264 and ffmpeg's
        // AAC encoder are deterministic), so the local copy is byte-for-byte what was uploaded.
        args.push("-filter_complex".into());
        let mut labels = vec!["a1", "b1", "a2", "b2"];
        if !spec.two_renditions {
            labels.retain(|l| l.starts_with('a'));
        }
        if spec.local_copy.is_none() {
            labels.retain(|l| l.ends_with('1'));
        }
        let mut graph = format!("[0:v]split={}", labels.len());
        for l in &labels {
            graph.push_str(&format!("[s{l}]"));
        }
        for l in &labels {
            let scale = if l.starts_with('b') {
                "scale=160:120"
            } else {
                "null"
            };
            graph.push_str(&format!(";[s{l}]{scale}[{l}]"));
        }
        args.push(graph);
        let (url_creds, header_creds) = match spec.auth {
            Auth::DigestInUrl { user, pass } => (Some((user, pass)), None),
            Auth::BasicHeader { user, pass } => (None, Some((user, pass))),
        };
        args.extend(encode_args(&spec, ("a1", "b1"), "1:a"));
        args.extend(
            [
                "-hls_list_size",
                "3",
                "-hls_flags",
                "program_date_time+delete_segments",
                "-method",
                "PUT",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        if let Some((u, p)) = header_creds {
            args.push("-headers".into());
            args.push(format!("Authorization: {}\r\n", basic(u, p)));
        }
        let base = match url_creds {
            Some((u, p)) => format!("http://{u}:{p}@{}/in/v1/news/{}", spec.ingest, spec.input),
            None => format!("http://{}/in/v1/news/{}", spec.ingest, spec.input),
        };
        let ext = if spec.fmp4 { "m4s" } else { "ts" };
        let (seg, pl) = if spec.two_renditions {
            (format!("stream_%v_%d.{ext}"), "stream_%v.m3u8")
        } else {
            (format!("stream_0_%d.{ext}"), "stream_0.m3u8")
        };
        args.push("-hls_segment_filename".into());
        args.push(format!("{base}/{seg}"));
        args.push(format!("{base}/{pl}"));
        if let Some(dir) = spec.local_copy {
            std::fs::create_dir_all(dir).unwrap();
            args.extend(encode_args(&spec, ("a2", "b2"), "1:a"));
            args.extend(["-hls_list_size", "0"].iter().map(|s| s.to_string()));
            args.push("-hls_segment_filename".into());
            args.push(dir.join(&seg).display().to_string());
            args.push(dir.join(pl).display().to_string());
        }
        Encoder::spawn(&args)
    }

    /// Starts ffmpeg pushing a channel with alternative audio to input 1 (Digest): one video
    /// rendition (`stream_video`) and two AAC renditions in one audio group — English, the
    /// default, a 440 Hz tone (`stream_audio_en`), and French, 880 Hz (`stream_audio_fr`) — as
    /// ffmpeg's HLS muxer writes them with `agroup` in `-var_stream_map`: `EXT-X-MEDIA` entries
    /// and a variant whose `AUDIO` names the group.
    pub fn start_languages(ingest: SocketAddr, seconds: u32) -> Encoder {
        Self::start_languages_as(ingest, seconds, false)
    }

    /// [`Encoder::start_languages`], as MPEG-TS or (`fmp4`) fMP4 segments (`-hls_segment_type
    /// fmp4`: each rendition's `EXT-X-MAP` initialization segment and `.m4s` segments).
    pub fn start_languages_as(ingest: SocketAddr, seconds: u32, fmp4: bool) -> Encoder {
        let mut args = test_pattern_inputs_with_tone(true, 440);
        args.extend(tone_input(true, 880));
        args.extend(live_push(
            ingest,
            seconds,
            &["-map", "0:v", "-map", "1:a", "-map", "2:a"],
            "v:0,agroup:aud,name:video a:0,agroup:aud,language:eng,name:audio_en,default:yes a:1,agroup:aud,language:fra,name:audio_fr",
            fmp4,
        ));
        Encoder::spawn(&args)
    }

    /// Starts ffmpeg pushing a channel with English subtitles to input 1 (Digest): one variant
    /// (`stream_video`, video and muxed audio) whose subtitle group holds a WebVTT rendition, as
    /// ffmpeg's HLS muxer writes them with `sgroup` in `-var_stream_map`: `stream_video_vtt.m3u8`
    /// and `stream_video{n}.vtt` segments numbered as the video's, undated. The cue of second `k`
    /// of the encoder's output timeline reads `Cue k` and lasts from `k.100` to `k.900` s (ffmpeg
    /// writes them 22 ms later, where its video starts). `-muxdelay 0` puts MPEG-TS time 0 at
    /// the output's start, so cue time 0 is MPEG-TS time 0, as RFC 8216 implies for WebVTT
    /// without `X-TIMESTAMP-MAP` (ffmpeg writes none; its default mux delay would put the video
    /// 1.4 s later than the cues).
    pub fn start_subtitles(ingest: SocketAddr, seconds: u32) -> Encoder {
        Self::start_subtitles_as(ingest, seconds, false)
    }

    /// [`Encoder::start_subtitles`], the video as MPEG-TS or (`fmp4`) fMP4 segments (the
    /// WebVTT segments are the same).
    pub fn start_subtitles_as(ingest: SocketAddr, seconds: u32, fmp4: bool) -> Encoder {
        let inputs = tempfile::tempdir().unwrap();
        let srt = inputs.path().join("cues.srt");
        let cues: String = (0..seconds + 2)
            .map(|k| {
                let t = |ms: u32| {
                    let s = k * 1000 + ms;
                    format!(
                        "{:02}:{:02}:{:02},{:03}",
                        s / 3_600_000,
                        s / 60_000 % 60,
                        s / 1000 % 60,
                        s % 1000
                    )
                };
                format!("{}\n{} --> {}\nCue {k}\n\n", k + 1, t(100), t(900))
            })
            .collect();
        std::fs::write(&srt, cues).unwrap();
        let mut args = test_pattern_inputs_with_tone(true, 440);
        args.extend(["-i".to_owned(), srt.display().to_string()]);
        args.extend(live_push(
            ingest,
            seconds,
            &[
                "-map",
                "0:v",
                "-map",
                "1:a",
                "-map",
                "2:s",
                "-c:s",
                "webvtt",
                "-muxdelay",
                "0",
            ],
            "v:0,a:0,s:0,sgroup:subs,language:eng,name:video",
            fmp4,
        ));
        let mut encoder = Encoder::spawn(&args);
        encoder._inputs = Some(inputs);
        encoder
    }

    /// Starts ffmpeg pushing one variant (video and a 440 Hz tone, MPEG-TS) whose H.264
    /// carries CEA-608 captions on channel 1 ([`crate::cea608`]): `Cue k` shown from 0.28 s after
    /// second `k` of the stream to 0.8 s after it. A captioned source is made first (x264, no
    /// B-frames, an access unit delimiter per picture, the captions added), then encoded live
    /// as a broadcast encoder does, its captions passed through.
    pub fn start_captions(ingest: SocketAddr, seconds: u32) -> Encoder {
        Self::start_captions_as(ingest, seconds, false)
    }

    /// [`Encoder::start_captions`], as MPEG-TS or (`fmp4`) fMP4 segments (the captions in the
    /// H.264 samples' SEI either way).
    pub fn start_captions_as(ingest: SocketAddr, seconds: u32, fmp4: bool) -> Encoder {
        let inputs = tempfile::tempdir().unwrap();
        let raw = inputs.path().join("video.h264");
        let frames = (seconds + 2) * 25;
        let status = Command::new("ffmpeg")
            .args(test_pattern_inputs(false).iter().take(9))
            .args([
                "-frames:v",
                &frames.to_string(),
                "-map",
                "0:v",
                "-c:v",
                "libx264",
            ])
            .args([
                "-preset",
                "ultrafast",
                "-bf",
                "0",
                "-g",
                "50",
                "-keyint_min",
                "50",
            ])
            .args([
                "-sc_threshold",
                "0",
                "-b:v",
                "400k",
                "-x264-params",
                "aud=1",
                "-f",
                "h264",
            ])
            .arg(&raw)
            .status()
            .expect("ffmpeg must be installed (apt-get install ffmpeg)");
        assert!(
            status.success(),
            "ffmpeg could not encode the captioned video"
        );
        let cues: Vec<(u32, u32, String)> = (0..seconds + 2)
            .map(|k| (k * 25, k * 25 + 20, format!("Cue {k}")))
            .collect();
        let captioned = inputs.path().join("captioned.h264");
        std::fs::write(
            &captioned,
            crate::cea608::with_captions(&std::fs::read(&raw).unwrap(), &cues),
        )
        .unwrap();
        // The live encoder reads that source and passes its captions through (x264 writes the
        // decoder's A/53 caption data as SEI again: ffmpeg's `-a53cc`, on by default).
        let mut args = quiet_ffmpeg();
        args.extend(["-re", "-r", "25", "-i"].map(String::from));
        args.push(captioned.display().to_string());
        args.extend(tone_input(true, 440));
        args.extend(live_push(
            ingest,
            seconds,
            &["-map", "0:v", "-map", "1:a", "-a53cc", "1"],
            "v:0,a:0,name:video",
            fmp4,
        ));
        let mut encoder = Encoder::spawn(&args);
        encoder._inputs = Some(inputs);
        encoder
    }

    fn spawn(args: &[String]) -> Encoder {
        let child = Command::new("ffmpeg")
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .expect("ffmpeg must be installed (apt-get install ffmpeg)");
        Encoder {
            child,
            _inputs: None,
        }
    }

    /// Waits for ffmpeg to finish (bounded).
    pub fn wait(mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "ffmpeg failed: {status}");
                // ffmpeg closes its last upload without waiting for the answer: give the
                // sidecar a moment to finish indexing what it was sent.
                std::thread::sleep(Duration::from_millis(300));
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("ffmpeg did not finish within {limit:?}");
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `f` until it returns `Some`, or panics after `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
