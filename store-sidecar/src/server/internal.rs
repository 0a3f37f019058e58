//! The filter-facing internal API (unauthenticated: bind it to loopback or a private network):
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /store/v1/{channel}/index.m3u8` | multivariant playlist |
//! | `GET /store/v1/{channel}/status` | JSON status |
//! | `GET /store/v1/{channel}/{rendition}/index.m3u8` | media playlist, whole window |
//! | `GET /store/v1/{channel}/{rendition}/{sequence}.{ext}` | segment (`.media`: whatever its container; fMP4 ones name their init in `x-edgepack-init`) |
//! | `GET /store/v1/{channel}/{rendition}/at/{epoch-ms}.{ext}` | segment by program date time |
//! | `GET /store/v1/{channel}/{rendition}/init.mp4`, `init-{id}.mp4` | fMP4 initialization segment |
//! | `GET /metrics`, `GET /healthz` | Prometheus text, liveness |
//!
//! Every answer about a channel names its active input ([`ACTIVE_INPUT_HEADER`]), except
//! initialization segments and by-time lookups that find nothing.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use edgepack_store_api::api::{
    self, ACTIVE_INPUT_HEADER, DURATION_HEADER, ETAG_HEADER, INIT_HEADER, PLAYLIST_CONTENT_TYPE,
    PROGRAM_DATE_TIME_HEADER, PathError, RenditionFile, SEQUENCE_HEADER, SERVED_INPUT_HEADER,
    STATUS_CONTENT_TYPE, content_type, parse_rendition_file, parse_segment_at_file,
};
use edgepack_store_api::format_pdt;
use edgepack_store_api::window::ViewQuery;
use serde::de::DeserializeOwned;
use tokio::sync::{Mutex, MutexGuard};

use super::App;
use super::error::ApiError;
use crate::bucket::{BucketError, BucketErrorKind};
use crate::channel::{ChannelState, Rendered, SegmentFile};
use crate::metrics::{RequestLabels, status_class};

/// The filter-facing router.
pub fn internal_router(app: Arc<App>) -> Router {
    Router::new()
        .route(
            "/store/v1/{channel}/index.m3u8",
            get(multivariant).fallback(read_only),
        )
        .route(
            "/store/v1/{channel}/status",
            get(status).fallback(read_only),
        )
        .route(
            "/store/v1/{channel}/{rendition}/{file}",
            get(rendition_file).fallback(read_only),
        )
        .route(
            "/store/v1/{channel}/{rendition}/at/{file}",
            get(segment_at).fallback(read_only),
        )
        .fallback(no_such_path)
        // Counts the routes above and the fallback, not the two below.
        .layer(middleware::from_fn_with_state(
            app.clone(),
            count_store_request,
        ))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .with_state(app)
}

async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.encode(),
    )
}

/// The channel an answer is about, for the request counter; none: `_unknown`.
#[derive(Clone)]
struct ChannelLabel(String);

async fn count_store_request(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let response = next.run(req).await;
    app.metrics
        .store_requests
        .get_or_create(&RequestLabels {
            channel: response
                .extensions()
                .get::<ChannelLabel>()
                .map_or_else(|| "_unknown".to_owned(), |c| c.0.clone()),
            input: response
                .headers()
                .get(ACTIVE_INPUT_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("_")
                .to_owned(),
            method,
            status_class: status_class(response.status().as_u16()),
        })
        .inc();
    response
}

/// The route's parameters; a parameter that is not UTF-8 once percent-decoded is refused as an
/// unknown path.
struct RouteParams<T>(T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for RouteParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(Self(v)),
            Err(_) => Err(unknown_path(parts.uri.path())),
        }
    }
}

fn channel(app: &App, id: &str) -> Result<Arc<Mutex<ChannelState>>, ApiError> {
    app.channels
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::UnknownChannel(id.to_owned()))
}

/// Finishes an answer about `channel`: labels it for the request counter and names the active
/// input when given.
fn about(channel: &str, active: Option<usize>, answer: Result<Response, ApiError>) -> Response {
    let mut r = answer.unwrap_or_else(IntoResponse::into_response);
    if let Some(a) = active {
        r.headers_mut()
            .insert(ACTIVE_INPUT_HEADER, HeaderValue::from(a as u64 + 1));
    }
    r.extensions_mut().insert(ChannelLabel(channel.to_owned()));
    r
}

/// Any method but GET and HEAD on a store route.
async fn read_only() -> ApiError {
    ApiError::ReadOnly
}

/// Every path no route takes: refused with what the store API does take.
async fn no_such_path(State(app): State<Arc<App>>, method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return ApiError::ReadOnly.into_response();
    }
    let refused = unknown_path(uri.path());
    let id = match &refused {
        ApiError::StorePath(PathError::UnknownFile { channel, .. }) => channel.clone(),
        _ => return refused.into_response(),
    };
    // Under a channel: an unknown channel is named first.
    let state = match channel(&app, &id) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let active = state.lock().await.active();
    about(&id, active, Err(refused))
}

/// A path no route takes, refused with the contract's reason.
fn unknown_path(path: &str) -> ApiError {
    match api::StorePath::parse(path) {
        Err(e) => e.into(),
        // A route takes every path of the API: only its parameters could not be read (not UTF-8
        // once percent-decoded).
        Ok(p) => ApiError::StorePath(PathError::UnknownFile {
            path: path.to_owned(),
            channel: p.channel().to_owned(),
        }),
    }
}

/// `GET /store/v1/{channel}/index.m3u8`
async fn multivariant(
    State(app): State<Arc<App>>,
    RouteParams(id): RouteParams<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let state = channel(&app, &id)?;
    let mut st = state.lock().await;
    let answer = match st.multivariant() {
        Some(r) => Ok(playlist_response(&headers, r)),
        None => Err(ApiError::NoContentYet(id.clone())),
    };
    Ok(about(&id, st.active(), answer))
}

/// `GET /store/v1/{channel}/status`
async fn status(
    State(app): State<Arc<App>>,
    RouteParams(id): RouteParams<String>,
) -> Result<Response, ApiError> {
    let state = channel(&app, &id)?;
    let st = state.lock().await;
    let body = st.status().to_string();
    let answer = ([(header::CONTENT_TYPE, STATUS_CONTENT_TYPE)], body).into_response();
    Ok(about(&id, st.active(), Ok(answer)))
}

/// `GET /store/v1/{channel}/{rendition}/{file}`: the media playlist, an fMP4 initialization
/// segment (by id, as the media playlist's EXT-X-MAP names it, or the newest as `init.mp4`), or
/// a segment.
async fn rendition_file(
    State(app): State<Arc<App>>,
    RouteParams((id, rid, file)): RouteParams<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let state = channel(&app, &id)?;
    let mut st = state.lock().await;
    let found = match parse_rendition_file(&file) {
        Some(RenditionFile::MediaPlaylist) => {
            // With a view query: just the part of the history the request needs.
            let view = ViewQuery::parse(query.as_deref().unwrap_or("")).map_err(ApiError::View)?;
            let rendered = match &view {
                Some(v) => st.media_view(&rid, v),
                None => st.media_playlist(&rid),
            };
            let answer = match rendered {
                Some(r) => Ok(playlist_response(&headers, r)),
                None => Err(no_rendition(&id, &rid)),
            };
            return Ok(about(&id, st.active(), answer));
        }
        Some(RenditionFile::LatestInit) => {
            return Ok(init_segment(&app, st, &id, &rid, None, &file, &headers).await);
        }
        Some(RenditionFile::Init { id: init_id }) => {
            let init_id = init_id.to_owned();
            return Ok(init_segment(&app, st, &id, &rid, Some(init_id), &file, &headers).await);
        }
        Some(RenditionFile::Segment { sequence, ext }) => st.segment(&rid, sequence, ext),
        // Not a file the store names: answered as a segment outside the window.
        None => None,
    };
    Ok(segment(&app, st, found, &id, &rid, &file, &headers).await)
}

/// `GET /store/v1/{channel}/{rendition}/at/{ms}.{ext}`: the segment whose program date time is
/// `ms` (epoch ms), for clients that address segments by time (DASH `$Time$`); served as
/// `{sequence}.{ext}`.
async fn segment_at(
    State(app): State<Arc<App>>,
    RouteParams((id, rid, file)): RouteParams<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let state = channel(&app, &id)?;
    let mut st = state.lock().await;
    let at =
        parse_segment_at_file(&file).and_then(|(ms, ext)| Some((st.sequence_at(&rid, ms)?, ext)));
    let Some((seq, ext)) = at else {
        let nothing = ApiError::NothingAt {
            channel: id.clone(),
            rendition: rid,
            file,
        };
        return Ok(about(&id, None, Err(nothing)));
    };
    let by_seq = api::segment_uri(seq, ext);
    let found = st.segment(&rid, seq, ext);
    Ok(segment(&app, st, found, &id, &rid, &by_seq, &headers).await)
}

fn no_rendition(id: &str, rid: &str) -> ApiError {
    ApiError::NoRendition {
        channel: id.to_owned(),
        rendition: rid.to_owned(),
    }
}

fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

fn with_etag(mut r: Response, etag: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(etag) {
        r.headers_mut().insert(ETAG_HEADER, v);
    }
    r
}

fn playlist_response(headers: &HeaderMap, r: Rendered) -> Response {
    let resp = if not_modified(headers, &r.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, PLAYLIST_CONTENT_TYPE)], r.body).into_response()
    };
    let mut resp = with_etag(resp, &r.etag);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// An fMP4 initialization segment: `init_id`'s, or (`None`) the newest segment's.
async fn init_segment(
    app: &App,
    st: MutexGuard<'_, ChannelState>,
    id: &str,
    rid: &str,
    init_id: Option<String>,
    file: &str,
    headers: &HeaderMap,
) -> Response {
    let found = init_id.or_else(|| st.latest_init(rid)).and_then(|i| {
        let path = st.init(rid, &i)?;
        Some((i, path))
    });
    drop(st);
    let Some((init_id, path)) = found else {
        let missing = ApiError::NoInit {
            channel: id.to_owned(),
            rendition: rid.to_owned(),
            file: file.to_owned(),
        };
        return about(id, None, Err(missing));
    };
    let etag = format!("\"{init_id}\"");
    let r = if not_modified(headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match read_media(app, id, &path, &init_id).await {
            Ok(bytes) => ([(header::CONTENT_TYPE, content_type("mp4"))], bytes).into_response(),
            Err(Missing::Gone) => ApiError::InitGone(file.to_owned()).into_response(),
            Err(Missing::Bucket(e)) => ApiError::BucketRead(e).into_response(),
        }
    };
    about(id, None, Ok(with_etag(r, &etag)))
}

/// Why stored bytes could not be read.
enum Missing {
    /// Pruned between the lookup and the read.
    Gone,
    /// The bucket did not answer (or not in time).
    Bucket(BucketError),
}

/// A segment's or initialization segment's bytes: this sidecar's own copy on disk, else (in a
/// bucket) the bucket's by content hash.
async fn read_media(
    app: &App,
    channel: &str,
    path: &std::path::Path,
    hash: &str,
) -> Result<Bytes, Missing> {
    match tokio::fs::read(path).await {
        Ok(b) => Ok(Bytes::from(b)),
        Err(_) => match &app.bucket {
            Some(bucket) => super::replication::media(app, bucket, channel, hash)
                .await
                .map_err(|e| match e.kind {
                    BucketErrorKind::NotFound => Missing::Gone,
                    _ => Missing::Bucket(e),
                }),
            None => Err(Missing::Gone),
        },
    }
}

/// A segment's answer: its bytes as the encoder sent them, with what the filter needs to know
/// about it in headers.
async fn segment(
    app: &App,
    st: MutexGuard<'_, ChannelState>,
    found: Option<SegmentFile>,
    id: &str,
    rid: &str,
    file: &str,
    headers: &HeaderMap,
) -> Response {
    let Some(seg) = found else {
        let missing = if st.has_rendition(rid) {
            ApiError::NotInWindow {
                channel: id.to_owned(),
                rendition: rid.to_owned(),
                file: file.to_owned(),
            }
        } else {
            no_rendition(id, rid)
        };
        return about(id, st.active(), Err(missing));
    };
    // Before a restart's first upload no input is active yet: name the served one.
    let active = st.active().unwrap_or(seg.input);
    // The file is read without holding the channel.
    drop(st);
    let etag = format!("\"{}\"", seg.copy.etag);
    let r = if not_modified(headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        // From memory, or one whole-file read (not a blocking-pool round trip per 4 KiB chunk).
        let bytes = match app.segments.get(&seg.path, &etag) {
            Some(b) => Ok(b),
            None => read_media(app, id, &seg.path, &seg.copy.etag)
                .await
                .inspect(|b| {
                    app.segments.put(&seg.path, &etag, b.clone());
                }),
        };
        match bytes {
            Ok(b) => {
                let mut r = Body::from(b).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(content_type(&seg.copy.ext)),
                );
                r.headers_mut()
                    .insert(header::CONTENT_LENGTH, seg.copy.size.into());
                r
            }
            // Pruned between lookup and open.
            Err(Missing::Gone) => ApiError::SegmentGone(file.to_owned()).into_response(),
            Err(Missing::Bucket(e)) => ApiError::BucketRead(e).into_response(),
        }
    };
    let mut r = with_etag(r, &etag);
    let h = r.headers_mut();
    // The filter picks the segment's key period from its program date time.
    if let Ok(v) = HeaderValue::from_str(&format_pdt(seg.pdt_ms)) {
        h.insert(PROGRAM_DATE_TIME_HEADER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{:.6}", seg.duration)) {
        h.insert(DURATION_HEADER, v);
    }
    h.insert(SERVED_INPUT_HEADER, HeaderValue::from(seg.input as u64 + 1));
    h.insert(SEQUENCE_HEADER, HeaderValue::from(seg.seq));
    // fMP4: the initialization segment a repackager needs with it.
    if let Some(v) = seg
        .copy
        .init
        .as_deref()
        .and_then(|i| HeaderValue::from_str(i).ok())
    {
        h.insert(INIT_HEADER, v);
    }
    about(id, Some(active), Ok(r))
}

#[cfg(test)]
mod tests {
    use axum::http::Request;
    use sha2::{Digest as _, Sha256};

    use super::super::test_support::*;
    use super::*;
    use crate::channel::etag_of;

    const SEGMENT: &[u8] = &[0x47; 1000];
    const PLAYLIST: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:5\n\
#EXTINF:2.000000,\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:00:00.000+0000\nseg5.ts\n";

    /// An app whose channel `news` has input 1's segment 5 of rendition `hd`.
    async fn seeded(dir: &std::path::Path) -> (Arc<App>, Router) {
        let app = app(dir);
        {
            let mut st = app.channels["news"].lock().await;
            let tmp = st.upload_temp_path().unwrap();
            std::fs::write(&tmp, SEGMENT).unwrap();
            let etag = etag_of(&Sha256::digest(SEGMENT));
            st.commit_upload(0, "seg5.ts", &tmp, SEGMENT.len() as u64, etag)
                .unwrap();
            st.accept_playlist(0, "hd.m3u8", PLAYLIST.as_bytes())
                .unwrap();
        }
        let router = internal_router(app.clone());
        (app, router)
    }

    fn get(path: &str) -> Request<Body> {
        Request::get(path).body(Body::empty()).unwrap()
    }

    fn revalidate(path: &str, etag: &str) -> Request<Body> {
        Request::get(path)
            .header(header::IF_NONE_MATCH, etag)
            .body(Body::empty())
            .unwrap()
    }

    /// #16 §3: an authenticated encoder's numeric extremes (target duration, media and
    /// discontinuity sequence at u64's limit) are refused with their limit, and change nothing:
    /// the rendition's view, the channel's failover timer and the cache headers stay as they were.
    #[tokio::test]
    async fn numeric_extremes_from_an_encoder_change_nothing() {
        let d = tempfile::tempdir().unwrap();
        let (app, router) = seeded(d.path()).await;
        let before = |path: &'static str| {
            let router = router.clone();
            async move {
                let (r, body) = send(&router, get(path)).await;
                (r.status(), header(&r, "cache-control").to_owned(), body)
            }
        };
        let view = before("/store/v1/news/hd/index.m3u8").await;
        let status = before("/store/v1/news/status").await;
        let max = u64::MAX;
        for extreme in [
            format!(
                "#EXTM3U\n#EXT-X-TARGETDURATION:{max}\n#EXT-X-MEDIA-SEQUENCE:6\n#EXTINF:2.0,\nseg6.ts\n"
            ),
            format!(
                "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{max}\n#EXTINF:2.0,\nseg6.ts\n#EXTINF:2.0,\nseg7.ts\n"
            ),
            format!(
                "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-DISCONTINUITY-SEQUENCE:{max}\n#EXT-X-MEDIA-SEQUENCE:6\n#EXTINF:2.0,\nseg6.ts\n"
            ),
        ] {
            let refused = app.channels["news"]
                .lock()
                .await
                .accept_playlist(0, "hd.m3u8", extreme.as_bytes())
                .map(|_| ())
                .unwrap_err();
            assert!(
                refused.to_string().contains("is over the limit of"),
                "{refused}"
            );
        }
        assert_eq!(before("/store/v1/news/hd/index.m3u8").await, view);
        assert_eq!(before("/store/v1/news/status").await, status);
    }

    /// #16 §3: a media playlist whose segments never arrive does not invent a variant.
    #[tokio::test]
    async fn a_playlist_of_segments_never_uploaded_makes_no_variant() {
        let d = tempfile::tempdir().unwrap();
        let (app, router) = seeded(d.path()).await;
        let ghost =
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nghost0.ts\n#EXTINF:2.0,\nghost1.ts\n";
        app.channels["news"]
            .lock()
            .await
            .accept_playlist(0, "ghost.m3u8", ghost.as_bytes())
            .unwrap();
        let (r, body) = send(&router, get("/store/v1/news/index.m3u8")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(body.contains("hd/index.m3u8"), "{body}");
        assert!(!body.contains("ghost"), "{body}");
    }

    #[tokio::test]
    async fn unknown_channel_is_404_naming_it() {
        let d = tempfile::tempdir().unwrap();
        let (app, router) = seeded(d.path()).await;
        let (r, body) = send(&router, get("/store/v1/sports/status")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(body, "unknown channel 'sports'\n");
        assert_eq!(header(&r, "content-type"), "text/plain; charset=utf-8");
        assert_eq!(header(&r, ACTIVE_INPUT_HEADER), "");
        let (r, body) = send(&router, get("/store/v1/sports/hd/5.ts")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(body, "unknown channel 'sports'\n");
        let metrics = app.metrics.encode();
        assert!(
            metrics.contains(
                "edgepack_store_internal_requests_total{channel=\"_unknown\",input=\"_\",method=\"GET\",status_class=\"4xx\"} 2"
            ),
            "{metrics}"
        );
    }

    #[tokio::test]
    async fn segment_carries_its_date_duration_and_etag_and_revalidates() {
        let d = tempfile::tempdir().unwrap();
        let (_, router) = seeded(d.path()).await;
        let (r, body) = send(&router, get("/store/v1/news/hd/5.ts")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(body.as_bytes(), SEGMENT);
        assert_eq!(header(&r, "content-type"), "video/mp2t");
        assert_eq!(header(&r, "content-length"), "1000");
        assert_eq!(
            header(&r, PROGRAM_DATE_TIME_HEADER),
            "2026-11-25T14:00:00.000Z"
        );
        assert_eq!(header(&r, DURATION_HEADER), "2.000000");
        assert_eq!(header(&r, SEQUENCE_HEADER), "5");
        assert_eq!(header(&r, SERVED_INPUT_HEADER), "1");
        assert_eq!(header(&r, ACTIVE_INPUT_HEADER), "1");
        assert!(
            r.headers().get(INIT_HEADER).is_none(),
            "MPEG-TS needs no init"
        );
        // `.media`: the segment whatever its container, its content type saying which.
        let (r, body) = send(&router, get("/store/v1/news/hd/5.media")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(body.as_bytes(), SEGMENT);
        assert_eq!(header(&r, "content-type"), "video/mp2t");
        let etag = format!("\"{}\"", etag_of(&Sha256::digest(SEGMENT)));
        assert_eq!(header(&r, ETAG_HEADER), etag);

        let (r, body) = send(&router, revalidate("/store/v1/news/hd/5.ts", &etag)).await;
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(body, "");
        assert_eq!(header(&r, ETAG_HEADER), etag);

        // By program date time: the same segment, named by its sequence number.
        let ms = 1_795_615_200_000_i64; // 2026-11-25T14:00:00Z
        let (r, body) = send(&router, get(&format!("/store/v1/news/hd/at/{ms}.ts"))).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(body.as_bytes(), SEGMENT);
        assert_eq!(header(&r, SEQUENCE_HEADER), "5");
        let (r, body) = send(&router, get("/store/v1/news/hd/at/5.ts")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            body,
            "no segment of 'news/hd' starts at program date time 5.ts (epoch ms) in the startover window\n"
        );
    }

    #[tokio::test]
    async fn playlists_revalidate_with_their_etag() {
        let d = tempfile::tempdir().unwrap();
        let (_, router) = seeded(d.path()).await;
        let (r, body) = send(&router, get("/store/v1/news/hd/index.m3u8")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "content-type"), PLAYLIST_CONTENT_TYPE);
        assert_eq!(header(&r, "cache-control"), "no-cache");
        assert!(body.contains("#EXT-X-MEDIA-SEQUENCE:5\n"), "{body}");
        assert!(body.ends_with("\n5.ts\n"), "{body}");
        let etag = header(&r, ETAG_HEADER).to_owned();
        let (r, _) = send(&router, revalidate("/store/v1/news/hd/index.m3u8", &etag)).await;
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header(&r, ACTIVE_INPUT_HEADER), "1");

        let (r, body) = send(&router, get("/store/v1/news/index.m3u8")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(body.contains("hd/index.m3u8"), "{body}");
        let (r, body) = send(&router, get("/store/v1/news/status")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "content-type"), STATUS_CONTENT_TYPE);
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status["active_input"], 1);
        assert_eq!(status["renditions"][0]["last_sequence"], 5);
    }

    #[tokio::test]
    async fn a_view_query_gets_the_window_and_a_malformed_one_its_reason() {
        let d = tempfile::tempdir().unwrap();
        let (_, router) = seeded(d.path()).await;
        let view = "/store/v1/news/hd/index.m3u8?window=1000&delay=0&rotation=0";
        let (r, body) = send(&router, get(view)).await;
        assert_eq!(r.status(), StatusCode::OK, "{body}");
        assert!(
            body.contains("#EXT-X-EDGEPACK-VIEW:HISTORY-START="),
            "{body}"
        );
        assert!(body.ends_with("\n5.ts\n"), "{body}");
        let etag = header(&r, ETAG_HEADER).to_owned();
        let (r, _) = send(&router, revalidate(view, &etag)).await;
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        for bad in ["window=x", "window=1&nope=2"] {
            let path = format!("/store/v1/news/hd/index.m3u8?{bad}");
            let (r, body) = send(&router, get(&path)).await;
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
            assert!(body.contains("view query:"), "{body}");
            assert!(body.contains("window=MS&delay=MS"), "{body}");
        }
    }

    #[tokio::test]
    async fn refusals_say_what_the_store_has() {
        let d = tempfile::tempdir().unwrap();
        let (app, router) = seeded(d.path()).await;
        let cases = [
            (
                "/store/v1/news/sd/index.m3u8",
                "channel 'news' has no rendition 'sd'\n",
            ),
            (
                "/store/v1/news/sd/5.ts",
                "channel 'news' has no rendition 'sd'\n",
            ),
            (
                "/store/v1/news/hd/9.ts",
                "segment '9.ts' of 'news/hd' is not in the startover window\n",
            ),
            (
                "/store/v1/news/hd/init.mp4",
                "'news/hd' has no initialization segment 'init.mp4' (fMP4 ingest only)\n",
            ),
            (
                "/elsewhere",
                "no such path '/elsewhere'; the store API is /store/v1/{channel}/…\n",
            ),
            (
                "/store/v1/news/a/b/c",
                "no such path '/store/v1/news/a/b/c'; use index.m3u8, status, {rendition}/index.m3u8, {rendition}/{sequence}.{ext}, {rendition}/at/{epoch-ms}.{ext} or {rendition}/init.mp4\n",
            ),
        ];
        for (path, reason) in cases {
            let (r, body) = send(&router, get(path)).await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
            assert_eq!(body, reason, "{path}");
        }
        let (r, _) = send(&router, get("/store/v1/news/hd/9.ts")).await;
        assert_eq!(header(&r, ACTIVE_INPUT_HEADER), "1");
        for path in [
            "/store/v1/news/status",
            "/store/v1/news/hd/5.ts",
            "/nowhere",
        ] {
            let post = Request::post(path).body(Body::empty()).unwrap();
            let (r, body) = send(&router, post).await;
            assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
            assert_eq!(header(&r, "allow"), "GET, HEAD");
            assert_eq!(body, "the store API is read-only: use GET or HEAD\n");
        }
        let (r, body) = send(&router, get("/healthz")).await;
        assert_eq!((r.status(), body.as_str()), (StatusCode::OK, "ok\n"));
        // Counted by channel and the input named: the fallback's answers too, not /healthz.
        let metrics = app.metrics.encode();
        for line in [
            "{channel=\"news\",input=\"1\",method=\"GET\",status_class=\"4xx\"} 5",
            "{channel=\"news\",input=\"_\",method=\"GET\",status_class=\"4xx\"} 1",
            "{channel=\"_unknown\",input=\"_\",method=\"GET\",status_class=\"4xx\"} 1",
            "{channel=\"_unknown\",input=\"_\",method=\"POST\",status_class=\"4xx\"} 3",
        ] {
            let line = format!("edgepack_store_internal_requests_total{line}");
            assert!(metrics.contains(&line), "{line} in {metrics}");
        }
        assert!(!metrics.contains("2xx"), "{metrics}");
    }
}
