//! The operator's API on the ingest listener, behind the `[admin]` credentials (Digest or
//! Basic): `POST /admin/v1/channels/{channel}/reset` clears a channel's history, as
//! MediaPackage's `ResetChannelState`; `POST /admin/v1/channels/{channel}/harvest` starts a
//! live-to-VOD harvest job, `GET /admin/v1/harvests/{id}` reports it (`harvest`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;

use super::error::ApiError;
use super::harvest;
use super::{App, ClientAddr, access_log, blocking};
use crate::auth::AuthFailure;
use crate::channel::ChannelState;

/// Methods the admin API takes.
pub(super) const ADMIN_METHODS: &str = "POST";

/// Largest harvest request body.
const MAX_BODY: usize = 16 * 1024;

/// What a request asks.
pub(super) struct Asked {
    pub(super) method: Method,
    pub(super) authorization: Option<String>,
    pub(super) target: String,
    pub(super) body: Body,
}

/// Runs `handle` for an admin request (authenticated first), logs it and answers.
async fn admin<F, Fut>(app: Arc<App>, label: String, req: Request, handle: F) -> Response
where
    F: FnOnce(Arc<App>, Asked) -> Fut,
    Fut: std::future::Future<Output = Result<Response, ApiError>>,
{
    let started = std::time::Instant::now();
    let client = req.extensions().get::<ClientAddr>().map(|c| c.0);
    let path = req.uri().path().to_owned();
    let (parts, body) = req.into_parts();
    let asked = Asked {
        method: parts.method,
        authorization: parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        target: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned()),
        body,
    };
    let user = crate::auth::presented_user(asked.authorization.as_deref());
    let method = asked.method.clone();
    let result = match authorize(&app, &asked) {
        Ok(()) => handle(app.clone(), asked).await,
        Err(e) => Err(e),
    };
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(label, status = e.status().as_u16(), reason = %e, "admin request refused");
            e.into_response()
        }
    };
    access_log::write(
        app.settings.server.access_log,
        &access_log::Line {
            channel: &label,
            input: "admin",
            method: method.as_str(),
            path: &path,
            status: response.status().as_u16(),
            bytes: 0,
            duration: started.elapsed(),
            user: user.as_deref(),
            client,
        },
    );
    response
}

/// The method and the `[admin]` credentials.
fn authorize(app: &App, asked: &Asked) -> Result<(), ApiError> {
    let creds = app.settings.admin.as_ref().ok_or(ApiError::AdminOff)?;
    app.auth
        .verify(
            asked.authorization.as_deref(),
            asked.method.as_str(),
            &asked.target,
            creds,
        )
        .map_err(|failure| ApiError::Unauthorized {
            challenges: app.auth.challenges(matches!(
                failure,
                AuthFailure::Stale | AuthFailure::Replayed
            )),
            failure,
        })
}

fn post_only(asked: &Asked) -> Result<(), ApiError> {
    if asked.method == Method::POST {
        Ok(())
    } else {
        Err(ApiError::AdminMethod(asked.method.clone()))
    }
}

fn channel_state(
    app: &App,
    channel: &str,
) -> Result<Arc<tokio::sync::Mutex<ChannelState>>, ApiError> {
    app.channels.get(channel).cloned().ok_or_else(|| {
        let mut known: Vec<&str> = app.channels.keys().map(String::as_str).collect();
        known.sort_unstable();
        ApiError::UnknownIngestChannel {
            channel: channel.to_owned(),
            configured: known.join(", "),
        }
    })
}

pub(super) fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
        .into_response()
}

/// `POST /admin/v1/channels/{channel}/reset`.
pub(super) async fn reset(
    State(app): State<Arc<App>>,
    Path(channel): Path<String>,
    req: Request,
) -> Response {
    let label = channel.clone();
    admin(app, label, req, |app, asked| async move {
        post_only(&asked)?;
        let state = channel_state(&app, &channel)?;
        let removed = blocking(move || state.blocking_lock().reset())
            .await
            .map_err(ApiError::Storage)?;
        tracing::info!(channel, removed, "channel reset by the admin API");
        Ok(json(
            StatusCode::OK,
            &serde_json::json!({
                "channel": channel,
                "reset": true,
                "segments_removed": removed,
            }),
        ))
    })
    .await
}

/// `POST /admin/v1/channels/{channel}/harvest` with `{"start", "end", "destination"}`.
pub(super) async fn harvest(
    State(app): State<Arc<App>>,
    Path(channel): Path<String>,
    req: Request,
) -> Response {
    let label = channel.clone();
    admin(app, label, req, |app, asked| async move {
        post_only(&asked)?;
        let state = channel_state(&app, &channel)?;
        let body = http_body_util::Limited::new(asked.body, MAX_BODY)
            .collect()
            .await
            .map_err(|e| ApiError::Harvest(format!("the request body: {e}")))?
            .to_bytes();
        let request = harvest::Request::parse(&body)?;
        harvest::start(&app, &channel, state, request).await
    })
    .await
}

/// `GET /admin/v1/harvests/{id}`.
pub(super) async fn harvest_status(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    admin(app, "_".to_owned(), req, |app, asked| async move {
        if asked.method != Method::GET {
            return Err(ApiError::AdminStatusMethod(asked.method.clone()));
        }
        harvest::status(&app, &id)
    })
    .await
}
