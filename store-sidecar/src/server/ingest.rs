//! The encoder-facing listener: `PUT|DELETE|MKCOL|OPTIONS /in/v1/{channel}/{input}/{file}` with
//! Digest or Basic credentials per input, `GET /healthz`, and the admin API (`admin`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::BodyExt as _;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::Mutex;

use super::error::{ApiError, INGEST_METHODS, Reason};
use super::{App, ClientAddr, access_log, blocking};
use crate::auth::AuthFailure;
use crate::channel::{ChannelState, etag_of};
use crate::ingest_path::{self, IngestTarget};
use crate::metrics::{InputLabels, RequestLabels, status_class};

/// The encoder-facing router.
///
/// Ingest paths are checked by [`ingest_path::parse`] on the raw request target, not by a typed
/// `Path` extractor: it percent-decodes each component once and refuses what decodes to a
/// traversal (`%2e%2e`, `%2f`), which an extractor's decoded values would hide. The fallback
/// goes through the same handler, so a path that is not an ingest path is refused with the
/// reason (and the 414 for an over-long one comes before anything else).
pub fn ingest_router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/in/v1/{channel}/{input}/{*file}", any(ingest))
        .route(
            "/admin/v1/channels/{channel}/reset",
            any(super::admin::reset),
        )
        .route(
            "/admin/v1/channels/{channel}/harvest",
            any(super::admin::harvest),
        )
        .route("/admin/v1/harvests/{id}", any(super::admin::harvest_status))
        .fallback(ingest)
        .with_state(app)
}

/// Answers one ingest request; logs refusals, counts and times every request.
async fn ingest(State(app): State<Arc<App>>, req: Request) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let client = req.extensions().get::<ClientAddr>().map(|c| c.0);
    let user = crate::auth::presented_user(
        req.headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    );
    let (channel, input, response) = route(&app, req).await;
    let status = response.status();
    access_log::write(
        app.settings.server.access_log,
        &access_log::Line {
            channel: &channel,
            input: &input,
            method: method.as_str(),
            path: &path,
            status: status.as_u16(),
            bytes: response
                .extensions()
                .get::<StoredBytes>()
                .map_or(0, |b| b.0),
            duration: started.elapsed(),
            user: user.as_deref(),
            client,
        },
    );
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
async fn route(app: &App, req: Request) -> (String, String, Response) {
    let unknown = |e: ApiError| ("_unknown".to_owned(), "_".to_owned(), e.into_response());
    let target = match ingest_path::parse(req.uri().path(), app.settings.server.max_path_bytes) {
        Ok(t) => t,
        Err(e) => return unknown(e.into()),
    };
    let Some(state) = app.channels.get(&target.channel) else {
        let mut known: Vec<&str> = app.channels.keys().map(String::as_str).collect();
        known.sort_unstable();
        return unknown(ApiError::UnknownIngestChannel {
            channel: target.channel,
            configured: known.join(", "),
        });
    };
    let (channel, input) = (target.channel.clone(), (target.input + 1).to_string());
    let response = match handle(app, state.clone(), &target, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    (channel, input, response)
}

async fn handle(
    app: &App,
    state: Arc<Mutex<ChannelState>>,
    target: &IngestTarget,
    req: Request,
) -> Result<Response, ApiError> {
    let method = req.method().clone();
    if method == Method::OPTIONS {
        let mut r = StatusCode::OK.into_response();
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(INGEST_METHODS));
        r.headers_mut().insert("dav", HeaderValue::from_static("1"));
        return Ok(r);
    }
    // POST uploads as PUT does: ffmpeg (5.1) POSTs its WebVTT playlists even with `-method PUT`.
    if !matches!(method.as_str(), "PUT" | "POST" | "DELETE" | "MKCOL") {
        return Err(ApiError::IngestMethod(method));
    }
    // Authenticate before touching the body: hyper sends `100 Continue` only when the body is
    // first read, and ffmpeg retries with credentials only when the 401 replaces it.
    authenticate(app, target, &req)?;
    if !app.settings.local_inputs()[target.input] {
        return Err(ApiError::NotThisHost {
            channel: target.channel.clone(),
            input: target.input + 1,
            inputs: if app.settings.server.role == crate::config::Role::Edge {
                Vec::new()
            } else {
                app.settings.server.ingest_inputs.clone()
            },
        });
    }
    match method.as_str() {
        "MKCOL" => Ok(StatusCode::CREATED.into_response()),
        "DELETE" => {
            let file = target.file.clone();
            let input = target.input;
            blocking(move || state.blocking_lock().delete(input, &file))
                .await
                .map_err(ApiError::Storage)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => put(app, state, target, req).await,
    }
}

/// Checks the request's credentials against the input's. They come from the immutable
/// settings, not the channel lock, so a 401 never waits behind another upload's disk I/O.
fn authenticate(app: &App, target: &IngestTarget, req: &Request) -> Result<(), ApiError> {
    let creds = app
        .settings
        .channels
        .iter()
        .find(|c| c.id == target.channel)
        .map(|c| &c.inputs[target.input])
        .ok_or(ApiError::NoCredentials)?;
    let request_target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
    let authz = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    app.auth
        .verify(authz, req.method().as_str(), &request_target, creds)
        .map_err(|failure| ApiError::Unauthorized {
            challenges: app.auth.challenges(matches!(
                failure,
                AuthFailure::Stale | AuthFailure::Replayed
            )),
            failure,
        })
}

/// What a PUT stored.
struct Stored {
    bytes: u64,
    indexed: u64,
    /// 201 (a new playlist, or any file) rather than 204 (a playlist replaced).
    created: bool,
}

async fn put(
    app: &App,
    state: Arc<Mutex<ChannelState>>,
    target: &IngestTarget,
    req: Request,
) -> Result<Response, ApiError> {
    let limits = &app.settings.server;
    let playlist = ingest_path::is_playlist(&target.file);
    let (limit, what) = if playlist {
        (limits.max_playlist_bytes, "playlist")
    } else {
        (limits.max_segment_bytes, "file")
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(declared) = declared.filter(|n| *n > limit) {
        return Err(ApiError::DeclaredTooLarge {
            what,
            declared,
            limit,
        });
    }
    let body = req.into_body();
    let stored = if playlist {
        // In a bucket: what the other ingest sidecar indexed first, so this playlist's segments
        // are numbered after it.
        publish(app, &target.channel, "playlist").await?;
        put_playlist(state, target, body, limit).await?
    } else {
        let idle = std::time::Duration::from_secs(limits.idle_timeout_seconds);
        put_file(app, state, target, body, limit, idle).await?
    };
    // The index changes this upload made, in the bucket before the answer.
    publish(app, &target.channel, what).await?;
    let labels = InputLabels {
        channel: target.channel.clone(),
        input: (target.input + 1).to_string(),
    };
    app.metrics
        .ingress_bytes
        .get_or_create(&labels)
        .inc_by(stored.bytes);
    app.metrics
        .segments_stored
        .get_or_create(&labels)
        .inc_by(stored.indexed);
    let mut r = if stored.created {
        StatusCode::CREATED.into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    };
    r.extensions_mut().insert(StoredBytes(stored.bytes));
    Ok(r)
}

/// In a bucket: brings the channel up to date with the log and publishes its changes (503 with
/// `Retry-After` when the bucket does not answer).
async fn publish(app: &App, channel: &str, what: &'static str) -> Result<(), ApiError> {
    super::replication::sync(app, channel)
        .await
        .map_err(|e| ApiError::BucketWrite {
            what,
            error: e.message,
        })
}

/// The body bytes a PUT stored, kept on its answer for the access log.
#[derive(Clone, Copy)]
struct StoredBytes(u64);

/// A playlist: read whole (it is small and must parse before anything changes), then applied.
async fn put_playlist(
    state: Arc<Mutex<ChannelState>>,
    target: &IngestTarget,
    body: Body,
    limit: u64,
) -> Result<Stored, ApiError> {
    let body = match http_body_util::Limited::new(body, limit as usize)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(ApiError::TooLarge {
                what: "playlist",
                limit,
            });
        }
        Err(e) => return Err(ApiError::Interrupted(e.to_string())),
    };
    let bytes = body.len() as u64;
    let input = target.input;
    let file = target.file.clone();
    let accepted = tokio::task::spawn_blocking(move || {
        state.blocking_lock().accept_playlist(input, &file, &body)
    })
    .await
    .map_err(|e| ApiError::Worker(e.to_string()))??;
    Ok(Stored {
        bytes,
        indexed: accepted.segments_indexed,
        created: accepted.created,
    })
}

/// A segment (or any other file): streamed to a temp file, then committed atomically.
async fn put_file(
    app: &App,
    state: Arc<Mutex<ChannelState>>,
    target: &IngestTarget,
    body: Body,
    limit: u64,
    idle: std::time::Duration,
) -> Result<Stored, ApiError> {
    let tmp = state
        .lock()
        .await
        .upload_temp_path()
        .map_err(ApiError::Storage)?;
    // Removes the temp file if this future is dropped before the upload is committed.
    let mut guard = TempGuard(Some(tmp.clone()));
    let (bytes, digest) = match stream_to_file(body, &tmp, limit, idle).await {
        Ok(v) => v,
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
    };
    // In a bucket: the bytes are there, under their content hash, before anything is committed.
    if let Some(bucket) = &app.bucket {
        let stored = match tokio::fs::read(&tmp).await {
            Ok(b) => bucket
                .put_media(&target.channel, &etag_of(&digest), Bytes::from(b))
                .await
                .map_err(|e| ApiError::BucketWrite {
                    what: "file",
                    error: e.message,
                }),
            Err(e) => Err(ApiError::Storage(e)),
        };
        if let Err(e) = stored {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
    }
    let input = target.input;
    let file = target.file.clone();
    let tmp2 = tmp.clone();
    // From here the commit owns the temp file (and removes it itself if it fails).
    guard.0 = None;
    let result = tokio::task::spawn_blocking(move || {
        state
            .blocking_lock()
            .commit_upload(input, &file, &tmp2, bytes, etag_of(&digest))
    })
    .await;
    match result {
        Ok(Ok(indexed)) => Ok(Stored {
            bytes,
            indexed,
            created: true,
        }),
        Ok(Err(e)) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            Err(e.into())
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            Err(ApiError::Worker(e.to_string()))
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

/// Writes the body to `tmp` (fsynced) while hashing it; returns its size and SHA-256.
async fn stream_to_file(
    body: Body,
    tmp: &Path,
    limit: u64,
    idle: std::time::Duration,
) -> Result<(u64, Vec<u8>), ApiError> {
    let mut file = tokio::fs::File::create(tmp)
        .await
        .map_err(ApiError::Storage)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut stream = body.into_data_stream();
    loop {
        let Ok(next) = tokio::time::timeout(idle, stream.next()).await else {
            return Err(ApiError::Stalled(idle.as_secs()));
        };
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| ApiError::Interrupted(e.to_string()))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(ApiError::TooLarge {
                what: "file",
                limit,
            });
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(ApiError::Storage)?;
    }
    file.sync_all().await.map_err(ApiError::Storage)?;
    Ok((size, hasher.finalize().to_vec()))
}

#[cfg(test)]
mod tests {
    use axum::http::Request;
    use base64::Engine as _;

    use super::super::test_support::*;
    use super::*;

    fn put(path: &str, auth: Option<&str>, body: &'static [u8]) -> Request<Body> {
        let mut b = Request::put(path);
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(Body::from(body)).unwrap()
    }

    fn basic(user: &str, password: &str) -> String {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {token}")
    }

    #[tokio::test]
    async fn ingest_without_credentials_is_challenged() {
        let d = tempfile::tempdir().unwrap();
        let router = ingest_router(app(d.path()));
        let (r, body) = send(&router, put("/in/v1/news/1/seg5.ts", None, b"x")).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(body, "credentials required (Digest or Basic)\n");
        let challenges: Vec<&str> = r
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(challenges.len(), 3, "{challenges:?}");
        assert!(challenges[0].starts_with("Digest ") && challenges[0].contains("SHA-256"));
        assert!(challenges[1].contains("algorithm=MD5"));
        assert!(challenges[2].starts_with("Basic realm=\"edgepack\""));
        // The other input's password does not open this one.
        let wrong = basic("enc1", "secret-2");
        let (r, body) = send(&router, put("/in/v1/news/1/seg5.ts", Some(&wrong), b"x")).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(body, "wrong username or password for this input\n");
    }

    /// #16 §3: client mistakes in paths are 4xx, never 500: a name over 255 bytes, a file
    /// where a directory was (and the other way round).
    #[tokio::test]
    async fn path_mistakes_are_client_errors() {
        let d = tempfile::tempdir().unwrap();
        let router = ingest_router(app(d.path()));
        let ok = basic("enc1", PASSWORD_1);
        let long = format!("/in/v1/news/1/{}.ts", "n".repeat(300));
        let (r, body) = send(&router, put(&long, Some(&ok), b"x")).await;
        assert_eq!(r.status(), StatusCode::URI_TOO_LONG, "{body}");
        assert!(
            body.contains("over the file system's limit of 255"),
            "{body}"
        );
        for (first, second) in [("a.ts", "a.ts/b.ts"), ("x/y.ts", "x")] {
            let (r, _) = send(
                &router,
                put(&format!("/in/v1/news/1/{first}"), Some(&ok), b"1"),
            )
            .await;
            assert_eq!(r.status(), StatusCode::CREATED);
            let (r, body) = send(
                &router,
                put(&format!("/in/v1/news/1/{second}"), Some(&ok), b"2"),
            )
            .await;
            assert_eq!(r.status(), StatusCode::CONFLICT, "{second}: {body}");
            assert!(body.contains("collides"), "{body}");
        }
    }

    #[tokio::test]
    async fn uploads_are_stored_and_refusals_say_why() {
        let d = tempfile::tempdir().unwrap();
        let router = ingest_router(app(d.path()));
        let ok = basic("enc1", PASSWORD_1);
        let (r, _) = send(&router, put("/in/v1/news/1/seg5.ts", Some(&ok), b"ts")).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let playlist =
            b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:5\n#EXTINF:2.0,\nseg5.ts\n";
        let (r, _) = send(&router, put("/in/v1/news/1/hd.m3u8", Some(&ok), playlist)).await;
        assert_eq!(r.status(), StatusCode::CREATED, "a new playlist");
        let (r, _) = send(&router, put("/in/v1/news/1/hd.m3u8", Some(&ok), playlist)).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "a playlist replaced");

        let (r, body) = send(&router, put("/in/v1/sports/1/a.ts", Some(&ok), b"x")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(body, "unknown channel 'sports'; configured: news\n");
        let (r, body) = send(&router, put("/in/v1/news/1/hd.m3u8", Some(&ok), b"nope")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            "playlist refused, previous one kept: playlist does not start with #EXTM3U\n"
        );
        let (r, body) = send(&router, put("/in/v1/news/1/..%2fx.ts", Some(&ok), b"x")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains("not allowed"), "{body}");
        let (r, _) = send(&router, put("/elsewhere", Some(&ok), b"x")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);

        let get = Request::get("/in/v1/news/1/hd.m3u8")
            .body(Body::empty())
            .unwrap();
        let (r, body) = send(&router, get).await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(header(&r, "allow"), INGEST_METHODS);
        assert_eq!(
            body,
            "method GET is not supported for ingest; use PUT (or POST), DELETE, MKCOL or OPTIONS\n"
        );
        let options = Request::options("/in/v1/news/2/x")
            .body(Body::empty())
            .unwrap();
        let (r, _) = send(&router, options).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "dav"), "1");
    }
}
