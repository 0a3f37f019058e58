//! The two HTTP listeners: encoder-facing ingest (authenticated) and the filter-facing internal
//! API (`/store/v1`, `/metrics`, `/healthz`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt as _;
use http_body_util::BodyExt as _;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::Mutex;

use crate::auth::{AuthFailure, Authenticator};
use crate::channel::{ChannelState, IngestError, Rendered, etag_of};
use crate::config::Settings;
use crate::disk;
use crate::ingest_path::{self, PathError};
use crate::metrics::{ChannelLabels, InputLabels, Metrics, RequestLabels, status_class};

/// Shared by every request.
pub struct App {
    pub settings: Settings,
    pub auth: Authenticator,
    pub channels: HashMap<String, Arc<Mutex<ChannelState>>>,
    pub metrics: Metrics,
}

/// Header on every internal answer about a channel.
pub const ACTIVE_INPUT_HEADER: &str = "x-edgepack-active-input";

impl App {
    /// Opens every configured channel from `data_dir`.
    pub fn open(settings: Settings) -> Result<Self, StartupError> {
        let auth = Authenticator::new(&settings.server.realm, settings.server.nonce_ttl_seconds)
            .map_err(StartupError::Random)?;
        let mut channels = HashMap::new();
        for c in &settings.channels {
            let state =
                ChannelState::open(c.clone(), &settings.server.data_dir).map_err(|source| {
                    StartupError::Channel {
                        channel: c.id.clone(),
                        dir: settings.server.data_dir.display().to_string(),
                        source,
                    }
                })?;
            channels.insert(c.id.clone(), Arc::new(Mutex::new(state)));
        }
        Ok(Self {
            settings,
            auth,
            channels,
            metrics: Metrics::new(),
        })
    }
}

/// Why the sidecar could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("no system randomness for Digest nonces: {0}")]
    Random(getrandom::Error),
    #[error("cannot open channel '{channel}' under {dir}: {source}")]
    Channel {
        channel: String,
        dir: String,
        source: std::io::Error,
    },
}

/// The reason of a refusal, kept on the response for the log line.
#[derive(Clone)]
struct Reason(String);

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let reason = body.into();
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{reason}\n"),
    )
        .into_response();
    r.extensions_mut().insert(Reason(reason));
    r
}

/// The encoder-facing router.
pub fn ingest_router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(ingest)
        .with_state(app)
}

/// The filter-facing router.
pub fn internal_router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/metrics",
            get(|State(app): State<Arc<App>>| async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    app.metrics.encode(),
                )
            }),
        )
        .fallback(internal)
        .with_state(app)
}

async fn ingest(State(app): State<Arc<App>>, req: Request) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let (channel, input, response) = handle_ingest(&app, req).await;
    let status = response.status();
    if !status.is_success() {
        let reason = response
            .extensions()
            .get::<Reason>()
            .map_or("", |r| r.0.as_str());
        if reason == crate::auth::CHALLENGE_REASON || reason == crate::auth::STALE_REASON {
            // Challenges are part of the Digest protocol (every exchange starts with one), not
            // refusals an operator must look at.
            tracing::debug!(%method, path, channel, input, "ingest challenged for credentials");
        } else {
            tracing::warn!(%method, path, status = status.as_u16(), channel, input, reason, "ingest refused");
        }
    }
    app.metrics
        .ingest_requests
        .get_or_create(&RequestLabels {
            channel: channel.clone(),
            input: input.clone(),
            method: method.as_str().to_owned(),
            status_class: status_class(status.as_u16()),
        })
        .inc();
    app.metrics
        .ingest_duration
        .get_or_create(&InputLabels { channel, input })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Returns the channel and input labels (bounded: unknown values are collapsed) and the answer.
async fn handle_ingest(app: &App, req: Request) -> (String, String, Response) {
    let unknown = || ("_unknown".to_owned(), "_".to_owned());
    let limits = &app.settings.server;
    let target = match ingest_path::parse(req.uri().path(), limits.max_path_bytes) {
        Ok(t) => t,
        Err(e) => {
            let status = match &e {
                PathError::TooLong { .. } => StatusCode::URI_TOO_LONG,
                PathError::NotIngest | PathError::BadInput(_) => StatusCode::NOT_FOUND,
                PathError::Forbidden(_) => StatusCode::BAD_REQUEST,
            };
            let (c, i) = unknown();
            return (c, i, text(status, e.to_string()));
        }
    };
    let Some(state) = app.channels.get(&target.channel) else {
        let (c, i) = unknown();
        let mut known: Vec<&str> = app.channels.keys().map(String::as_str).collect();
        known.sort_unstable();
        return (
            c,
            i,
            text(
                StatusCode::NOT_FOUND,
                format!(
                    "unknown channel '{}'; configured: {}",
                    target.channel,
                    known.join(", ")
                ),
            ),
        );
    };
    let labels = (target.channel.clone(), (target.input + 1).to_string());
    let method = req.method().clone();
    let allowed = "OPTIONS, PUT, DELETE, MKCOL";
    if method == Method::OPTIONS {
        let mut r = StatusCode::OK.into_response();
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allowed));
        r.headers_mut().insert("dav", HeaderValue::from_static("1"));
        return (labels.0, labels.1, r);
    }
    if !matches!(method.as_str(), "PUT" | "DELETE" | "MKCOL") {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "method {method} is not supported for ingest; use PUT, DELETE, MKCOL or OPTIONS"
            ),
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allowed));
        return (labels.0, labels.1, r);
    }
    // Authenticate before touching the body: hyper sends `100 Continue` only when the body is
    // first read, and ffmpeg retries with credentials only when the 401 replaces it.
    // Credentials come from the immutable settings, not the channel lock, so a 401 never waits
    // behind another upload's disk I/O.
    let Some(creds) = app
        .settings
        .channels
        .iter()
        .find(|c| c.id == target.channel)
        .map(|c| &c.inputs[target.input])
    else {
        return (
            labels.0,
            labels.1,
            text(StatusCode::NOT_FOUND, "unknown channel"),
        );
    };
    let request_target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
    let authz = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Err(failure) = app
        .auth
        .verify(authz, method.as_str(), &request_target, creds)
    {
        let mut r = text(StatusCode::UNAUTHORIZED, failure.reason());
        for c in app.auth.challenges(failure == AuthFailure::Stale) {
            if let Ok(v) = HeaderValue::from_str(&c) {
                r.headers_mut().append(header::WWW_AUTHENTICATE, v);
            }
        }
        return (labels.0, labels.1, r);
    }
    let response = match method.as_str() {
        "MKCOL" => StatusCode::CREATED.into_response(),
        "DELETE" => {
            let state = state.clone();
            let file = target.file.clone();
            let input = target.input;
            match blocking(move || state.blocking_lock().delete(input, &file)).await {
                Ok(()) => StatusCode::NO_CONTENT.into_response(),
                Err(e) => io_error_response(&e),
            }
        }
        _ => put(app, state.clone(), &target, req).await,
    };
    (labels.0, labels.1, response)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| std::io::Error::other(format!("worker failed: {e}")))?
}

fn io_error_response(e: &std::io::Error) -> Response {
    if disk::is_storage_full(e) {
        text(
            StatusCode::INSUFFICIENT_STORAGE,
            format!("storage is full; nothing was written: {e}"),
        )
    } else {
        tracing::error!(error = %e, "storage error");
        text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("storage error; nothing was written: {e}"),
        )
    }
}

async fn put(
    app: &App,
    state: Arc<Mutex<ChannelState>>,
    target: &ingest_path::IngestTarget,
    req: Request,
) -> Response {
    let limits = &app.settings.server;
    let playlist = ingest_path::is_playlist(&target.file);
    let limit = if playlist {
        limits.max_playlist_bytes
    } else {
        limits.max_segment_bytes
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} of {} bytes is over the limit of {limit} bytes",
                if playlist { "playlist" } else { "file" },
                declared.unwrap_or(0)
            ),
        );
    }
    let labels = InputLabels {
        channel: target.channel.clone(),
        input: (target.input + 1).to_string(),
    };
    let too_large = || {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} is over the limit of {limit} bytes; nothing was stored",
                if playlist { "playlist" } else { "file" }
            ),
        )
    };
    if playlist {
        let body = match http_body_util::Limited::new(req.into_body(), limit as usize)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
            Err(e) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("upload interrupted: {e}; nothing was stored"),
                );
            }
        };
        let size = body.len() as u64;
        let input = target.input;
        let file = target.file.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            state.blocking_lock().accept_playlist(input, &file, &body)
        })
        .await;
        return match outcome {
            Ok(Ok(accepted)) => {
                app.metrics
                    .ingress_bytes
                    .get_or_create(&labels)
                    .inc_by(size);
                app.metrics
                    .segments_stored
                    .get_or_create(&labels)
                    .inc_by(accepted.segments_indexed);
                if accepted.created {
                    StatusCode::CREATED.into_response()
                } else {
                    StatusCode::NO_CONTENT.into_response()
                }
            }
            Ok(Err(IngestError::Io(e))) => io_error_response(&e),
            Ok(Err(e @ IngestError::Regressed { .. })) => text(StatusCode::CONFLICT, e.to_string()),
            Ok(Err(e)) => text(
                StatusCode::BAD_REQUEST,
                format!("playlist refused, previous one kept: {e}"),
            ),
            Err(e) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("worker failed: {e}"),
            ),
        };
    }

    // A segment (or any other file): stream it to a temp file, then commit it atomically.
    let tmp = match state.lock().await.upload_temp_path() {
        Ok(t) => t,
        Err(e) => return io_error_response(&e),
    };
    // Removes the temp file if this future is dropped before the upload is committed.
    let mut guard = TempGuard(Some(tmp.clone()));
    let written = stream_to_file(req.into_body(), &tmp, limit).await;
    let (size, digest) = match written {
        Ok(v) => v,
        Err(failure) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return match failure {
                UploadFailure::TooLarge => too_large(),
                UploadFailure::Body(e) => text(
                    StatusCode::BAD_REQUEST,
                    format!("upload interrupted: {e}; nothing was stored"),
                ),
                UploadFailure::Io(e) => io_error_response(&e),
            };
        }
    };
    let input = target.input;
    let file = target.file.clone();
    let tmp2 = tmp.clone();
    // From here the commit owns the temp file (and removes it itself if it fails).
    guard.0 = None;
    let result = blocking(move || {
        state
            .blocking_lock()
            .commit_upload(input, &file, &tmp2, size, etag_of(&digest))
    })
    .await;
    match result {
        Ok(indexed) => {
            app.metrics
                .ingress_bytes
                .get_or_create(&labels)
                .inc_by(size);
            app.metrics
                .segments_stored
                .get_or_create(&labels)
                .inc_by(indexed);
            StatusCode::CREATED.into_response()
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            io_error_response(&e)
        }
    }
}

struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

enum UploadFailure {
    TooLarge,
    Body(String),
    Io(std::io::Error),
}

async fn stream_to_file(
    body: Body,
    tmp: &PathBuf,
    limit: u64,
) -> Result<(u64, Vec<u8>), UploadFailure> {
    let mut file = tokio::fs::File::create(tmp)
        .await
        .map_err(UploadFailure::Io)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| UploadFailure::Body(e.to_string()))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(UploadFailure::TooLarge);
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(UploadFailure::Io)?;
    }
    file.sync_all().await.map_err(UploadFailure::Io)?;
    Ok((size, hasher.finalize().to_vec()))
}

async fn internal(State(app): State<Arc<App>>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let (channel, response) =
        handle_internal(&app, &parts.method, parts.uri.path(), &parts.headers).await;
    app.metrics
        .store_requests
        .get_or_create(&RequestLabels {
            channel,
            input: response
                .headers()
                .get(ACTIVE_INPUT_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("_")
                .to_owned(),
            method: parts.method.as_str().to_owned(),
            status_class: status_class(response.status().as_u16()),
        })
        .inc();
    response
}

fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

fn playlist_response(headers: &HeaderMap, r: Rendered) -> Response {
    let mut resp = if not_modified(headers, &r.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "application/vnd.apple.mpegurl")],
            r.body,
        )
            .into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&r.etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

fn content_type(ext: &str) -> &'static str {
    match ext {
        "ts" => "video/mp2t",
        "aac" => "audio/aac",
        "m4s" | "mp4" => "video/mp4",
        "vtt" => "text/vtt",
        _ => "application/octet-stream",
    }
}

async fn handle_internal(
    app: &App,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> (String, Response) {
    let unknown = "_unknown".to_owned();
    if method != Method::GET && method != Method::HEAD {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "the store API is read-only: use GET or HEAD",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return (unknown, r);
    }
    let Some(rest) = path.strip_prefix("/store/v1/") else {
        return (
            unknown,
            text(
                StatusCode::NOT_FOUND,
                format!("no such path '{path}'; the store API is /store/v1/{{channel}}/…"),
            ),
        );
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let Some(state) = parts.first().and_then(|c| app.channels.get(*c)) else {
        return (
            unknown,
            text(
                StatusCode::NOT_FOUND,
                format!("unknown channel '{}'", parts.first().unwrap_or(&"")),
            ),
        );
    };
    let channel = parts[0].to_owned();
    let mut st = state.lock().await;
    // `{rendition}/at/{ms}.{ext}`: the segment whose program date time is `ms` (epoch ms), for
    // clients that address segments by time (DASH `$Time$`); served as `{sequence}.{ext}`.
    let by_time;
    let parts: Vec<&str> = match parts[..] {
        [c, rid, "at", file] => {
            let seq = file
                .split_once('.')
                .and_then(|(ms, ext)| Some((ms.parse::<i64>().ok()?, ext)))
                .and_then(|(ms, ext)| Some((st.sequence_at(rid, ms)?, ext)));
            match seq {
                Some((seq, ext)) => {
                    by_time = format!("{seq}.{ext}");
                    vec![c, rid, by_time.as_str()]
                }
                None => {
                    let r = text(
                        StatusCode::NOT_FOUND,
                        format!(
                            "no segment of '{channel}/{rid}' starts at program date time {file} (epoch ms) in the startover window"
                        ),
                    );
                    return (channel, r);
                }
            }
        }
        _ => parts,
    };
    let mut response = match parts[1..] {
        ["index.m3u8"] => match st.multivariant() {
            Some(r) => playlist_response(headers, r),
            None => text(
                StatusCode::NOT_FOUND,
                format!("channel '{channel}' has no content yet: no encoder has published"),
            ),
        },
        ["status"] => {
            let body = st.status().to_string();
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        [rid, "index.m3u8"] => match st.media_playlist(rid) {
            Some(r) => playlist_response(headers, r),
            None => text(
                StatusCode::NOT_FOUND,
                format!("channel '{channel}' has no rendition '{rid}'"),
            ),
        },
        // fMP4 initialization segments: by id (as the media playlist's EXT-X-MAP names them), or
        // the newest one as `init.mp4`.
        [rid, file]
            if file == "init.mp4" || (file.starts_with("init-") && file.ends_with(".mp4")) =>
        {
            let id = match file
                .strip_prefix("init-")
                .and_then(|f| f.strip_suffix(".mp4"))
            {
                Some(id) => Some(id.to_owned()),
                None => st.latest_init(rid),
            };
            let found = id
                .as_deref()
                .and_then(|id| Some((id.to_owned(), st.init(rid, id)?)));
            drop(st);
            let Some((id, path)) = found else {
                return (
                    channel.clone(),
                    text(
                        StatusCode::NOT_FOUND,
                        format!(
                            "'{channel}/{rid}' has no initialization segment '{file}' (fMP4 ingest only)"
                        ),
                    ),
                );
            };
            let etag = format!("\"{id}\"");
            let mut r = if not_modified(headers, &etag) {
                StatusCode::NOT_MODIFIED.into_response()
            } else {
                match tokio::fs::read(&path).await {
                    Ok(bytes) => ([(header::CONTENT_TYPE, "video/mp4")], bytes).into_response(),
                    Err(_) => text(
                        StatusCode::NOT_FOUND,
                        format!("initialization segment '{file}' just left the startover window"),
                    ),
                }
            };
            if let Ok(v) = HeaderValue::from_str(&etag) {
                r.headers_mut().insert(header::ETAG, v);
            }
            return (channel, r);
        }
        [rid, file] => {
            let found = file
                .split_once('.')
                .and_then(|(seq, ext)| Some((seq.parse::<u64>().ok()?, ext)))
                .and_then(|(seq, ext)| st.segment(rid, seq, ext));
            match found {
                None if !st.has_rendition(rid) => text(
                    StatusCode::NOT_FOUND,
                    format!("channel '{channel}' has no rendition '{rid}'"),
                ),
                None => text(
                    StatusCode::NOT_FOUND,
                    format!("segment '{file}' of '{channel}/{rid}' is not in the startover window"),
                ),
                Some(seg) => {
                    // Before a restart's first upload no input is active yet: name the served one.
                    let active = st.active().unwrap_or(seg.input);
                    // The file is read without holding the channel.
                    drop(st);
                    let etag = format!("\"{}\"", seg.copy.etag);
                    let mut r = if not_modified(headers, &etag) {
                        StatusCode::NOT_MODIFIED.into_response()
                    } else {
                        match tokio::fs::File::open(&seg.path).await {
                            Ok(f) => {
                                let body = Body::from_stream(tokio_util::io::ReaderStream::new(f));
                                let mut r = body.into_response();
                                r.headers_mut().insert(
                                    header::CONTENT_TYPE,
                                    HeaderValue::from_static(content_type(&seg.copy.ext)),
                                );
                                r.headers_mut()
                                    .insert(header::CONTENT_LENGTH, seg.copy.size.into());
                                r
                            }
                            // Pruned between lookup and open.
                            Err(_) => text(
                                StatusCode::NOT_FOUND,
                                format!("segment '{file}' just left the startover window"),
                            ),
                        }
                    };
                    if let Ok(v) = HeaderValue::from_str(&etag) {
                        r.headers_mut().insert(header::ETAG, v);
                    }
                    r.headers_mut()
                        .insert(ACTIVE_INPUT_HEADER, HeaderValue::from(active as u64 + 1));
                    // The filter picks the segment's key period from its program date time.
                    if let Ok(v) = HeaderValue::from_str(
                        &seg.pdt.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    ) {
                        r.headers_mut().insert("x-edgepack-program-date-time", v);
                    }
                    if let Ok(v) = HeaderValue::from_str(&format!("{:.6}", seg.duration)) {
                        r.headers_mut().insert("x-edgepack-duration", v);
                    }
                    r.headers_mut().insert(
                        "x-edgepack-served-input",
                        HeaderValue::from(seg.input as u64 + 1),
                    );
                    r.headers_mut()
                        .insert("x-edgepack-sequence", HeaderValue::from(seg.seq));
                    return (channel, r);
                }
            }
        }
        _ => text(
            StatusCode::NOT_FOUND,
            format!(
                "no such path '{path}'; use index.m3u8, status, {{rendition}}/index.m3u8, {{rendition}}/{{sequence}}.{{ext}}, {{rendition}}/at/{{epoch-ms}}.{{ext}} or {{rendition}}/init.mp4"
            ),
        ),
    };
    if let Some(a) = st.active() {
        response
            .headers_mut()
            .insert(ACTIVE_INPUT_HEADER, HeaderValue::from(a as u64 + 1));
    }
    (channel, response)
}

/// Serves `router` on `listener` until `stop` turns true, then waits (up to 5 s) for requests in
/// flight.
///
/// HTTP/1 half-close is on: ffmpeg sends the last chunk of an upload and closes its socket
/// without reading the answer, and a server that treats that EOF as an abort would drop the
/// upload it just received in full. A connection cut *inside* a body still fails the body.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let service = hyper_util::service::TowerToHyperService::new(router.clone());
                let conn = hyper::server::conn::http1::Builder::new()
                    .half_close(true)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            _ = stop.changed() => break,
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}

/// Failover checks four times a second, pruning every 5 s, upload GC every minute.
pub async fn housekeeping(app: Arc<App>) {
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    let stale = Duration::from_secs(app.settings.server.stale_upload_seconds);
    loop {
        ticker.tick().await;
        n += 1;
        for (id, state) in &app.channels {
            let state = state.clone();
            let prune = n.is_multiple_of(20);
            let gc = n.is_multiple_of(240);
            let result = blocking(move || {
                let mut st = state.blocking_lock();
                let failover = st.tick(Instant::now())?;
                if prune {
                    st.prune(chrono::Utc::now().timestamp_millis())?;
                }
                if gc {
                    st.gc_uploads(stale)?;
                }
                Ok((failover, st.active(), st.retained_segments()))
            })
            .await;
            let labels = ChannelLabels {
                channel: id.clone(),
            };
            match result {
                Ok((failover, active, retained)) => {
                    if let Some(f) = failover {
                        tracing::warn!(
                            channel = %id,
                            from = f.from + 1,
                            to = f.to + 1,
                            "input failover: active input stopped advancing"
                        );
                        app.metrics.failovers.get_or_create(&labels).inc();
                    }
                    app.metrics
                        .active_input
                        .get_or_create(&labels)
                        .set(active.map_or(0, |a| a as i64 + 1));
                    app.metrics
                        .segments_retained
                        .get_or_create(&labels)
                        .set(retained as i64);
                }
                Err(e) => tracing::error!(channel = %id, error = %e, "housekeeping failed"),
            }
        }
    }
}
