//! Issue #16 §2: a hostile store and hostile viewers for the real `.wasm` in the test host.
//!
//! A tiny fake store (raw HTTP/1.1 on loopback, one thread per connection) answers each store
//! request the way the current case says: any status from 2xx to 5xx, wrong or missing content
//! types, HTML error pages, garbage bytes, truncated playlists, bodies cut by a close or a reset,
//! stalls past the filter's store timeout, answers over the 32 MiB call limit, bytes that are not
//! HTTP at all. Viewers send generated methods, paths (traversal, percent-encoding tricks, NUL,
//! random bytes), 10k-character queries and huge headers. Every answer must be a specific status
//! with a human-readable reason, no VM may trap, and the VM must serve the next good request.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edgepack_host::{HostOptions, RunningHost, start};
use edgepack_test_support::artifacts;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const STORE_MASTER: &str = include_str!("../../filter/tests/fixtures/store_multivariant.m3u8");
const STORE_MEDIA: &str = include_str!("../../filter/tests/fixtures/store_media_stream_0.m3u8");
/// 2026-11-25T14:35:31.666Z: the first segment of the recorded store playlist.
const T0: u64 = 1_795_617_331_666;
/// The filter's store timeout here: short, so that stalls cost little.
const STORE_TIMEOUT_MS: u64 = 300;
/// The host's limit on a `dispatch_http_call` answer.
const CALL_LIMIT: usize = 32 * 1024 * 1024;

/// No playlist or segment cache: every viewer request reaches the (hostile) store.
fn config() -> Vec<u8> {
    format!(
        r#"{{ "store": {{ "cluster": "edgepack_store", "timeout_ms": {STORE_TIMEOUT_MS}, "playlist_cache_ms": 0 }},
  "cache": {{ "megabytes": 0 }},
  "channels": {{ "news": {{ "endpoints": {{
    "hls": {{ "format": "hls", "manifest_window_seconds": 60 }},
    "cmaf": {{ "format": "cmaf", "manifest_window_seconds": 60 }},
    "secure": {{ "format": "hls", "encryption": {{ "method": "aes-128", "key_rotation_interval_seconds": 60,
      "key": {{ "derived": {{ "secret": "0123456789abcdef0123" }} }},
      "key_token": {{ "secret": "tok-0123456789abcdef" }} }} }},
    "dash": {{ "format": "dash", "manifest_window_seconds": 60 }},
    "cenc": {{ "format": "dash", "encryption": {{ "method": "cenc", "key_rotation_interval_seconds": 60,
      "key": {{ "derived": {{ "secret": "0123456789abcdef0123" }} }},
      "key_token": {{ "secret": "tok-0123456789abcdef" }} }} }},
    "mss": {{ "format": "mss", "manifest_window_seconds": 60 }},
    "mss-cenc": {{ "format": "mss", "encryption": {{ "method": "cenc", "key_rotation_interval_seconds": 0,
      "key": {{ "derived": {{ "secret": "0123456789abcdef0123" }} }},
      "key_token": {{ "secret": "tok-0123456789abcdef" }} }} }},
    "guarded": {{ "format": "hls",
      "access": {{ "cdn_identifier": {{ "secrets": ["current", "previous"] }} }} }} }} }} }} }}"#
    )
    .into_bytes()
}

// ---------------------------------------------------------------------------------------------
// The fake store

/// The body of a store answer.
#[derive(Debug, Clone)]
enum Body {
    /// What the real store would answer for that path (a playlist; 404 text for segments).
    Valid,
    /// The valid answer cut after this fraction (per mille) of its bytes.
    Truncated(u16),
    Garbage(Vec<u8>),
    Html,
    Empty,
    /// This many bytes of filler (still under the call limit).
    Huge(usize),
}

/// How the body is framed on the wire.
#[derive(Debug, Clone, Copy)]
enum Framing {
    ContentLength,
    Chunked,
    /// No length: the body ends when the connection closes.
    UntilClose,
}

/// What the store does with one request.
#[derive(Debug, Clone)]
enum Answer {
    /// The good store: fixtures by path, 404 for anything else; keep-alive.
    Good,
    Respond {
        status: u16,
        content_type: Option<String>,
        body: Body,
        framing: Framing,
    },
    /// Headers promise the whole body; a part is sent, then close (`reset`: an RST).
    CutMidBody {
        status: u16,
        per_mille: u16,
        reset: bool,
    },
    /// The request is read, then the connection closes (`reset`: an RST) with no answer.
    Hangup { reset: bool },
    /// Nothing (or only the headers) until well past the filter's store timeout.
    Stall { after_headers: bool },
    /// Bytes that are not an HTTP response.
    NotHttp(Vec<u8>),
    /// More than the 32 MiB call limit.
    Oversized { chunked: bool },
}

impl Answer {
    /// The statuses the viewer may get for this store answer.
    fn expected(&self) -> &'static [u16] {
        match self {
            Answer::Good => &[200],
            // A 200 the filter cannot use is the store's fault (502) or a form this version
            // cannot repackage (501); a usable one is served (200).
            Answer::Respond { status: 200, .. } => &[200, 501, 502],
            Answer::Respond { status: 404, .. } => &[404],
            Answer::Respond { status: 504, .. } => &[504],
            Answer::Respond { .. } => &[502],
            Answer::CutMidBody { .. } | Answer::Hangup { .. } | Answer::NotHttp(_) => &[502],
            Answer::Oversized { .. } => &[502],
            Answer::Stall { .. } => &[504],
        }
    }
}

/// A fake store on loopback whose answers the test chooses.
struct FakeStore {
    addr: SocketAddr,
    answer: Arc<Mutex<Answer>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeStore {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = Arc::new(Mutex::new(Answer::Good));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (a, r) = (answer.clone(), requests.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (a, r) = (a.clone(), r.clone());
                std::thread::spawn(move || serve_connection(conn, &a, &r));
            }
        });
        Self {
            addr,
            answer,
            requests,
        }
    }

    fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn take_requests(&self) -> Vec<String> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }
}

/// Reads a request head; its path, or None when the connection ended.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<String> {
    let mut first = String::new();
    if reader.read_line(&mut first).ok()? == 0 {
        return None;
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
    }
    first.split_whitespace().nth(1).map(str::to_owned)
}

/// The good store's answer for a path: (status, content type, body).
fn valid(path: &str) -> (u16, &'static str, Vec<u8>) {
    let p = path.split('?').next().unwrap_or_default();
    if p == "/store/v1/news/index.m3u8" {
        (200, "application/vnd.apple.mpegurl", STORE_MASTER.into())
    } else if p.starts_with("/store/v1/news/stream_") && p.ends_with("/index.m3u8") {
        (200, "application/vnd.apple.mpegurl", STORE_MEDIA.into())
    } else {
        (404, "text/plain", format!("no such object: {p}\n").into())
    }
}

fn head(status: u16, content_type: Option<&str>, framing: &str, close: bool) -> String {
    let mut h = format!("HTTP/1.1 {status} Whatever\r\n");
    if let Some(ct) = content_type {
        h.push_str(&format!("content-type: {ct}\r\n"));
    }
    h.push_str(framing);
    if close {
        h.push_str("connection: close\r\n");
    }
    h.push_str("\r\n");
    h
}

/// Closes with an RST instead of a FIN.
fn reset(conn: TcpStream) {
    let _ = socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO));
    drop(conn);
}

fn serve_connection(conn: TcpStream, answer: &Mutex<Answer>, requests: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    while let Some(path) = read_request(&mut reader) {
        requests.lock().unwrap().push(path.clone());
        let a = answer.lock().unwrap().clone();
        match a {
            Answer::Good => {
                let (status, ct, body) = valid(&path);
                let h = head(
                    status,
                    Some(ct),
                    &format!("content-length: {}\r\n", body.len()),
                    false,
                );
                if conn.write_all(h.as_bytes()).is_err() || conn.write_all(&body).is_err() {
                    return;
                }
                continue; // keep-alive
            }
            Answer::Respond {
                status,
                content_type,
                body,
                framing,
            } => {
                let body = match body {
                    Body::Valid => valid(&path).2,
                    Body::Truncated(pm) => {
                        let mut b = valid(&path).2;
                        b.truncate(b.len() * usize::from(pm) / 1000);
                        b
                    }
                    Body::Garbage(g) => g,
                    Body::Html => format!(
                        "<!DOCTYPE html><html><head><title>{status} Error</title></head>\
                         <body><h1>{status}</h1><p>Something went wrong at the origin.</p>\
                         <script>alert(1)</script></body></html>"
                    )
                    .into_bytes(),
                    Body::Empty => Vec::new(),
                    Body::Huge(n) => vec![b'x'; n],
                };
                let ct = content_type.as_deref();
                let _ = match framing {
                    Framing::ContentLength => {
                        let h = head(
                            status,
                            ct,
                            &format!("content-length: {}\r\n", body.len()),
                            true,
                        );
                        conn.write_all(h.as_bytes())
                            .and_then(|()| conn.write_all(&body))
                    }
                    Framing::Chunked => {
                        let h = head(status, ct, "transfer-encoding: chunked\r\n", true);
                        let mut out = h.into_bytes();
                        for c in body.chunks(7_000) {
                            out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                            out.extend_from_slice(c);
                            out.extend_from_slice(b"\r\n");
                        }
                        out.extend_from_slice(b"0\r\n\r\n");
                        conn.write_all(&out)
                    }
                    Framing::UntilClose => {
                        let h = head(status, ct, "", true);
                        conn.write_all(h.as_bytes())
                            .and_then(|()| conn.write_all(&body))
                    }
                };
                let _ = conn.shutdown(Shutdown::Write);
                drain(reader);
                return;
            }
            Answer::CutMidBody {
                status,
                per_mille,
                reset: rst,
            } => {
                let (_, ct, body) = valid(&path);
                let body = if body.len() < 64 {
                    STORE_MEDIA.as_bytes().to_vec()
                } else {
                    body
                };
                let cut = (body.len() * usize::from(per_mille) / 1000).min(body.len() - 1);
                let h = head(
                    status,
                    Some(ct),
                    &format!("content-length: {}\r\n", body.len()),
                    true,
                );
                let _ = conn
                    .write_all(h.as_bytes())
                    .and_then(|()| conn.write_all(&body[..cut]));
                let _ = conn.flush();
                std::thread::sleep(Duration::from_millis(20));
                if rst {
                    reset(conn);
                } else {
                    let _ = conn.shutdown(Shutdown::Both);
                }
                return;
            }
            Answer::Hangup { reset: rst } => {
                if rst {
                    reset(conn);
                } else {
                    let _ = conn.shutdown(Shutdown::Both);
                }
                return;
            }
            Answer::Stall { after_headers } => {
                if after_headers {
                    let h = head(200, Some("text/plain"), "content-length: 100000\r\n", true);
                    let _ = conn.write_all(h.as_bytes());
                    let _ = conn.write_all(b"#EXTM3U\n");
                }
                std::thread::sleep(Duration::from_millis(STORE_TIMEOUT_MS * 3));
                return;
            }
            Answer::NotHttp(bytes) => {
                let _ = conn.write_all(&bytes);
                let _ = conn.shutdown(Shutdown::Write);
                drain(reader);
                return;
            }
            Answer::Oversized { chunked } => {
                let total = CALL_LIMIT + 1024 * 1024;
                let framing = if chunked {
                    "transfer-encoding: chunked\r\n".to_owned()
                } else {
                    format!("content-length: {total}\r\n")
                };
                let h = head(200, Some("video/mp2t"), &framing, true);
                if conn.write_all(h.as_bytes()).is_err() {
                    return;
                }
                let block = vec![0x47u8; 256 * 1024];
                let mut sent = 0;
                while sent < total {
                    let r = if chunked {
                        conn.write_all(format!("{:x}\r\n", block.len()).as_bytes())
                            .and_then(|()| conn.write_all(&block))
                            .and_then(|()| conn.write_all(b"\r\n"))
                    } else {
                        conn.write_all(&block)
                    };
                    if r.is_err() {
                        // The host gave up at its limit: what it should do.
                        return;
                    }
                    sent += block.len();
                }
                if chunked {
                    let _ = conn.write_all(b"0\r\n\r\n");
                }
                return;
            }
        }
    }
}

/// Waits (briefly) for the peer to close, so that a FIN is not turned into an RST by unread input.
fn drain(mut reader: BufReader<TcpStream>) {
    let _ = reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 4096];
    while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
}

// ---------------------------------------------------------------------------------------------
// The viewer side: a raw HTTP/1.1 client

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends raw request bytes and reads the answer (the request says `connection: close`, or the
/// server closes). None when no HTTP answer came.
fn exchange(addr: SocketAddr, request: &[u8]) -> Option<Reply> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request).ok()?;
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Option<Reply> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if let Some(n) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(n);
    }
    Some(Reply {
        status,
        headers,
        body,
    })
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    let req = format!("GET {path} HTTP/1.1\r\nhost: edge\r\nconnection: close\r\n\r\n");
    exchange(addr, req.as_bytes()).unwrap_or_else(|| panic!("GET {path}: no answer"))
}

/// An error answer must say why, in words: text/plain UTF-8, not empty, no control characters.
fn check_reason(what: &str, r: &Reply) -> Result<(), TestCaseError> {
    let Ok(text) = std::str::from_utf8(&r.body) else {
        return Err(TestCaseError::fail(format!(
            "{what}: {} with a body that is not UTF-8: {:?}",
            r.status,
            r.text()
        )));
    };
    prop_assert!(
        !text.trim().is_empty(),
        "{}: {} without a reason",
        what,
        r.status
    );
    prop_assert!(
        !text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t'),
        "{}: {} with control characters in its reason: {:?}",
        what,
        r.status,
        text
    );
    prop_assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{}: {} answered as {:?}, not text/plain",
        what,
        r.status,
        r.header("content-type")
    );
    Ok(())
}

fn assert_reason(what: &str, r: &Reply) {
    if let Err(e) = check_reason(what, r) {
        panic!("{e}");
    }
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 64,
        ..Config::default()
    })
}

fn host(store: &FakeStore) -> RunningHost {
    let mut o = HostOptions::new(artifacts::filter_wasm().unwrap(), config());
    o.clusters = vec![("edgepack_store".into(), store.addr)];
    // One worker: the VM that met the hostile answer is the one that must serve the next request.
    o.workers = 1;
    start(o).unwrap()
}

/// The VM still serves: a good store answer gives a good playlist.
/// The end of a generated run: its first failure (proptest's shrunk case) fails the test, the
/// time it took is printed, and no VM may have trapped.
fn conclude<E: std::fmt::Display>(
    result: Result<(), E>,
    h: &RunningHost,
    timed: Option<(&str, Instant)>,
) {
    if let Err(e) = result {
        panic!("{e}");
    }
    if let Some((what, started)) = timed {
        eprintln!("{what} in {:.1} s", started.elapsed().as_secs_f64());
    }
    assert_eq!(h.traps(), 0);
}

fn assert_still_serving(h: &RunningHost, store: &FakeStore, after: &str) {
    store.set(Answer::Good);
    let r = get(h.addr, "/out/v1/news/hls/index.m3u8");
    assert_eq!(
        r.status,
        200,
        "after {after}: the VM no longer serves: {}",
        r.text()
    );
    assert!(
        r.text().starts_with("#EXTM3U"),
        "after {after}: {}",
        r.text()
    );
    assert_eq!(h.traps(), 0, "after {after}: a trap");
}

// ---------------------------------------------------------------------------------------------
// Generated store answers

/// The viewer requests that reach the store, one per kind of job.
fn viewer_paths() -> Vec<String> {
    let t = T0 * 90; // DASH $Time$: 90 kHz ticks since the epoch
    vec![
        "/out/v1/news/hls/index.m3u8".into(),
        "/out/v1/news/hls/stream_0/index.m3u8".into(),
        "/out/v1/news/hls/stream_0/3.ts".into(),
        "/out/v1/news/secure/stream_0/3.ts".into(),
        "/out/v1/news/cmaf/stream_0/index.m3u8".into(),
        "/out/v1/news/cmaf/stream_0/3.mp4".into(),
        "/out/v1/news/cmaf/stream_0/init-ts3.mp4".into(),
        "/out/v1/news/dash/index.mpd".into(),
        format!("/out/v1/news/dash/stream_0/v{t}.mp4"),
        format!("/out/v1/news/cenc/stream_0/a{t}.mp4"),
        format!("/out/v1/news/cenc/stream_0/init-v{t}.mp4"),
        "/out/v1/news/mss/Manifest".into(),
        // Smooth Streaming times: 10 MHz ticks since 2020-01-01.
        format!(
            "/out/v1/news/mss/QualityLevels(730400)/Fragments(video={})",
            (T0 - 1_577_836_800_000) * 10_000
        ),
        format!(
            "/out/v1/news/mss-cenc/QualityLevels(128000)/Fragments(audio={})",
            (T0 - 1_577_836_800_000) * 10_000
        ),
    ]
}

fn status_any() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(200u16),
        Just(404u16),
        Just(504u16),
        200u16..=299,
        300u16..=399,
        400u16..=499,
        500u16..=599,
        prop::sample::select(vec![
            201u16, 204, 206, 301, 302, 304, 307, 308, 400, 401, 403, 405, 408, 410, 413, 416, 429,
            451, 500, 502, 503, 504, 507, 599
        ]),
    ]
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("application/vnd.apple.mpegurl".to_owned())),
        Just(Some("video/mp2t".to_owned())),
        Just(Some("text/html; charset=utf-8".to_owned())),
        Just(Some("application/json".to_owned())),
        Just(Some("image/png".to_owned())),
        "[a-z]{1,8}/[a-z0-9.+-]{1,16}".prop_map(Some),
    ]
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        2 => Just(Body::Valid),
        2 => (0u16..1000).prop_map(Body::Truncated),
        3 => prop::collection::vec(any::<u8>(), 0..4096).prop_map(Body::Garbage),
        // Text that looks like a playlist but is not one.
        1 => "#EXTM3U\n(#EXT[A-Z-]{1,20}:[ -~]{0,40}\n){0,20}".prop_map(|s| Body::Garbage(s.into_bytes())),
        1 => Just(Body::Html),
        1 => Just(Body::Empty),
        1 => (1usize..=4).prop_map(|m| Body::Huge(m * 1024 * 1024)),
    ]
}

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![
        3 => Just(Framing::ContentLength),
        1 => Just(Framing::Chunked),
        1 => Just(Framing::UntilClose),
    ]
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        10 => (status_any(), content_type(), body(), framing()).prop_map(
            |(status, content_type, body, framing)| Answer::Respond {
                status,
                content_type,
                body,
                framing,
            }
        ),
        2 => (prop::sample::select(vec![200u16, 404, 503]), 0u16..1000, any::<bool>())
            .prop_map(|(status, per_mille, reset)| Answer::CutMidBody { status, per_mille, reset }),
        1 => any::<bool>().prop_map(|reset| Answer::Hangup { reset }),
        1 => any::<bool>().prop_map(|after_headers| Answer::Stall { after_headers }),
        1 => prop::collection::vec(any::<u8>(), 1..512)
            // Never accidentally a valid status line.
            .prop_map(|mut b| { b.insert(0, b'\x16'); Answer::NotHttp(b) }),
    ]
}

/// One host for every property: starting one compiles the `.wasm` (slow in a debug build), and
/// one VM meeting every hostile case in turn is the point.
#[test]
fn a_hostile_store_and_hostile_viewers_never_stop_the_vm() {
    let started = Instant::now();
    let store = FakeStore::start();
    let h = host(&store);
    assert_still_serving(&h, &store, "start-up");
    eprintln!("host started in {:.1} s", started.elapsed().as_secs_f64());
    a_hostile_store_gets_a_specific_status_and_reason(&h, &store);
    an_oversized_store_answer_is_a_bad_gateway(&h, &store);
    hostile_viewers_get_a_specific_client_error_and_reason(&h, &store);
    random_bytes_never_reach_the_vm_or_stop_it(&h, &store);
    assert_eq!(h.traps(), 0);
    eprintln!("all properties in {:.1} s", started.elapsed().as_secs_f64());
}

fn a_hostile_store_gets_a_specific_status_and_reason(h: &RunningHost, store: &FakeStore) {
    let paths = viewer_paths();
    let started = Instant::now();
    let mut runner = runner(160);
    let result = runner.run(
        &(answer(), prop::sample::select(paths)),
        |(answer, path)| {
            store.set(answer.clone());
            store.take_requests();
            let r = get(h.addr, &path);
            let asked = store.take_requests();
            let what = format!("{path} with the store answering {}", describe(&answer));
            prop_assert!(!asked.is_empty(), "{what}: the store was not asked");
            prop_assert!(
                answer.expected().contains(&r.status),
                "{what}: got {} (expected one of {:?}): {}",
                r.status,
                answer.expected(),
                r.text()
            );
            if r.status != 200 {
                check_reason(&what, &r)?;
            }
            assert_still_serving(h, store, &what);
            Ok(())
        },
    );
    conclude(
        result,
        h,
        Some(("hostile store: 160 generated answers", started)),
    );
}

/// A short description of an answer for failure messages (bodies can be megabytes).
fn describe(a: &Answer) -> String {
    match a {
        Answer::Respond {
            status,
            content_type,
            body,
            framing,
        } => {
            let b = match body {
                Body::Garbage(g) => {
                    format!("Garbage({} bytes: {:?}…)", g.len(), &g[..g.len().min(24)])
                }
                Body::Huge(n) => format!("Huge({n})"),
                other => format!("{other:?}"),
            };
            format!("{status} {content_type:?} {b} {framing:?}")
        }
        Answer::NotHttp(b) => format!("NotHttp({} bytes)", b.len()),
        other => format!("{other:?}"),
    }
}

/// Past the 32 MiB call limit, with and without a length: few, listed, because they are slow.
fn an_oversized_store_answer_is_a_bad_gateway(h: &RunningHost, store: &FakeStore) {
    for chunked in [false, true] {
        for path in [
            "/out/v1/news/hls/stream_0/3.ts",
            "/out/v1/news/hls/stream_0/index.m3u8",
        ] {
            store.set(Answer::Oversized { chunked });
            let r = get(h.addr, path);
            let what = format!("{path} with an answer over 32 MiB (chunked: {chunked})");
            assert_eq!(r.status, 502, "{what}: {}", r.text());
            assert_reason(&what, &r);
            assert!(r.text().contains("32 MiB"), "{what}: {}", r.text());
            assert_still_serving(h, store, &what);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Generated viewers

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("GET".to_owned()),
        1 => Just("HEAD".to_owned()),
        1 => prop::sample::select(vec![
            "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "PROPFIND", "MKCOL", "get",
            "BREW", "M-SEARCH",
        ])
        .prop_map(str::to_owned),
        1 => "[A-Za-z!#$%&'*+.^_`|~-]{1,20}",
    ]
}

/// One path segment: names the filter knows, traversal and encoding tricks, generated text.
fn segment() -> impl Strategy<Value = String> {
    let known = prop::sample::select(vec![
        "news",
        "hls",
        "cmaf",
        "dash",
        "secure",
        "cenc",
        "guarded",
        "stream_0",
        "stream_1",
        "index.m3u8",
        "index.mpd",
        "3.ts",
        "3.mp4",
        "init-ts3.mp4",
        "key",
        "0",
        "clearkey",
        "v1",
        "out",
    ])
    .prop_map(str::to_owned);
    let tricks = prop::sample::select(vec![
        "..",
        ".",
        "%2e%2e",
        "%2E%2E",
        "%2e.",
        ".%2e",
        "..%2f",
        "%2f",
        "%2F",
        "%5c",
        "..%5C",
        "%00",
        "x%00.ts",
        "%",
        "%zz",
        "%ff%fe",
        "%c0%ae%c0%ae",
        "..;",
        "%252e%252e",
        "~",
        "index.m3u8%00.ts",
        "%0d%0aSet-Cookie:x=1",
        "-1.ts",
        "18446744073709551616.ts",
        "99999999999999999999999.mp4",
        "v-5.mp4",
        "init-.mp4",
        "init-v.mp4",
        "a0x10.mp4",
        "+3.ts",
        "3.TS",
        "3..ts",
        ".ts",
    ])
    .prop_map(str::to_owned);
    // Any bytes, percent-encoded where the request line does not allow them.
    let bytes = prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| {
        b.iter()
            .map(|&c| {
                if c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&c) {
                    (c as char).to_string()
                } else {
                    format!("%{c:02X}")
                }
            })
            .collect()
    });
    prop_oneof![4 => known, 3 => tricks, 2 => bytes, 1 => "[A-Za-z0-9!$&'()*+,;=:@._~-]{0,300}"]
}

fn path() -> impl Strategy<Value = String> {
    let prefix = prop_oneof![
        6 => Just("/out/v1/".to_owned()),
        1 => Just("/out/v1//".to_owned()),
        1 => Just("/out/v1/news/hls/../../../../".to_owned()),
        1 => Just("/OUT/V1/".to_owned()),
        1 => Just("/".to_owned()),
        1 => Just("//out/v1/".to_owned()),
        1 => Just("/out/v1%2f".to_owned()),
    ];
    (
        prefix,
        prop::collection::vec(segment(), 0..7),
        any::<bool>(),
    )
        .prop_map(|(p, segs, slash)| {
            format!("{p}{}{}", segs.join("/"), if slash { "/" } else { "" })
        })
}

fn query() -> impl Strategy<Value = String> {
    let names = prop::sample::select(vec![
        "token",
        "start",
        "end",
        "aws.manifestfilter",
        "aws.manifestsettings",
        "window",
        "x",
        "",
        "token%00",
        "start[]",
    ]);
    let value = prop_oneof![
        Just(String::new()),
        "[0-9]{1,25}",
        "-?[0-9]{1,10}(\\.[0-9]{0,5})?",
        "20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z",
        "(video_bitrate|video_height|audio_codec|video_codec):[0-9a-z,-]{0,30}",
        "[A-Za-z0-9._~%-]{0,60}",
    ];
    let pairs = prop::collection::vec((names, value), 0..5).prop_map(|kv| {
        kv.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    });
    prop_oneof![
        3 => Just(String::new()),
        4 => pairs.prop_map(|q| format!("?{q}")),
        1 => (8_000usize..=12_000).prop_map(|n| format!("?start={}", "9".repeat(n))),
        1 => (8_000usize..=12_000).prop_map(|n| format!("?aws.manifestfilter=video_bitrate:{}", "0-1,".repeat(n / 4))),
        1 => (10_000usize..=10_000).prop_map(|n| format!("?{}", "a".repeat(n))),
        1 => "\\?[A-Za-z0-9!$&'()*+,;=:@._~/?%-]{0,200}",
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        prop::sample::select(vec![
            "x-edgepack-cdn-identifier",
            "range",
            "if-none-match",
            "origin",
            "accept",
            "x-forwarded-for",
            "user-agent",
            "cookie",
            "authorization",
            "access-control-request-method",
        ])
        .prop_map(str::to_owned),
        "x-[a-z0-9-]{1,40}",
    ];
    let value = prop_oneof![
        Just("current".to_owned()),
        "[ -~]{0,100}",
        // Huge, within Envoy's default 60 KiB for all request headers.
        (1_000usize..=16_000, any::<u8>()).prop_map(|(n, c)| {
            let c = 0x21 + c % 0x5e;
            (c as char).to_string().repeat(n)
        }),
    ];
    prop::collection::vec((name, value), 0..4)
}

/// What a viewer may get from the filter (or the proxy, for paths the filter leaves alone):
/// served, a CORS preflight, or a client error; a 501 for a form this version cannot make.
const VIEWER_STATUSES: &[u16] = &[200, 204, 400, 403, 404, 405, 501];

fn hostile_viewers_get_a_specific_client_error_and_reason(h: &RunningHost, store: &FakeStore) {
    let started = Instant::now();
    let mut runner = runner(128);
    let result = runner.run(
        &(method(), path(), query(), headers()),
        |(method, path, query, headers)| {
            store.set(Answer::Good);
            let mut req = format!("{method} {path}{query} HTTP/1.1\r\nhost: edge\r\n");
            for (k, v) in &headers {
                req.push_str(&format!("{k}: {v}\r\n"));
            }
            req.push_str("connection: close\r\n\r\n");
            let what = format!(
                "{method} {}{} ({} headers)",
                &path[..path.len().min(200)],
                &query[..query.len().min(200)],
                headers.len()
            );
            let r = exchange(h.addr, req.as_bytes())
                .unwrap_or_else(|| panic!("{what}: no HTTP answer"));
            prop_assert!(
                VIEWER_STATUSES.contains(&r.status),
                "{what}: got {}: {}",
                r.status,
                r.text()
            );
            if r.status >= 400 && method != "HEAD" {
                check_reason(&what, &r)?;
            }
            prop_assert_eq!(h.traps(), 0, "{}: a trap", what);
            assert_still_serving(h, store, &what);
            Ok(())
        },
    );
    conclude(
        result,
        h,
        Some(("hostile viewers: 128 generated requests", started)),
    );
}

/// Bytes that are not HTTP at all, or HTTP the codec refuses: the proxy answers or closes, and the
/// VM never sees them — it keeps serving.
fn random_bytes_never_reach_the_vm_or_stop_it(h: &RunningHost, store: &FakeStore) {
    let mut runner = runner(64);
    let raw = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2048),
        // A request line with raw bytes in the path (control characters, high bytes, spaces).
        prop::collection::vec(any::<u8>(), 1..200).prop_map(|p| {
            let mut r = b"GET /out/v1/news/hls/".to_vec();
            r.extend_from_slice(&p);
            r.extend_from_slice(b" HTTP/1.1\r\nhost: edge\r\nconnection: close\r\n\r\n");
            r
        }),
        // A header with raw bytes in its value.
        prop::collection::vec(any::<u8>(), 1..200).prop_map(|v| {
            let mut r =
                b"GET /out/v1/news/hls/index.m3u8 HTTP/1.1\r\nhost: edge\r\nx-junk: ".to_vec();
            r.extend_from_slice(&v);
            r.extend_from_slice(b"\r\nconnection: close\r\n\r\n");
            r
        }),
    ];
    let result = runner.run(&raw, |bytes| {
        store.set(Answer::Good);
        let mut s = TcpStream::connect(h.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let _ = s.write_all(&bytes);
        let _ = s.shutdown(Shutdown::Write);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        if let Some(r) = parse_reply(&out) {
            prop_assert!(
                r.status != 500 && r.status != 503,
                "{:?}: {} {}",
                &bytes[..bytes.len().min(64)],
                r.status,
                r.text()
            );
        }
        prop_assert_eq!(h.traps(), 0);
        assert_still_serving(h, store, "random bytes");
        Ok(())
    });
    conclude(result, h, None);
}
