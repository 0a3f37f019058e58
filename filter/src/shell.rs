//! The only module that touches `proxy_wasm`: contexts, store fetches with
//! `dispatch_http_call`, local replies and metrics. It maps the core's plans and answers to
//! hostcalls, and never calls a hostcall in a phase where Envoy refuses it (a refused hostcall
//! that the SDK unwraps would trap the VM; every call here goes through `hostcalls`, which
//! returns the status instead).
//!
//! Lifecycle in Envoy: one VM per worker plus a validation VM; `on_configure` parses the plugin
//! JSON once per VM and defines the metrics; each request gets an [`Http`] context.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};

use crate::access_log;
use crate::http_policy::IMMUTABLE;
use crate::packager::{self, Fetch, LicenseRequest, Plan, Request, Step, StoreAnswer};
use crate::route;
use crate::segment_cache::{self, RING_KEY, Ring};
use crate::store_cache::StoreCache;
use crate::{Response, Settings};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// Metric ids of one endpoint (or of requests that match no endpoint).
#[derive(Debug, Default, Clone)]
struct EndpointMetrics {
    /// Requests by status class: 2xx, 3xx, 4xx, 5xx.
    requests: [u32; 4],
    bytes: u32,
    response_time_ms: u32,
}

type MetricTable = HashMap<(String, String), EndpointMetrics>;

/// Name of a metric as defined; Envoy shows it as `wasmcustom.<name>` in `/stats` and without the
/// prefix in `/stats/prometheus`.
pub fn metric_name(kind: &str, channel: &str, endpoint: &str, class: Option<&str>) -> String {
    match class {
        Some(c) => {
            format!("edgepack.{kind}.channel.{channel}.endpoint.{endpoint}.status_class.{c}")
        }
        None => format!("edgepack.{kind}.channel.{channel}.endpoint.{endpoint}"),
    }
}

const UNKNOWN: &str = "_unknown";

fn define_endpoint(channel: &str, endpoint: &str) -> Option<EndpointMetrics> {
    let mut m = EndpointMetrics::default();
    for (i, class) in ["2xx", "3xx", "4xx", "5xx"].iter().enumerate() {
        let name = metric_name("egress_requests", channel, endpoint, Some(class));
        m.requests[i] = hostcalls::define_metric(MetricType::Counter, &name).ok()?;
    }
    m.bytes = hostcalls::define_metric(
        MetricType::Counter,
        &metric_name("egress_bytes", channel, endpoint, None),
    )
    .ok()?;
    m.response_time_ms = hostcalls::define_metric(
        MetricType::Histogram,
        &metric_name("egress_response_time_ms", channel, endpoint, None),
    )
    .ok()?;
    Some(m)
}

/// Playlists a VM keeps (store paths: a few per rendition and time-shift in use).
const PLAYLIST_CACHE_ENTRIES: usize = 256;

/// Store playlists, and the viewer answers made from them keyed by the step that made them.
type PlaylistCache = StoreCache<Step, Response>;

/// The root context: configuration, metric ids and the playlist cache, shared with the HTTP
/// contexts of this VM.
#[derive(Default)]
struct Root {
    settings: Option<Rc<Settings>>,
    metrics: Rc<RefCell<MetricTable>>,
    cache: Rc<RefCell<PlaylistCache>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(Some(b)) => b,
            _ => {
                log::error!(
                    "edgepack: no plugin configuration; set `configuration` to the edgepack JSON"
                );
                return false;
            }
        };
        let settings = match Settings::from_json(&bytes) {
            Ok(s) => s,
            Err(e) => {
                // Returning false makes Envoy refuse the filter, with this line in its log.
                log::error!("edgepack: {e}");
                return false;
            }
        };
        let mut table = MetricTable::new();
        let pairs = settings
            .channels
            .iter()
            .flat_map(|(c, eps)| eps.keys().map(move |e| (c.clone(), e.clone())))
            .chain(std::iter::once((UNKNOWN.to_owned(), UNKNOWN.to_owned())));
        for (c, e) in pairs {
            match define_endpoint(&c, &e) {
                Some(m) => {
                    table.insert((c, e), m);
                }
                None => {
                    log::error!("edgepack: the host refused to define metrics for {c}/{e}");
                    return false;
                }
            }
        }
        self.metrics = Rc::new(RefCell::new(table));
        self.cache = Rc::new(RefCell::new(StoreCache::new(
            PLAYLIST_CACHE_ENTRIES,
            settings.store.playlist_cache_ms,
        )));
        // The ring of the shared segment cache exists before any worker adds to it, so every
        // addition is a compare-and-set (two VMs starting together both write an empty one).
        if settings.cache.megabytes > 0 && shared_get(RING_KEY).0.is_none() {
            let _ = hostcalls::set_shared_data(RING_KEY, Some(&Ring::default().encode()), None);
        }
        self.settings = Some(Rc::new(settings));
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let settings = self.settings.clone()?;
        Some(Box::new(Http {
            settings,
            metrics: self.metrics.clone(),
            cache: self.cache.clone(),
            pending: None,
            playlist: None,
            segment_key: None,
            labels: (UNKNOWN.to_owned(), UNKNOWN.to_owned()),
            license: None,
            started_ms: 0,
            replied: false,
            path: String::new(),
            cached: false,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One viewer request.
struct Http {
    settings: Rc<Settings>,
    metrics: Rc<RefCell<MetricTable>>,
    cache: Rc<RefCell<PlaylistCache>>,
    /// The store fetch in flight, and what its answer is for.
    pending: Option<Fetch>,
    /// A playlist request's first fetch (store path and step): its answer is kept beside that
    /// store answer for other viewers of this VM.
    playlist: Option<(String, Step)>,
    /// The shared-cache key of the segment this request is making.
    segment_key: Option<String>,
    /// The channel and endpoint of this request, for metrics.
    labels: (String, String),
    /// A license request whose body is being read.
    license: Option<LicenseRequest>,
    started_ms: i64,
    /// This context sent a local reply: its own response callbacks must leave it alone.
    replied: bool,
    /// The request path, for the access log's asset kind.
    path: String,
    /// The answer is one this edge made before (for the access log's outcome).
    cached: bool,
}

/// A shared-data value and its CAS; a failed read is a miss.
fn shared_get(key: &str) -> (Option<Vec<u8>>, Option<u32>) {
    hostcalls::get_shared_data(key).unwrap_or((None, None))
}

fn now_ms() -> i64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64)
}

fn request_header(name: &str) -> Option<String> {
    hostcalls::get_map_value(MapType::HttpRequestHeaders, name)
        .ok()
        .flatten()
}

impl Http {
    /// Answers with the answer made for the same step from the same fresh store playlist when
    /// there is one, else from a fresh cached playlist (a DASH manifest's second fetch may hit
    /// too); otherwise asks the store, whose answer arrives in `on_http_call_response`.
    fn fetch(&mut self, mut fetch: Fetch) {
        if fetch.answers_a_playlist() && self.playlist.is_none() {
            let cache = self.cache.clone();
            if let Some(r) = cache.borrow().answer(&fetch.path, &fetch.next, now_ms()) {
                self.cached = true;
                return self.reply(r);
            }
            self.playlist = Some((fetch.path.clone(), fetch.next.clone()));
        }
        loop {
            let cached = fetch
                .is_playlist()
                .then(|| {
                    self.cache
                        .borrow()
                        .get(&fetch.path, now_ms())
                        .map(<[u8]>::to_vec)
                })
                .flatten();
            let Some(body) = cached else {
                return self.dispatch(fetch);
            };
            let none = |_: &str| None;
            let answer = StoreAnswer {
                status: 200,
                header: &none,
                body: &body,
            };
            match packager::on_store_answer(&self.settings, &fetch.next, &answer, now_ms()) {
                Plan::Respond(r) => return self.reply(&r),
                Plan::Fetch(next) => fetch = *next,
                Plan::NotOurs | Plan::ReadBody(_) => return,
            }
        }
    }

    /// Asks the store; a refused call is answered at once.
    fn dispatch(&mut self, fetch: Fetch) {
        let store = &self.settings.store;
        let call = hostcalls::dispatch_http_call(
            &store.cluster,
            vec![
                (":method", "GET"),
                (":path", &fetch.path),
                (":authority", &store.authority),
            ],
            None,
            vec![],
            Duration::from_millis(store.timeout_ms),
        );
        match call {
            Ok(_) => self.pending = Some(fetch),
            Err(status) => {
                let r = crate::FilterError::BadGateway(format!(
                    "cannot call the store cluster '{}' ({status:?}): is it defined in Envoy?",
                    store.cluster
                ))
                .to_response();
                self.reply(&r);
            }
        }
    }

    /// The answer another request on this edge made for `key`, if it is kept.
    fn kept_segment(&self, key: &str) -> Option<Response> {
        if self.settings.cache.megabytes == 0 {
            return None;
        }
        let value = shared_get(key).0?;
        let (content_type, body) = segment_cache::decode_entry(&value)?;
        Some(packager::segments::kept(content_type, body))
    }

    /// Keeps a segment this request made, within the cache's budget: the ring is updated with
    /// compare-and-set (another worker may be adding too), then what it evicted is cleared.
    fn keep_segment(&self, key: &str, r: &Response) {
        let budget = self.settings.cache.megabytes.saturating_mul(1 << 20);
        // Only what never changes.
        if budget == 0 || r.status != 200 || r.get("cache-control") != Some(IMMUTABLE) {
            return;
        }
        let content_type = r.get("content-type").unwrap_or("application/octet-stream");
        for _ in 0..4 {
            let (value, cas) = shared_get(RING_KEY);
            // No ring (shared data was reset): keep nothing rather than race to create one.
            let (Some(value), Some(cas)) = (value, cas) else {
                return;
            };
            let mut ring = Ring::decode(&value);
            let Some(evicted) = ring.admit(key, r.body.len() as u64, budget) else {
                return;
            };
            if hostcalls::set_shared_data(RING_KEY, Some(&ring.encode()), Some(cas)).is_err() {
                // Another worker changed the ring meanwhile: read it again.
                continue;
            }
            for gone in evicted {
                let _ = hostcalls::set_shared_data(&gone, Some(&[]), None);
            }
            let value = segment_cache::encode_entry(content_type, &r.body);
            let _ = hostcalls::set_shared_data(key, Some(&value), None);
            return;
        }
    }

    fn reply(&mut self, r: &Response) {
        if let Some((path, step)) = self.playlist.take()
            && r.status == 200
        {
            let size = r.body.len();
            self.cache
                .borrow_mut()
                .keep_answer(&path, step, now_ms(), size, r.clone());
        }
        self.tell_access_log(r);
        let headers: Vec<(&str, &str)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Err(status) =
            hostcalls::send_http_response(u32::from(r.status), headers, Some(&r.body))
        {
            log::warn!("edgepack: local reply refused by the host: {status:?}");
            return;
        }
        self.replied = true;
        self.count(r);
    }

    /// Channel, endpoint, asset kind and outcome as filter state, for Envoy's access log.
    fn tell_access_log(&self, r: &Response) {
        let (channel, endpoint) = &self.labels;
        for (name, value) in [
            (access_log::CHANNEL, channel.as_str()),
            (access_log::ENDPOINT, endpoint.as_str()),
            (access_log::ASSET, access_log::asset(&self.path)),
            (
                access_log::OUTCOME,
                access_log::outcome(r.status, self.cached),
            ),
        ] {
            let _ = hostcalls::set_property(vec![name], Some(value.as_bytes()));
        }
    }

    fn count(&self, r: &Response) {
        let table = self.metrics.borrow();
        let Some(m) = table
            .get(&self.labels)
            .or_else(|| table.get(&(UNKNOWN.to_owned(), UNKNOWN.to_owned())))
        else {
            return;
        };
        let class = match r.status {
            200..=299 => 0,
            300..=399 => 1,
            400..=499 => 2,
            _ => 3,
        };
        let _ = hostcalls::increment_metric(m.requests[class], 1);
        if !r.body.is_empty() {
            let _ = hostcalls::increment_metric(m.bytes, r.body.len() as i64);
        }
        let elapsed = (now_ms() - self.started_ms).max(0) as u64;
        let _ = hostcalls::record_metric(m.response_time_ms, elapsed);
    }
}

/// Channel and endpoint of an `/out/v1/{channel}/{endpoint}/…` path, for metrics; requests
/// that name no configured endpoint count under `_unknown`.
fn labels(path: &str, settings: &Settings) -> (String, String) {
    match route::channel_and_endpoint(path) {
        Some((c, e))
            if settings
                .channels
                .get(c)
                .is_some_and(|eps| eps.contains_key(e)) =>
        {
            (c.to_owned(), e.to_owned())
        }
        _ => (UNKNOWN.to_owned(), UNKNOWN.to_owned()),
    }
}

impl Context for Http {
    fn on_http_call_response(
        &mut self,
        _token: u32,
        num_headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let Some(fetch) = self.pending.take() else {
            return;
        };
        if self.replied {
            return;
        }
        // Zero headers: the call was reset (or its answer was over Envoy's limit); there is no
        // header map to read.
        let (status, headers) = if num_headers == 0 {
            (0, Vec::new())
        } else {
            let headers = hostcalls::get_map(MapType::HttpCallResponseHeaders).unwrap_or_default();
            let status = headers
                .iter()
                .find(|(k, _)| k == ":status")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            (status, headers)
        };
        let body = if body_size > 0 {
            hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
                .ok()
                .flatten()
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        if status == 200 && fetch.is_playlist() {
            self.cache.borrow_mut().put(&fetch.path, now_ms(), &body);
        }
        let next = packager::on_store_answer(
            &self.settings,
            &fetch.next,
            &StoreAnswer {
                status,
                header: &header,
                body: &body,
            },
            now_ms(),
        );
        match next {
            Plan::Respond(r) => {
                if let Some(key) = self.segment_key.take() {
                    self.keep_segment(&key, &r);
                }
                self.reply(&r)
            }
            // A DASH manifest needs a second store answer: ask for it from here, as Envoy allows.
            Plan::Fetch(fetch) => self.fetch(*fetch),
            Plan::NotOurs | Plan::ReadBody(_) => {}
        }
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.started_ms = now_ms();
        let path = request_header(":path").unwrap_or_default();
        let method = request_header(":method").unwrap_or_default();
        let client_ip = hostcalls::get_property(vec!["source", "address"])
            .ok()
            .flatten()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|a| {
                a.parse::<std::net::SocketAddr>()
                    .map(|s| s.ip())
                    .ok()
                    .or_else(|| a.parse().ok())
            });
        let header = |name: &str| request_header(name);
        let plan = packager::plan(
            &self.settings,
            &Request {
                method: &method,
                path: &path,
                header: &header,
                client_ip,
                now_ms: self.started_ms,
            },
        );
        self.labels = labels(&path, &self.settings);
        self.path = path;
        match plan {
            // Not an edgepack path: pass it on untouched.
            Plan::NotOurs => Action::Continue,
            Plan::Respond(r) => {
                self.reply(&r);
                // Pause: the local reply is sent when this callback returns.
                Action::Pause
            }
            Plan::Fetch(fetch) if fetch.is_segment() => {
                let key = segment_cache::entry_key(&self.settings.fingerprint, &self.path);
                match self.kept_segment(&key) {
                    // Made before on this edge: no store fetch, no repackaging, no encryption.
                    Some(r) => {
                        self.cached = true;
                        self.reply(&r)
                    }
                    None => {
                        self.segment_key = Some(key);
                        self.fetch(*fetch);
                    }
                }
                // Pause: the answer is a local reply, now or from on_http_call_response.
                Action::Pause
            }
            Plan::Fetch(fetch) => {
                self.fetch(*fetch);
                // Pause: the answer is built in on_http_call_response.
                Action::Pause
            }
            Plan::ReadBody(license) if end_of_stream => {
                let r = packager::answer_body(&self.settings, &license, &[]);
                self.reply(&r);
                // Pause: the local reply is sent when this callback returns.
                Action::Pause
            }
            Plan::ReadBody(license) => {
                // Envoy turns a Pause from this callback into "stop everything", body included:
                // Continue, then hold the body in on_http_request_body and answer locally there.
                self.license = Some(*license);
                Action::Continue
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(license) = self.license.take() else {
            return Action::Continue;
        };
        if !end_of_stream && body_size <= packager::MAX_LICENSE_REQUEST {
            self.license = Some(license);
            // Pause buffers: the next callback sees the whole body so far.
            return Action::Pause;
        }
        // One byte past the limit is enough for the core to refuse an over-long request.
        let body = hostcalls::get_buffer(
            BufferType::HttpRequestBody,
            0,
            body_size.min(packager::MAX_LICENSE_REQUEST + 1),
        )
        .ok()
        .flatten()
        .unwrap_or_default();
        let r = packager::answer_body(&self.settings, &license, &body);
        self.reply(&r);
        // Pause: the local reply is sent when this callback returns.
        Action::Pause
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // Our own local reply comes back through this filter: leave it alone. Other responses
        // are not ours either.
        Action::Continue
    }
}
