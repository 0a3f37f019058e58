//! Requests to clusters — the filter's `dispatch_http_call` and the route's upstream — as Envoy
//! makes them: over its per-worker connection pools (HTTP/1.1 keep-alive: a connection is opened
//! only when no idle one to that cluster is left), with Envoy's answers for connect failures,
//! timeouts, resets and answers over 32 MiB.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use crate::vm::{CallResult, Headers, MAX_CALL_RESPONSE, PendingCall};

/// Idle connections kept per cluster address and worker.
const MAX_IDLE: usize = 64;

thread_local! {
    /// This worker's idle connections, by cluster address (each worker thread has its own pool,
    /// as each Envoy worker has).
    static IDLE: RefCell<HashMap<SocketAddr, Vec<SendRequest<Full<Bytes>>>>> =
        RefCell::new(HashMap::new());
}

/// Why no connection could be had.
enum Connect {
    Refused,
    Failed,
}

/// An idle pooled connection to `addr` that is still open, else a new one.
async fn connection(addr: SocketAddr) -> Result<(SendRequest<Full<Bytes>>, bool), Connect> {
    while let Some(mut sender) = IDLE.with(|p| p.borrow_mut().get_mut(&addr).and_then(Vec::pop)) {
        if !sender.is_closed() && sender.ready().await.is_ok() {
            return Ok((sender, true));
        }
    }
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|_| Connect::Refused)?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| Connect::Failed)?;
    tokio::task::spawn_local(async move {
        let _ = conn.await;
    });
    Ok((sender, false))
}

/// Gives a connection whose exchange is complete back to this worker's pool.
fn release(addr: SocketAddr, sender: SendRequest<Full<Bytes>>) {
    if sender.is_closed() {
        return;
    }
    IDLE.with(|p| {
        let mut p = p.borrow_mut();
        let idle = p.entry(addr).or_default();
        if idle.len() < MAX_IDLE {
            idle.push(sender);
        }
    });
}

fn request(call: &PendingCall) -> Option<Request<Full<Bytes>>> {
    let get = |k: &str| {
        call.headers
            .iter()
            .find(|(x, _)| x == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut req = Request::builder()
        .method(get(":method").as_str())
        .uri(get(":path"))
        .header("host", get(":authority"));
    for (k, v) in &call.headers {
        if !k.starts_with(':') && k != "host" && k != "content-length" && k != "transfer-encoding" {
            req = req.header(k.as_str(), v.as_str());
        }
    }
    req.body(Full::new(Bytes::from(call.body.clone()))).ok()
}

/// Performs a cluster request the way Envoy's async client reports it: connect failures and
/// timeouts become 503/504 answers with Envoy's texts; a reset or an answer over 32 MiB has no
/// headers at all.
pub async fn dispatch(call: &PendingCall) -> CallResult {
    let synth = |status: u16, body: &str| CallResult::Response {
        headers: vec![
            (":status".into(), status.to_string()),
            ("content-length".into(), body.len().to_string()),
            ("content-type".into(), "text/plain".into()),
        ],
        body: body.as_bytes().to_vec(),
        trailers: Vec::new(),
    };
    let timeout = if call.timeout_ms == 0 {
        Duration::from_secs(3600)
    } else {
        Duration::from_millis(u64::from(call.timeout_ms))
    };
    let work = async {
        let Some(req) = request(call) else {
            return CallResult::Reset;
        };
        let (mut sender, reused) = match connection(call.addr).await {
            Ok(c) => c,
            Err(Connect::Refused) => {
                return synth(
                    503,
                    "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: delayed connect error: 111",
                );
            }
            Err(Connect::Failed) => return CallResult::Reset,
        };
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            // The upstream closed an idle connection as it was reused: nothing was answered,
            // so the request goes once more on a fresh connection (Envoy's pool does the same
            // for a connection that dies before a response starts).
            Err(_) if reused => {
                let (Some(req), Ok((s, _))) = (request(call), connection_fresh(call.addr).await)
                else {
                    return CallResult::Reset;
                };
                sender = s;
                match sender.send_request(req).await {
                    Ok(r) => r,
                    Err(_) => return CallResult::Reset,
                }
            }
            Err(_) => return CallResult::Reset,
        };
        let (parts, body) = resp.into_parts();
        let body = match Limited::new(body, MAX_CALL_RESPONSE).collect().await {
            // One copy at most: a body that came in one piece is taken as it is.
            Ok(b) => Vec::from(b.to_bytes()),
            Err(_) => return CallResult::Reset,
        };
        release(call.addr, sender);
        let mut headers: Headers = vec![(":status".into(), parts.status.as_u16().to_string())];
        for (k, v) in &parts.headers {
            if let Ok(v) = v.to_str() {
                headers.push((k.as_str().to_owned(), v.to_owned()));
            }
        }
        CallResult::Response {
            headers,
            body,
            trailers: Vec::new(),
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => synth(504, "upstream request timeout"),
    }
}

/// A new connection, never a pooled one.
async fn connection_fresh(addr: SocketAddr) -> Result<(SendRequest<Full<Bytes>>, bool), Connect> {
    IDLE.with(|p| p.borrow_mut().remove(&addr));
    connection(addr).await
}
