//! The one error type of both listeners: every refusal the sidecar answers, each with its status
//! and a short plain-text reason a client or an operator can act on.

use std::io;

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::AuthFailure;
use crate::channel::IngestError;
use crate::disk;
use crate::ingest_path::PathError;

/// Methods the ingest listener takes.
pub(super) const INGEST_METHODS: &str = "OPTIONS, PUT, POST, DELETE, MKCOL";

/// A refused request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    // ---- ingest (`/in/v1/{channel}/{input}/{file}`)
    /// The ingest path is too long, malformed, or not an ingest path.
    #[error("{0}")]
    IngestPath(#[from] PathError),
    #[error("unknown channel '{channel}'; configured: {configured}")]
    UnknownIngestChannel { channel: String, configured: String },
    /// The channel has no credentials in the settings.
    #[error("unknown channel")]
    NoCredentials,
    #[error("method {0} is not supported for ingest; use PUT (or POST), DELETE, MKCOL or OPTIONS")]
    IngestMethod(Method),
    /// Answered with the challenges a client may retry with (`WWW-Authenticate`).
    #[error("{}", .failure.reason())]
    Unauthorized {
        failure: AuthFailure,
        challenges: Vec<String>,
    },
    /// `Content-Length` says more than the limit: refused before the body is read.
    #[error("{what} of {declared} bytes is over the limit of {limit} bytes")]
    DeclaredTooLarge {
        what: &'static str,
        declared: u64,
        limit: u64,
    },
    #[error("{what} is over the limit of {limit} bytes; nothing was stored")]
    TooLarge { what: &'static str, limit: u64 },
    #[error("upload interrupted: {0}; nothing was stored")]
    Interrupted(String),
    /// An upload body that sent nothing for `idle_timeout_seconds`.
    #[error("the upload sent no data for {0} s (server.idle_timeout_seconds); nothing was stored")]
    Stalled(u64),
    /// A disk error; 507 when the disk is full.
    #[error("{}", storage_reason(.0))]
    Storage(io::Error),
    /// A playlist whose media sequence went backwards.
    #[error("{0}")]
    Regressed(IngestError),
    #[error("playlist refused, previous one kept: {0}")]
    PlaylistRefused(IngestError),
    /// A file that is no media format (and not a segment the encoder encrypted).
    #[error("{0}")]
    NotMedia(IngestError),
    #[error("worker failed: {0}")]
    Worker(String),

    // ---- admin (`/admin/v1/...` on the ingest listener)
    #[error(
        "the admin API is off: set [admin] username and password (or password_env) in the sidecar configuration"
    )]
    AdminOff,
    #[error("method {0} is not supported by the admin API; use POST")]
    AdminMethod(Method),
    #[error("method {0} is not supported here; a harvest's report is read with GET")]
    AdminStatusMethod(Method),
    #[error("harvest is off: set [admin] harvest_dir in the sidecar configuration")]
    HarvestOff,
    #[error("harvest refused: {0}")]
    Harvest(String),
    #[error("harvest refused: {0}")]
    HarvestRange(crate::channel::HarvestError),
    #[error("harvest destination '{0}' exists already; a harvest never overwrites")]
    HarvestExists(String),
    #[error("no harvest job '{0}' (reports are kept until the sidecar restarts)")]
    NoSuchHarvest(String),

    // ---- internal API (`/store/v1/...`)
    #[error("the store API is read-only: use GET or HEAD")]
    ReadOnly,
    /// Not a path of the store API, or under a channel but no file the store serves.
    #[error(transparent)]
    StorePath(#[from] edgepack_store_api::api::PathError),
    #[error("unknown channel '{0}'")]
    UnknownChannel(String),
    /// A media playlist query that is not a view query.
    #[error("{0}; a view is window=MS&delay=MS[&now=MS][&start=MS][&end=MS]&rotation=S")]
    View(String),
    #[error("channel '{0}' has no content yet: no encoder has published")]
    NoContentYet(String),
    #[error("channel '{channel}' has no rendition '{rendition}'")]
    NoRendition { channel: String, rendition: String },
    #[error(
        "no segment of '{channel}/{rendition}' starts at program date time {file} (epoch ms) in the startover window"
    )]
    NothingAt {
        channel: String,
        rendition: String,
        file: String,
    },
    #[error("'{channel}/{rendition}' has no initialization segment '{file}' (fMP4 ingest only)")]
    NoInit {
        channel: String,
        rendition: String,
        file: String,
    },
    /// Pruned between the lookup and the read.
    #[error("initialization segment '{0}' just left the startover window")]
    InitGone(String),
    #[error("segment '{file}' of '{channel}/{rendition}' is not in the startover window")]
    NotInWindow {
        channel: String,
        rendition: String,
        file: String,
    },
    /// Pruned between the lookup and the read.
    #[error("segment '{0}' just left the startover window")]
    SegmentGone(String),
    /// The bucket did not answer for stored bytes.
    #[error("the bucket did not answer: {0}")]
    BucketRead(crate::bucket::BucketError),

    // ---- both, in a bucket
    /// The bucket did not take an upload or the index: retry.
    #[error("the bucket did not take the {what}: {error}; nothing was acknowledged, send it again")]
    BucketWrite { what: &'static str, error: String },
    /// An upload for an input another sidecar ingests.
    #[error(
        "input {input} of channel '{channel}' is ingested by another sidecar (server.ingest_inputs = {inputs:?} here)"
    )]
    NotThisHost {
        channel: String,
        input: usize,
        inputs: Vec<u8>,
    },
}

/// A storage error the client caused: its path collides with a file or directory stored before
/// (`a` and `a/b.ts`), or names something the file system cannot hold.
fn is_path_collision(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotADirectory
            | io::ErrorKind::IsADirectory
            | io::ErrorKind::DirectoryNotEmpty
            | io::ErrorKind::AlreadyExists
    )
}

fn storage_reason(e: &io::Error) -> String {
    if disk::is_storage_full(e) {
        format!("storage is full; nothing was written: {e}")
    } else if is_path_collision(e) {
        format!(
            "the path collides with a file or directory uploaded before (a name cannot be both); nothing was written: {e}"
        )
    } else {
        format!("storage error; nothing was written: {e}")
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Io(e) => ApiError::Storage(e),
            e @ IngestError::Regressed { .. } => ApiError::Regressed(e),
            e @ (IngestError::Unrecognised { .. } | IngestError::NotWebVtt { .. }) => {
                ApiError::NotMedia(e)
            }
            e => ApiError::PlaylistRefused(e),
        }
    }
}

impl ApiError {
    /// The HTTP status this refusal is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::IngestPath(PathError::TooLong { .. } | PathError::NameTooLong { .. }) => {
                StatusCode::URI_TOO_LONG
            }
            ApiError::IngestPath(PathError::NotIngest | PathError::BadInput(_)) => {
                StatusCode::NOT_FOUND
            }
            ApiError::IngestPath(PathError::Forbidden(_))
            | ApiError::Interrupted(_)
            | ApiError::PlaylistRefused(_)
            | ApiError::View(_) => StatusCode::BAD_REQUEST,
            ApiError::IngestMethod(_)
            | ApiError::ReadOnly
            | ApiError::AdminMethod(_)
            | ApiError::AdminStatusMethod(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Harvest(_)
            | ApiError::HarvestRange(crate::channel::HarvestError::BadRange) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::HarvestRange(_) | ApiError::HarvestOff | ApiError::NoSuchHarvest(_) => {
                StatusCode::NOT_FOUND
            }
            ApiError::HarvestExists(_) => StatusCode::CONFLICT,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::DeclaredTooLarge { .. } | ApiError::TooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::Storage(e) if disk::is_storage_full(e) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Storage(e) if is_path_collision(e) => StatusCode::CONFLICT,
            ApiError::Storage(_) | ApiError::Worker(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Regressed(_) => StatusCode::CONFLICT,
            ApiError::BucketRead(e) if e.kind == crate::bucket::BucketErrorKind::TimedOut => {
                StatusCode::GATEWAY_TIMEOUT
            }
            ApiError::BucketRead(_) => StatusCode::BAD_GATEWAY,
            ApiError::BucketWrite { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotThisHost { .. } => StatusCode::MISDIRECTED_REQUEST,
            ApiError::NotMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Stalled(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnknownIngestChannel { .. }
            | ApiError::AdminOff
            | ApiError::NoCredentials
            | ApiError::StorePath(_)
            | ApiError::UnknownChannel(_)
            | ApiError::NoContentYet(_)
            | ApiError::NoRendition { .. }
            | ApiError::NothingAt { .. }
            | ApiError::NoInit { .. }
            | ApiError::InitGone(_)
            | ApiError::NotInWindow { .. }
            | ApiError::SegmentGone(_) => StatusCode::NOT_FOUND,
        }
    }
}

/// The reason of a refusal, kept on the response for the log line.
#[derive(Clone)]
pub(super) struct Reason(pub(super) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Storage(e) = &self
            && status == StatusCode::INTERNAL_SERVER_ERROR
        {
            tracing::error!(error = %e, "storage error");
        }
        let reason = self.to_string();
        let mut r = (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{reason}\n"),
        )
            .into_response();
        r.extensions_mut().insert(Reason(reason));
        let headers = r.headers_mut();
        match self {
            ApiError::IngestMethod(_) => {
                headers.insert(header::ALLOW, HeaderValue::from_static(INGEST_METHODS));
            }
            ApiError::ReadOnly => {
                headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            }
            ApiError::AdminMethod(_) => {
                headers.insert(
                    header::ALLOW,
                    HeaderValue::from_static(super::admin::ADMIN_METHODS),
                );
            }
            ApiError::AdminStatusMethod(_) => {
                headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
            }
            ApiError::BucketWrite { .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            }
            ApiError::Unauthorized { challenges, .. } => {
                for c in challenges {
                    if let Ok(v) = HeaderValue::from_str(&c) {
                        headers.append(header::WWW_AUTHENTICATE, v);
                    }
                }
            }
            _ => {}
        }
        r
    }
}
