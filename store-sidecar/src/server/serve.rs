//! Accepting connections on a listener until shutdown.

use std::time::Duration;

use axum::Router;
use tower::ServiceExt as _;

/// The address of the client a request came from.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// Serves `router` on `listener` until `stop` turns true, then waits (up to 5 s) for requests in
/// flight. A connection that sends no complete request head for `idle` (a new connection, an
/// idle keep-alive one, a slowloris) is closed.
///
/// HTTP/1 half-close is on: ffmpeg sends the last chunk of an upload and closes its socket
/// without reading the answer, and a server that treats that EOF as an abort would drop the
/// upload it just received in full. A connection cut *inside* a body still fails the body.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
    idle: Duration,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Each request knows the connection's client address (for the access log).
                let service = hyper_util::service::TowerToHyperService::new(
                    router.clone().map_request(move |mut req: hyper::Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(ClientAddr(peer));
                        req
                    }),
                );
                let conn = hyper::server::conn::http1::Builder::new()
                    .half_close(true)
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(idle)
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
