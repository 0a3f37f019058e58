//! The test host is itself proven, not assumed: small purpose-built guests (WAT) drive the rules
//! of `../shared/ENVOY.md` and report each hostcall's status through metrics
//! (metric value = status + 1), and the host's dispatch is checked against Envoy's answers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use edgepack_host::host::dispatch;
use edgepack_host::vm::{CallResult, PendingCall};
use edgepack_host::{HostOptions, RunningHost, start};

/// A guest that probes phase windows and local replies. In `on_request_headers` it reads
/// `:path` (present) and `x-missing` (absent), sends a local reply and returns Continue (the host
/// must force Stop). In `on_response_headers` — which runs for its own local reply — it reads
/// the request's `:path` (gone: BadArgument) and the response's `:status` (present). It tries a
/// counter increment of 0 (BadArgument) and a `dispatch_http_call` to an unknown cluster
/// (BadArgument) and one without `:authority` (BadArgument).
const PROBE: &str = r#"
(module
  (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_define_metric" (func $def (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $inc (param i32 i64) (result i32)))
  (import "env" "proxy_send_local_response" (func $reply (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_http_call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) ":path")
  (data (i32.const 8) "x-missing")
  (data (i32.const 24) ":status")
  (data (i32.const 32) "probe_req_path")
  (data (i32.const 48) "probe_req_missing")
  (data (i32.const 72) "probe_resp_req_path")
  (data (i32.const 96) "probe_resp_status")
  (data (i32.const 120) "probe_zero_increment")
  (data (i32.const 144) "probe_unknown_cluster")
  (data (i32.const 168) "probe_no_authority")
  (data (i32.const 192) "probe_response_headers_calls")
  (data (i32.const 224) "nowhere")
  (data (i32.const 232) "store")
  ;; header map: 2 pairs (":method","GET"), (":path","/")
  (data (i32.const 256) "\02\00\00\00\07\00\00\00\03\00\00\00\05\00\00\00\01\00\00\00:method\00GET\00:path\00/\00")
  (data (i32.const 320) "probe body")
  (global $heap (mut i32) (i32.const 8192))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32) (local $p i32)
    global.get $heap local.set $p
    global.get $heap local.get $n i32.add global.set $heap
    local.get $p)
  (func $record (param $slot i32) (param $status i32)
    ;; metric ids are kept at 1024 + 4*slot
    (drop (call $inc (i32.load (i32.add (i32.const 1024) (i32.mul (local.get $slot) (i32.const 4))))
                     (i64.extend_i32_u (i32.add (local.get $status) (i32.const 1))))))
  (func $define (param $slot i32) (param $name i32) (param $len i32)
    (drop (call $def (i32.const 0) (local.get $name) (local.get $len)
                     (i32.add (i32.const 1024) (i32.mul (local.get $slot) (i32.const 4))))))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (call $define (i32.const 0) (i32.const 32) (i32.const 14))
    (call $define (i32.const 1) (i32.const 48) (i32.const 17))
    (call $define (i32.const 2) (i32.const 72) (i32.const 19))
    (call $define (i32.const 3) (i32.const 96) (i32.const 17))
    (call $define (i32.const 4) (i32.const 120) (i32.const 20))
    (call $define (i32.const 5) (i32.const 144) (i32.const 21))
    (call $define (i32.const 6) (i32.const 168) (i32.const 18))
    (call $define (i32.const 7) (i32.const 192) (i32.const 28))
    i32.const 1)
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $record (i32.const 0) (call $get (i32.const 0) (i32.const 0) (i32.const 5) (i32.const 2048) (i32.const 2052)))
    (call $record (i32.const 1) (call $get (i32.const 0) (i32.const 8) (i32.const 9) (i32.const 2048) (i32.const 2052)))
    (call $record (i32.const 4) (call $inc (i32.load (i32.const 1040)) (i64.const 0)))
    (call $record (i32.const 5) (call $call (i32.const 224) (i32.const 7) (i32.const 256) (i32.const 40)
                                            (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1000) (i32.const 2056)))
    (call $record (i32.const 6) (call $call (i32.const 232) (i32.const 5) (i32.const 256) (i32.const 40)
                                            (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1000) (i32.const 2056)))
    (drop (call $reply (i32.const 418) (i32.const 0) (i32.const 0) (i32.const 320) (i32.const 10) (i32.const 0) (i32.const 0) (i32.const -1)))
    ;; Continue: the host must still stop, because a local reply was sent.
    i32.const 0)
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (call $record (i32.const 7) (i32.const 0))
    (call $record (i32.const 2) (call $get (i32.const 0) (i32.const 0) (i32.const 5) (i32.const 2048) (i32.const 2052)))
    (call $record (i32.const 3) (call $get (i32.const 2) (i32.const 24) (i32.const 7) (i32.const 2048) (i32.const 2052)))
    i32.const 0)
  (func (export "proxy_on_response_body") (param i32 i32 i32) (result i32) i32.const 0)
  (func (export "proxy_on_http_call_response") (param i32 i32 i32 i32 i32))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_done") (param i32) (result i32) i32.const 1)
  (func (export "proxy_on_delete") (param i32))
)
"#;

/// A guest that probes the request-body phase. `POST`: headers return Continue; the body callback
/// records its size and `end_of_stream`, reads the body and echoes it in a local reply (so the
/// request never goes upstream). `DELETE`: headers return Pause — Envoy then delivers no body to the
/// filter at all.
const BODY: &str = r#"
(module
  (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_define_metric" (func $def (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $inc (param i32 i64) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $buf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $reply (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) ":method")
  (data (i32.const 16) "body_calls")
  (data (i32.const 32) "body_size")
  (data (i32.const 48) "body_eos")
  (data (i32.const 64) "body_read")
  (global $heap (mut i32) (i32.const 8192))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32) (local $p i32)
    global.get $heap local.set $p
    global.get $heap local.get $n i32.add global.set $heap
    local.get $p)
  ;; metric ids at 1024 + 4*slot; add(slot, v) increments by v + 1 (so 0 shows as 1)
  (func $add (param $slot i32) (param $v i32)
    (drop (call $inc (i32.load (i32.add (i32.const 1024) (i32.mul (local.get $slot) (i32.const 4))))
                     (i64.extend_i32_u (i32.add (local.get $v) (i32.const 1))))))
  (func $define (param $slot i32) (param $name i32) (param $len i32)
    (drop (call $def (i32.const 0) (local.get $name) (local.get $len)
                     (i32.add (i32.const 1024) (i32.mul (local.get $slot) (i32.const 4))))))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (call $define (i32.const 0) (i32.const 16) (i32.const 10))
    (call $define (i32.const 1) (i32.const 32) (i32.const 9))
    (call $define (i32.const 2) (i32.const 48) (i32.const 8))
    (call $define (i32.const 3) (i32.const 64) (i32.const 9))
    i32.const 1)
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $get (i32.const 0) (i32.const 0) (i32.const 7) (i32.const 2048) (i32.const 2052)))
    ;; "POST" → Continue (0); anything else → Pause (1)
    (i32.ne (i32.load8_u (i32.load (i32.const 2048))) (i32.const 80)))
  (func (export "proxy_on_request_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    (call $add (i32.const 0) (i32.const 0))
    (call $add (i32.const 1) (local.get $size))
    (call $add (i32.const 2) (local.get $eos))
    (call $add (i32.const 3) (call $buf (i32.const 0) (i32.const 0) (local.get $size) (i32.const 2056) (i32.const 2060)))
    (drop (call $reply (i32.const 200) (i32.const 0) (i32.const 0)
                       (i32.load (i32.const 2056)) (i32.load (i32.const 2060)) (i32.const 0) (i32.const 0) (i32.const -1)))
    i32.const 1)
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) i32.const 0)
  (func (export "proxy_on_response_body") (param i32 i32 i32) (result i32) i32.const 0)
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_done") (param i32) (result i32) i32.const 1)
  (func (export "proxy_on_delete") (param i32))
)
"#;

/// A guest whose request callback traps.
const TRAPPER: &str = r#"
(module
  (memory (export "memory") 1)
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 1024)
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_configure") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) unreachable)
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_done") (param i32) (result i32) i32.const 1)
  (func (export "proxy_on_delete") (param i32))
)
"#;

fn host_with(wat: &str, dir: &std::path::Path, clusters: Vec<(String, SocketAddr)>) -> RunningHost {
    let path = dir.join("guest.wat");
    std::fs::write(&path, wat).unwrap();
    let mut o = HostOptions::new(path, b"{}".to_vec());
    o.clusters = clusters;
    o.workers = 1;
    start(o).unwrap()
}

fn get(addr: SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
    request(addr, "GET", path, "")
}

/// One HTTP/1.1 request on its own connection: (status, lower-case head, body).
fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let length = if body.is_empty() {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: t\r\n{length}Connection: close\r\n\r\n{body}"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.as_bytes().to_vec())
}

#[test]
fn phases_statuses_and_local_replies_are_envoys() {
    let dir = tempfile::tempdir().unwrap();
    let store = TcpListener::bind("127.0.0.1:0").unwrap();
    let h = host_with(
        PROBE,
        dir.path(),
        vec![("store".into(), store.local_addr().unwrap())],
    );
    let (status, head, body) = get(h.addr, "/probe");
    // The deferred local reply won over the Continue the callback returned.
    assert_eq!(status, 418);
    assert_eq!(body, b"probe body");
    assert!(
        head.contains("content-type: text/plain"),
        "default content type: {head}"
    );
    assert!(head.contains("content-length: 10"), "{head}");
    let m = |name: &str| h.metrics.get(name).unwrap();
    assert_eq!(m("probe_req_path"), 1, "present header: Ok");
    assert_eq!(m("probe_req_missing"), 2, "missing header: NotFound");
    assert_eq!(m("probe_zero_increment"), 3, "counter delta 0: BadArgument");
    assert_eq!(
        m("probe_unknown_cluster"),
        3,
        "unknown cluster: BadArgument"
    );
    assert_eq!(m("probe_no_authority"), 3, "no :authority: BadArgument");
    assert_eq!(
        m("probe_response_headers_calls"),
        1,
        "the filter's own reply runs through its response callback"
    );
    assert_eq!(
        m("probe_resp_req_path"),
        3,
        "request headers are gone in the response phase: BadArgument"
    );
    assert_eq!(m("probe_resp_status"), 1, "response :status readable: Ok");
    assert_eq!(h.traps(), 0);
}

#[test]
fn request_bodies_reach_the_filter_only_after_headers_continue() {
    let dir = tempfile::tempdir().unwrap();
    let h = host_with(BODY, dir.path(), vec![]);
    let m = |name: &str| h.metrics.get(name).unwrap_or(0);
    // Continue, then the body callback: the whole body with end_of_stream, readable; the local
    // reply made there answers the request (the upstream route is never used).
    let (status, _, body) = request(h.addr, "POST", "/body", "{\"kids\":[]}");
    assert_eq!((status, body.as_slice()), (200, &b"{\"kids\":[]}"[..]));
    assert_eq!(m("body_calls"), 1);
    assert_eq!(m("body_size"), 11 + 1, "the body's 11 bytes");
    assert_eq!(m("body_eos"), 1 + 1, "end_of_stream");
    assert_eq!(m("body_read"), 1, "request body readable: Ok");
    // Pause from the headers callback stops everything: no body callback.
    let (status, _, _) = request(h.addr, "DELETE", "/body", "ignored");
    assert_eq!(status, 500, "paused with nothing to resume it");
    assert_eq!(m("body_calls"), 1, "no body callback after a header Pause");
    assert_eq!(h.traps(), 0);
}

#[test]
fn a_trap_fails_every_later_stream_of_that_vm() {
    let dir = tempfile::tempdir().unwrap();
    let h = host_with(TRAPPER, dir.path(), vec![]);
    for _ in 0..3 {
        assert_eq!(get(h.addr, "/x").0, 503);
    }
    assert_eq!(
        h.traps(),
        1,
        "one trap; later streams fail closed without running the guest"
    );
}

fn call_to(addr: SocketAddr, timeout_ms: u32) -> PendingCall {
    PendingCall {
        token: 1,
        stream: 2,
        addr,
        headers: vec![
            (":method".into(), "GET".into()),
            (":path".into(), "/x".into()),
            (":authority".into(), "store".into()),
        ],
        body: vec![],
        timeout_ms,
    }
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, f)
}

/// A server that answers each connection with `answer` (raw bytes), after `delay`.
fn server(answer: &'static [u8], delay: Duration) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                std::thread::sleep(delay);
                let _ = s.write_all(answer);
            });
        }
    });
    addr
}

#[test]
fn dispatch_answers_like_envoy() {
    // Connect failure: a 503 with Envoy's text.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    match run(dispatch(&call_to(closed, 1000))) {
        CallResult::Response { headers, body, .. } => {
            assert!(headers.contains(&(":status".into(), "503".into())));
            assert!(String::from_utf8_lossy(&body).contains("upstream connect error"));
        }
        CallResult::Reset => panic!("connect failure is a 503, not a reset"),
    }
    // Timeout: 504.
    let slow = server(
        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        Duration::from_millis(800),
    );
    match run(dispatch(&call_to(slow, 200))) {
        CallResult::Response { headers, body, .. } => {
            assert!(headers.contains(&(":status".into(), "504".into())));
            assert_eq!(body, b"upstream request timeout");
        }
        CallResult::Reset => panic!("timeout is a 504"),
    }
    // Reset mid-answer: no headers at all.
    let reset = server(
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort",
        Duration::ZERO,
    );
    assert!(matches!(
        run(dispatch(&call_to(reset, 1000))),
        CallResult::Reset
    ));
    // A normal answer.
    let ok = server(
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-a: b\r\n\r\nhi",
        Duration::ZERO,
    );
    match run(dispatch(&call_to(ok, 1000))) {
        CallResult::Response { headers, body, .. } => {
            assert!(headers.contains(&(":status".into(), "200".into())));
            assert!(headers.contains(&("x-a".into(), "b".into())));
            assert_eq!(body, b"hi");
        }
        CallResult::Reset => panic!("a whole answer"),
    }
}

/// A keep-alive server: answers every request on a connection with "hi" until `per_conn`
/// requests (then closes it); counts the connections it accepted.
fn keep_alive_server(per_conn: usize) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                for _ in 0..per_conn {
                    let mut req = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi");
                }
            });
        }
    });
    (addr, accepted)
}

#[test]
fn dispatch_keeps_connections_alive_like_envoys_pool() {
    let body = |r: CallResult| match r {
        CallResult::Response { body, .. } => body,
        CallResult::Reset => panic!("a whole answer"),
    };
    // Requests one after another reuse one connection.
    let (addr, accepted) = keep_alive_server(usize::MAX);
    run(async {
        for _ in 0..5 {
            assert_eq!(body(dispatch(&call_to(addr, 1000)).await), b"hi");
        }
    });
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    // An upstream that closes each connection after one answer: every request still gets its
    // answer (a closed idle connection is not reused, or the request goes again on a new one).
    let (addr, accepted) = keep_alive_server(1);
    run(async {
        for _ in 0..5 {
            assert_eq!(body(dispatch(&call_to(addr, 1000)).await), b"hi");
        }
    });
    assert_eq!(accepted.load(Ordering::SeqCst), 5);
}
