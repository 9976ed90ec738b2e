//! Accepting connections within bounds: how many are served at once, how
//! long a client may take to send a request's headers (which is also how
//! long an idle keep-alive connection is kept: the next request's headers
//! are awaited the same way), and how long a request body may stall.
//!
//! `axum::serve` sets none of these, so a client could hold a connection
//! forever with half a request; here hyper's HTTP/1 `header_read_timeout`
//! (with a timer) bounds the headers and the idle time (from the first byte
//! awaited: the server speaks HTTP/1.1 only, as Caterva2's clients and
//! browsers on plain HTTP do, so no protocol sniffing reads before the
//! timer runs), a per-frame timeout
//! on request bodies (tower-http's `TimeoutBody`) bounds a stalled upload,
//! and a semaphore bounds the connections: past the limit the server stops
//! accepting, and new clients wait in the kernel's backlog, as with nginx's
//! `worker_connections`.
//!
//! Rejected: a read-idle timeout on the socket itself. While a request
//! computes for minutes the connection reads nothing, and such a timeout
//! would cut legitimate long computations.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::ConnectionLimits;

/// Longest the server waits, on shutdown, for connections to finish.
const DRAIN: Duration = Duration::from_secs(10);

/// Request bodies that stall for longer than `limit` between two pieces
/// fail (the handler sees an error reading the body, and what it was
/// writing is discarded).
pub fn with_body_timeout(router: Router, limit: Duration) -> Router {
    router.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let req = req.map(|body| {
                axum::body::Body::new(tower_http::timeout::TimeoutBody::new(limit, body))
            });
            next.run(req)
        },
    ))
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves,
/// then lets open connections finish (for a while).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let router = with_body_timeout(router, limits.body_timeout);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before
                    // it was accepted: wait a little rather than spin.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection closed: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN) => {
            tracing::warn!("connections still open after {DRAIN:?}; closing them");
        }
    }
    Ok(())
}
