//! The test host's HTTP side: worker threads each owning one VM (as Envoy's workers do), a
//! validation VM at start, streams driven through the filter's callbacks with Envoy's rules,
//! `dispatch_http_call` to a cluster table, pass-through to an upstream cluster, and an admin
//! listener with `/stats/prometheus`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use wasmtime::{Engine, Linker, Module, Val};

pub use crate::cluster::dispatch;
use crate::metrics::MetricStore;
use crate::vm::{self, CallResult, Headers, LocalReply, PendingCall, Vm, VmState};

/// How to run the host.
#[derive(Debug, Clone)]
pub struct HostOptions {
    pub wasm: PathBuf,
    pub config: Vec<u8>,
    /// Cluster table for `dispatch_http_call` and the upstream route.
    pub clusters: Vec<(String, SocketAddr)>,
    /// Cluster that requests go to when the filter continues them; none: 404 like Envoy's NR.
    pub route_cluster: Option<String>,
    pub workers: usize,
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    /// Body buffer limit (Envoy's `per_connection_buffer_limit_bytes`, default 1 MiB).
    pub buffer_limit: usize,
    /// Routes answered by the proxy itself with the filter disabled on them (Envoy's
    /// `direct_response` + per-route `disabled: true`), matched on the exact path.
    pub direct_responses: Vec<DirectResponse>,
    /// Envoy's `stats_config.stats_tags`: (tag name, regex), applied to `/stats/prometheus`.
    pub stats_tags: Vec<(String, String)>,
    /// The connection manager's access log (`envoy.yaml`'s stdout `json_format`); none: off.
    pub access_log: Option<crate::access_log::AccessLog>,
}

/// A route the proxy answers itself, without the filter.
#[derive(Debug, Clone)]
pub struct DirectResponse {
    pub path: String,
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl HostOptions {
    /// Defaults: two workers, loopback ports chosen by the OS, 1 MiB buffer limit.
    pub fn new(wasm: PathBuf, config: Vec<u8>) -> Self {
        Self {
            wasm,
            config,
            clusters: Vec::new(),
            route_cluster: None,
            workers: 2,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            buffer_limit: 1024 * 1024,
            direct_responses: Vec::new(),
            stats_tags: Vec::new(),
            access_log: None,
        }
    }
}

/// A running host; stopped when dropped.
pub struct RunningHost {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub metrics: Arc<MetricStore>,
    traps: Arc<AtomicU64>,
    vm_memory: Arc<Vec<AtomicU64>>,
    stop: Vec<tokio::sync::oneshot::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl RunningHost {
    /// Traps so far, all VMs (the tests treat any trap as a failure).
    pub fn traps(&self) -> u64 {
        self.traps.load(Ordering::SeqCst)
    }

    /// Each worker VM's linear memory in bytes, as of its last answered request.
    pub fn vm_memory_bytes(&self) -> Vec<u64> {
        self.vm_memory
            .iter()
            .map(|m| m.load(Ordering::Relaxed))
            .collect()
    }

    /// Stops the listeners and workers.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        for s in self.stop.drain(..) {
            let _ = s.send(());
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for RunningHost {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Shared {
    engine: Engine,
    module: Module,
    linker: Linker<VmState>,
    opts: HostOptions,
    clusters: Arc<HashMap<String, SocketAddr>>,
    metrics: Arc<MetricStore>,
    shared_data: vm::SharedData,
    traps: Arc<AtomicU64>,
    /// Per worker: its VM's linear memory after the last request.
    vm_memory: Arc<Vec<AtomicU64>>,
}

impl Shared {
    fn vm(&self, name: &str) -> Result<Vm, String> {
        let state = VmState {
            name: name.to_owned(),
            root_id: 1,
            plugin_config: self.opts.config.clone(),
            plugin_config_open: false,
            effective: 1,
            streams: HashMap::new(),
            clusters: self.clusters.clone(),
            pending: Vec::new(),
            next_token: 0,
            call_response: None,
            metrics: self.metrics.clone(),
            metric_ids: Vec::new(),
            shared: self.shared_data.clone(),
            tick_period_ms: 0,
            log_prefix: name.to_owned(),
            guest: None,
        };
        Vm::start(&self.engine, &self.module, &self.linker, state)
    }
}

/// Loads the module, validates the configuration in a validation VM (as Envoy does before it
/// accepts a filter), starts one VM per worker and the listeners.
pub fn start(opts: HostOptions) -> Result<RunningHost, String> {
    let engine = Engine::default();
    let module = Module::from_file(&engine, &opts.wasm)
        .map_err(|e| format!("cannot load {}: {e}", opts.wasm.display()))?;
    let linker = vm::linker(&engine).map_err(|e| format!("linker: {e}"))?;
    let clusters: HashMap<String, SocketAddr> = opts.clusters.iter().cloned().collect();
    if let Some(r) = &opts.route_cluster
        && !clusters.contains_key(r)
    {
        return Err(format!("route cluster '{r}' is not in the cluster table"));
    }
    let shared = Arc::new(Shared {
        engine,
        module,
        linker,
        clusters: Arc::new(clusters),
        metrics: Arc::new(MetricStore::with_tags(&opts.stats_tags)?),
        shared_data: Arc::new(Mutex::new(HashMap::new())),
        traps: Arc::new(AtomicU64::new(0)),
        vm_memory: Arc::new(
            (0..opts.workers.max(1))
                .map(|_| AtomicU64::new(0))
                .collect(),
        ),
        opts,
    });
    // The validation VM: a refused configuration stops start-up.
    shared.vm("validation")?;

    let listener =
        std::net::TcpListener::bind(shared.opts.listen).map_err(|e| format!("listen: {e}"))?;
    let admin =
        std::net::TcpListener::bind(shared.opts.admin).map_err(|e| format!("admin listen: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let admin_addr = admin.local_addr().map_err(|e| e.to_string())?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    admin.set_nonblocking(true).map_err(|e| e.to_string())?;

    let mut stop = Vec::new();
    let mut threads = Vec::new();
    let mut senders = Vec::new();
    for w in 0..shared.opts.workers.max(1) {
        let vm = shared.vm(&format!("worker{w}"))?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(std::net::TcpStream, SocketAddr)>();
        senders.push(tx);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        stop.push(stop_tx);
        let shared = shared.clone();
        // The VM is created here and moved into its worker thread, which alone uses it.
        threads.push(std::thread::spawn(move || {
            worker(shared, w, vm, rx, stop_rx)
        }));
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    stop.push(stop_tx);
    let metrics = shared.metrics.clone();
    let traps = shared.traps.clone();
    let vm_memory = shared.vm_memory.clone();
    let admin_stats = AdminStats {
        metrics: metrics.clone(),
        traps: traps.clone(),
        vm_memory: vm_memory.clone(),
    };
    threads.push(std::thread::spawn(move || {
        acceptor(listener, admin, admin_stats, senders, stop_rx)
    }));
    Ok(RunningHost {
        addr,
        admin: admin_addr,
        metrics,
        traps,
        vm_memory,
        stop,
        threads,
    })
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()
}

/// What the admin listener shows: the VMs' metrics, then the host's own (traps, VM memory), as
/// Envoy's admin shows its `wasm.*` stats beside the plugin's.
#[derive(Clone)]
struct AdminStats {
    metrics: Arc<MetricStore>,
    traps: Arc<AtomicU64>,
    vm_memory: Arc<Vec<AtomicU64>>,
}

impl AdminStats {
    fn prometheus(&self) -> String {
        let mut out = self.metrics.prometheus();
        out.push_str(&format!(
            "# TYPE edgepack_host_wasm_traps counter\nedgepack_host_wasm_traps {}\n\
             # TYPE edgepack_host_wasm_vm_memory_bytes gauge\n",
            self.traps.load(Ordering::SeqCst)
        ));
        for (i, m) in self.vm_memory.iter().enumerate() {
            out.push_str(&format!(
                "edgepack_host_wasm_vm_memory_bytes{{worker=\"{i}\"}} {}\n",
                m.load(Ordering::Relaxed)
            ));
        }
        out
    }
}

fn acceptor(
    listener: std::net::TcpListener,
    admin: std::net::TcpListener,
    stats: AdminStats,
    workers: Vec<tokio::sync::mpsc::UnboundedSender<(std::net::TcpStream, SocketAddr)>>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let Some(rt) = runtime() else { return };
    rt.block_on(async move {
        let (Ok(listener), Ok(admin)) = (
            tokio::net::TcpListener::from_std(listener),
            tokio::net::TcpListener::from_std(admin),
        ) else {
            return;
        };
        let mut next = 0usize;
        loop {
            tokio::select! {
                _ = &mut stop => break,
                Ok((s, peer)) = listener.accept() => {
                    // Envoy balances connections over workers; a connection stays on one.
                    if let Ok(std) = s.into_std() {
                        let _ = workers[next % workers.len()].send((std, peer));
                        next += 1;
                    }
                }
                Ok((s, _)) = admin.accept() => {
                    let stats = stats.clone();
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                            let stats = stats.clone();
                            async move {
                                let r = match req.uri().path() {
                                    "/stats/prometheus" | "/stats" => Response::new(Full::new(Bytes::from(stats.prometheus()))),
                                    _ => text(404, "admin: /stats/prometheus"),
                                };
                                Ok::<_, Infallible>(r)
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(s), svc).await;
                    });
                }
            }
        }
    });
}

fn worker(
    shared: Arc<Shared>,
    index: usize,
    vm: Vm,
    mut conns: tokio::sync::mpsc::UnboundedReceiver<(std::net::TcpStream, SocketAddr)>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let Some(rt) = runtime() else { return };
    let local = tokio::task::LocalSet::new();
    let vm = Rc::new(RefCell::new(vm));
    local.block_on(&rt, async move {
        loop {
            tokio::select! {
                _ = &mut stop => break,
                Some((s, peer)) = conns.recv() => {
                    let Ok(s) = tokio::net::TcpStream::from_std(s) else { continue };
                    let (vm, shared) = (vm.clone(), shared.clone());
                    tokio::task::spawn_local(async move {
                        let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                            let (vm, shared) = (vm.clone(), shared.clone());
                            async move {
                                let r = stream(&vm, &shared, req, peer).await;
                                if let (Ok(mut vm), Some(gauge)) = (vm.try_borrow_mut(), shared.vm_memory.get(index)) {
                                    gauge.store(vm.memory_bytes(), Ordering::Relaxed);
                                }
                                Ok::<_, Infallible>(r)
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(s), svc)
                            .await;
                    });
                }
            }
        }
    });
}

fn text(status: u16, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{body}\n"))));
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    r
}

fn build(status: u16, headers: &Headers, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in headers {
        if k.starts_with(':') || k == "content-length" {
            continue;
        }
        if let (Ok(k), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            hyper::header::HeaderValue::from_str(v),
        ) {
            r.headers_mut().append(k, v);
        }
    }
    r
}

fn trap(shared: &Shared) -> Response<Full<Bytes>> {
    shared.traps.fetch_add(1, Ordering::SeqCst);
    // What Envoy answers once the plugin's VM has failed with failure_policy FAIL_CLOSED.
    text(503, "wasm plugin failed: the VM trapped")
}

fn now_epoch_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Drives one request through the filter, following Envoy's phases.
async fn stream(
    vm: &Rc<RefCell<Vm>>,
    shared: &Shared,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    // Route selection comes before the filter chain runs; on these routes the filter is off.
    if let Some(d) = shared
        .opts
        .direct_responses
        .iter()
        .find(|d| d.path == req.uri().path())
    {
        let headers = vec![("content-type".to_owned(), d.content_type.clone())];
        let body = if req.method() == hyper::Method::HEAD {
            Vec::new()
        } else {
            d.body.clone()
        };
        // Envoy's access log is the connection manager's: these requests are logged too, with
        // no filter state.
        if let Some(log) = &shared.opts.access_log {
            let request_headers = vec![
                (":method".to_owned(), req.method().to_string()),
                (":path".to_owned(), req.uri().path().to_owned()),
            ];
            log.write(&crate::access_log::Entry {
                start_ms: now_epoch_ms(),
                request_headers: &request_headers,
                status: d.status,
                bytes_sent: body.len() as u64,
                duration_ms: 0,
                downstream: peer.to_string(),
                properties: None,
            });
        }
        return build(d.status, &headers, body);
    }
    if vm.borrow().failed.is_some() {
        return text(503, "wasm plugin failed: the VM trapped earlier");
    }
    let (parts, body) = req.into_parts();
    let limit = shared.opts.buffer_limit;
    let body = match Limited::new(body, limit).collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => return text(413, "payload too large"),
    };
    let mut headers: Headers = vec![
        (":method".into(), parts.method.to_string()),
        (
            ":path".into(),
            parts
                .uri
                .path_and_query()
                .map_or("/".into(), |p| p.as_str().to_owned()),
        ),
        (
            ":authority".into(),
            parts
                .headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("")
                .to_owned(),
        ),
        (":scheme".into(), "http".into()),
    ];
    for (k, v) in &parts.headers {
        if k != "host"
            && let Ok(v) = v.to_str()
        {
            headers.push((k.as_str().to_owned(), v.to_owned()));
        }
    }
    let is_head = parts.method == hyper::Method::HEAD;
    let started = std::time::Instant::now();
    let start_ms = now_epoch_ms();
    let id = match vm.borrow_mut().new_stream(peer.to_string()) {
        Ok(id) => id,
        Err(_) => return trap(shared),
    };
    let logged = shared.opts.access_log.is_some().then(|| headers.clone());
    let response = drive(vm, shared, id, headers, body).await;
    let mut response = response;
    if is_head {
        *response.body_mut() = Full::new(Bytes::new());
    }
    // Envoy logs when the stream completes, with what the filter left in its filter state.
    if let (Some(log), Some(request_headers)) = (&shared.opts.access_log, &logged) {
        let mut v = vm.borrow_mut();
        log.write(&crate::access_log::Entry {
            start_ms,
            request_headers,
            status: response.status().as_u16(),
            bytes_sent: hyper::body::Body::size_hint(response.body())
                .exact()
                .unwrap_or(0),
            duration_ms: started.elapsed().as_millis() as u64,
            downstream: peer.to_string(),
            properties: v.stream(id).map(|st| &st.properties),
        });
    }
    vm.borrow_mut().end_stream(id);
    response
}

/// The request phase of one stream: the filter's header and body callbacks and the calls it
/// pauses on, until it continues (upstream), replies locally or traps. Longer than most: one loop
/// in which each action the filter returns picks the next step, as Envoy's filter chain iterates.
async fn drive(
    vm: &Rc<RefCell<Vm>>,
    shared: &Shared,
    id: u32,
    headers: Headers,
    body: Vec<u8>,
) -> Response<Full<Bytes>> {
    let n = headers.len() as i32;
    let eos = body.is_empty();
    {
        let mut v = vm.borrow_mut();
        if let Some(st) = v.stream(id) {
            st.request_headers = headers;
            st.request_headers_open = true;
            st.request_body = body;
        }
    }
    let action = vm.borrow_mut().stream_call(
        id,
        "proxy_on_request_headers",
        &[Val::I32(id as i32), Val::I32(n), Val::I32(i32::from(eos))],
    );
    let mut action = match action {
        Ok(a) => a,
        Err(_) => return trap(shared),
    };
    let mut body_seen = false;
    loop {
        let (local, resumed) = {
            let mut v = vm.borrow_mut();
            let Some(st) = v.stream(id) else {
                return text(500, "stream vanished");
            };
            (
                st.local_reply.take(),
                std::mem::take(&mut st.continue_requested),
            )
        };
        // A local reply is deferred to the end of the callback and forces Stop.
        if let Some(local) = local {
            return local_reply(vm, shared, id, local);
        }
        if action == 0 || resumed {
            if let Some(st) = vm.borrow_mut().stream(id) {
                // After Continue the request header map is gone.
                st.request_headers_open = false;
            }
            // Continue with a body to come: the filter sees it (this host has it whole, so one
            // body callback with end_of_stream, as Envoy gives a body that came in one piece;
            // Envoy's router meanwhile has the headers). Pause buffers it; a local reply then
            // answers the request instead of the upstream.
            if !eos && !body_seen {
                let len = {
                    let mut v = vm.borrow_mut();
                    let Some(st) = v.stream(id) else {
                        return text(500, "stream vanished");
                    };
                    st.request_body_open = true;
                    st.request_body.len() as i32
                };
                let a = vm.borrow_mut().stream_call(
                    id,
                    "proxy_on_request_body",
                    &[Val::I32(id as i32), Val::I32(len), Val::I32(1)],
                );
                if let Some(st) = vm.borrow_mut().stream(id) {
                    st.request_body_open = false;
                }
                action = match a {
                    Ok(a) => a,
                    Err(_) => return trap(shared),
                };
                body_seen = true;
                continue;
            }
            return upstream(vm, shared, id).await;
        }
        let calls = vm.borrow_mut().take_pending(id);
        if calls.is_empty() {
            return text(
                500,
                "the filter paused the stream with nothing to resume it",
            );
        }
        for call in calls {
            let result = dispatch(&call).await;
            if vm.borrow_mut().deliver(call.token, result).is_err() {
                return trap(shared);
            }
        }
        action = 1;
    }
}

/// Envoy's local reply: the given headers plus `content-length`, `content-type: text/plain`
/// when none was given, then the whole encoder chain — this same filter's response callbacks
/// included.
fn local_reply(
    vm: &Rc<RefCell<Vm>>,
    shared: &Shared,
    id: u32,
    local: LocalReply,
) -> Response<Full<Bytes>> {
    let mut headers: Headers = vec![(":status".into(), local.status.to_string())];
    headers.extend(
        local
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone())),
    );
    if !headers.iter().any(|(k, _)| k == "content-type") {
        headers.push(("content-type".into(), "text/plain".into()));
    }
    headers.push(("content-length".into(), local.body.len().to_string()));
    response_phase(vm, shared, id, headers, local.body, true)
}

fn response_phase(
    vm: &Rc<RefCell<Vm>>,
    shared: &Shared,
    id: u32,
    headers: Headers,
    body: Vec<u8>,
    local: bool,
) -> Response<Full<Bytes>> {
    let n = headers.len() as i32;
    let eos = body.is_empty();
    {
        let mut v = vm.borrow_mut();
        if let Some(st) = v.stream(id) {
            st.local_reply_sent = local;
            st.request_headers_open = false;
            st.response_headers = headers;
            st.response_headers_open = true;
        }
    }
    let r = vm.borrow_mut().stream_call(
        id,
        "proxy_on_response_headers",
        &[Val::I32(id as i32), Val::I32(n), Val::I32(i32::from(eos))],
    );
    if r.is_err() {
        return trap(shared);
    }
    let mut v = vm.borrow_mut();
    let Some(st) = v.stream(id) else {
        return text(500, "stream vanished");
    };
    st.response_headers_open = false;
    let headers = st.response_headers.clone();
    st.response_body = body;
    st.response_body_open = true;
    let len = st.response_body.len() as i32;
    if len > 0 {
        let r = v.stream_call(
            id,
            "proxy_on_response_body",
            &[Val::I32(id as i32), Val::I32(len), Val::I32(1)],
        );
        if r.is_err() {
            drop(v);
            return trap(shared);
        }
    }
    let Some(st) = v.stream(id) else {
        return text(500, "stream vanished");
    };
    st.response_body_open = false;
    let body = std::mem::take(&mut st.response_body);
    let status = headers
        .iter()
        .find(|(k, _)| k == ":status")
        .and_then(|(_, s)| s.parse().ok())
        .unwrap_or(500);
    build(status, &headers, body)
}

/// The request continues to the route's cluster.
async fn upstream(vm: &Rc<RefCell<Vm>>, shared: &Shared, id: u32) -> Response<Full<Bytes>> {
    let Some(cluster) = &shared.opts.route_cluster else {
        // Envoy without a matching route: 404 (NR).
        return text(404, "no route");
    };
    let Some(addr) = shared.clusters.get(cluster).copied() else {
        return text(503, "no healthy upstream");
    };
    let (headers, body) = {
        let mut v = vm.borrow_mut();
        let Some(st) = v.stream(id) else {
            return text(500, "stream vanished");
        };
        (
            st.request_headers.clone(),
            std::mem::take(&mut st.request_body),
        )
    };
    let call = PendingCall {
        token: 0,
        stream: id,
        addr,
        headers,
        body,
        timeout_ms: 15_000,
    };
    match dispatch(&call).await {
        CallResult::Response { headers, body, .. } => {
            if body.len() > shared.opts.buffer_limit {
                // This host buffers whole bodies; Envoy streams them when no filter buffers.
                // Bodies over the limit are outside what the tests exercise.
                return text(500, "upstream body over the buffer limit");
            }
            response_phase(vm, shared, id, headers, body, false)
        }
        CallResult::Reset => text(
            503,
            "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
        ),
    }
}
