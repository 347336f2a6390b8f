//! The HTTP/1.1 server loop (hyper, with WebSocket upgrades): what `axum::serve` does,
//! plus what a server facing the open network needs. A new connection gets
//! `--header-timeout-ms` to send its first request's headers, and a kept-alive one
//! `--idle-timeout-ms` for its next request, so connections that never finish a request
//! (or idle ones) are closed; and one address holds at most `--max-connections-per-ip`
//! connections at once (the rest get 503 and are closed), so a single client cannot
//! exhaust file descriptors.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How long requests in flight get to finish on shutdown.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_per_ip: usize,
}

/// Open connections per client address.
#[derive(Default)]
struct PerIp {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// A connection's place in `PerIp`, given back when it ends.
struct Slot {
    table: Arc<PerIp>,
    ip: IpAddr,
}

/// The connection's slot, in every request's extensions: a WebSocket handler keeps
/// it for the socket's life (hyper forgets an upgraded connection).
#[derive(Clone)]
pub struct ConnectionSlot(#[allow(dead_code)] Arc<Slot>);

impl PerIp {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<ConnectionSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ConnectionSlot(Arc::new(Slot { table: self.clone(), ip })))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// What a refused connection is told, before it is closed.
fn refusal() -> Vec<u8> {
    let body = r#"{"error":{"code":"too_many_connections","message":"this address has too many open connections (SWITCHBOARD_MAX_CONNECTIONS_PER_IP)"}}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\nretry-after: 1\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serves `router` on `listener` until `shutdown`; then stops accepting and lets open
/// requests finish (upgraded WebSockets close through their own shutdown path).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: CancellationToken,
    on_refused: impl Fn() + Send + Sync + 'static,
) -> std::io::Result<()> {
    let per_ip = Arc::new(PerIp::default());
    let refused = refusal();
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and the like: wait a little rather than spin
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = per_ip.take(peer.ip(), limits.max_per_ip) else {
            on_refused();
            let _ = stream.try_write(&refused);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let request_slot = slot.clone();
        // set when the first request's headers are in: from then on, hyper's own header
        // timeout (the idle one) applies between requests
        let first = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = first.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            seen.store(true, std::sync::atomic::Ordering::Relaxed);
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            req.extensions_mut().insert(request_slot.clone());
            router.clone().oneshot(req.map(axum::body::Body::new))
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(limits.idle_timeout);
        let stop = shutdown.clone();
        let header_timeout = limits.header_timeout;
        connections.spawn(async move {
            let conn = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
            let mut conn = std::pin::pin!(conn);
            let deadline = tokio::time::sleep(header_timeout);
            tokio::pin!(deadline);
            let (mut checked, mut stopping) = (false, false);
            let ended = loop {
                tokio::select! {
                    ended = conn.as_mut() => break ended,
                    _ = &mut deadline, if !checked => {
                        checked = true;
                        if !first.load(std::sync::atomic::Ordering::Relaxed) {
                            // no request yet: nothing in flight to finish, the socket just closes
                            break Ok(());
                        }
                    }
                    _ = stop.cancelled(), if !stopping => {
                        // finish the request in flight, then close (a kept-alive idle one at once)
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            };
            if let Err(e) = ended {
                tracing::trace!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(SHUTDOWN_WAIT, connections.wait()).await.is_err() {
        tracing::warn!("some HTTP requests did not finish in time");
    }
    Ok(())
}
