//! The accept loop: hands each TCP connection to its own task and stops them all, politely,
//! when asked to shut down.

use std::future::Future;
use std::io;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

use crate::config::RelayConfig;
use crate::metrics::Metrics;
use crate::{cluster, conn, http, hub};

/// What every task of the relay reads: its settings and its counters.
pub struct Shared {
    pub config: RelayConfig,
    pub metrics: Metrics,
}

/// How many "server-full" answers may be under way at once; past that, connections are
/// simply dropped.
const MAX_REFUSALS_IN_FLIGHT: usize = 64;

/// Serves the relay protocol on `listener` until `shutdown` completes, then closes every
/// connection with code 1001 and returns once they are gone (or the grace period ends).
pub async fn serve(
    listener: TcpListener,
    config: RelayConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let endpoints = match config.metrics_listen {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    let mut metrics = Metrics::default();
    if config.redis.is_some() {
        metrics.register_cluster();
    }
    let shared = Arc::new(Shared { config, metrics });
    let endpoints_task = endpoints.map(|listener| tokio::spawn(serve_endpoints(listener, shared.clone())));
    let (hub_tx, hub_rx) = mpsc::channel(1024);
    let (cluster, cluster_tasks) = match &shared.config.redis {
        Some(url) => {
            let (link, tasks) =
                cluster::start(url, hub_tx.clone(), shared.clone()).await.map_err(io::Error::other)?;
            (Some(link), Some(tasks))
        }
        None => (None, None),
    };
    let hub_task = tokio::spawn(hub::run(hub_rx, shared.clone(), cluster));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    // Connections told "server-full"; bounded, so a flood while full costs little.
    let mut refusals = JoinSet::new();
    // Numbers connections for the logs and the hub; peer ids come from resume tokens.
    let mut serial: u64 = 0;
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                // At the limit, a connection is still answered (health checks and metrics
                // keep working) but not served; a flood of them is simply dropped.
                Ok((stream, addr)) if connections.len() >= shared.config.max_connections => {
                    warn!(%addr, limit = shared.config.max_connections, "at the connection limit");
                    if refusals.len() < MAX_REFUSALS_IN_FLIGHT {
                        let (shared, hub_tx, stop_rx) = (shared.clone(), hub_tx.clone(), stop_rx.clone());
                        refusals.spawn(async move { conn::accept(stream, 0, &shared, hub_tx, stop_rx, true).await });
                    } else {
                        shared.metrics.rejected("server-full");
                    }
                }
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    serial += 1;
                    tracing::debug!(conn = serial, %addr, "accepted");
                    let (shared, hub_tx, stop_rx) = (shared.clone(), hub_tx.clone(), stop_rx.clone());
                    // Two different tasks, not one with two branches: a future is as large as
                    // its largest branch, and plain connections must not pay for TLS state.
                    match shared.config.tls.clone() {
                        None => connections.spawn(async move {
                            conn::accept(stream, serial, &shared, hub_tx, stop_rx, false).await;
                        }),
                        Some(tls) => connections.spawn(async move {
                            let handshake = TlsAcceptor::from(tls).accept(stream);
                            match tokio::time::timeout(shared.config.handshake_timeout, handshake).await {
                                Ok(Ok(stream)) => conn::accept(stream, serial, &shared, hub_tx, stop_rx, false).await,
                                _ => shared.metrics.rejected("tls-handshake"),
                            }
                        }),
                    };
                }
                // Running out of file descriptors or a reset before accept: keep serving.
                Err(e) => {
                    warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            Some(_) = refusals.join_next(), if !refusals.is_empty() => {}
            () = &mut shutdown => break,
        }
    }

    info!(connections = connections.len(), "shutting down");
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(shared.config.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(remaining = connections.len(), "closing connections that did not finish in time");
        connections.shutdown().await;
    }
    if let Some(tasks) = &cluster_tasks {
        tasks.stop_feeding();
    }
    drop(hub_tx);
    let _ = hub_task.await;
    if let Some(tasks) = cluster_tasks {
        tasks.finish().await;
    }
    if let Some(task) = endpoints_task {
        task.abort();
    }
    Ok(())
}

/// Serves only `/healthz` and `/metrics`, on the separate --metrics-listen address.
async fn serve_endpoints(listener: TcpListener, shared: Arc<Shared>) {
    info!(addr = ?listener.local_addr().ok(), "serving /healthz and /metrics");
    loop {
        let Ok((mut stream, _)) = listener.accept().await else { continue };
        let shared = shared.clone();
        tokio::spawn(async move {
            let read =
                tokio::time::timeout(shared.config.handshake_timeout, http::read_request(&mut stream)).await;
            if let Ok(Ok((route, _))) = read {
                // The web client is the public port's, like the WebSocket it talks to.
                let route = match route {
                    http::Route::Web(..) => http::Route::Other(404, "not served on this address\n"),
                    route => route,
                };
                http::answer(&mut stream, route, &shared.metrics).await;
            }
        });
    }
}
