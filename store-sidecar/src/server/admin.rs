//! The operator's API on the ingest listener, behind the `[admin]` credentials (Digest or
//! Basic): `POST /admin/v1/channels/{channel}/reset` clears a channel's history, as
//! MediaPackage's `ResetChannelState`.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::{App, ClientAddr, access_log, blocking};
use crate::auth::AuthFailure;

/// Methods the admin API takes.
pub(super) const ADMIN_METHODS: &str = "POST";

/// `POST /admin/v1/channels/{channel}/reset`.
pub(super) async fn reset(
    State(app): State<Arc<App>>,
    Path(channel): Path<String>,
    req: Request,
) -> Response {
    let asked = Asked {
        method: req.method().clone(),
        authorization: req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        target: req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned()),
    };
    let started = std::time::Instant::now();
    let client = req.extensions().get::<ClientAddr>().map(|c| c.0);
    let path = req.uri().path().to_owned();
    let response = match reset_channel(&app, &channel, &asked).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(channel, status = e.status().as_u16(), reason = %e, "admin request refused");
            e.into_response()
        }
    };
    let user = crate::auth::presented_user(asked.authorization.as_deref());
    access_log::write(
        app.settings.server.access_log,
        &access_log::Line {
            channel: &channel,
            input: "admin",
            method: asked.method.as_str(),
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

/// What a request asks, without its body.
struct Asked {
    method: Method,
    authorization: Option<String>,
    target: String,
}

async fn reset_channel(app: &App, channel: &str, asked: &Asked) -> Result<Response, ApiError> {
    if asked.method != Method::POST {
        return Err(ApiError::AdminMethod(asked.method.clone()));
    }
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
        })?;
    let Some(state) = app.channels.get(channel).cloned() else {
        let mut known: Vec<&str> = app.channels.keys().map(String::as_str).collect();
        known.sort_unstable();
        return Err(ApiError::UnknownIngestChannel {
            channel: channel.to_owned(),
            configured: known.join(", "),
        });
    };
    let removed = blocking(move || state.blocking_lock().reset())
        .await
        .map_err(ApiError::Storage)?;
    tracing::info!(channel, removed, "channel reset by the admin API");
    let body = serde_json::json!({
        "channel": channel,
        "reset": true,
        "segments_removed": removed,
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
        .into_response())
}
