//! Metrics in the Prometheus text format on `GET /metrics`, from the
//! `metrics-exporter-prometheus` recorder; this file only answers HTTP
//! requests with what the exporter renders.

use std::net::SocketAddr;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::Failure;

/// Device answer times, in seconds.
const LATENCY_BUCKETS: &[f64] = &[0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0];

/// The largest request head read.
const MAX_HEAD: usize = 8 * 1024;

/// Serves metrics until dropped.
pub(crate) struct Endpoint {
    task: JoinHandle<()>,
    upkeep: JoinHandle<()>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.task.abort();
        self.upkeep.abort();
    }
}

/// Installs the Prometheus recorder (before the hub or agent starts, so
/// their counters reach it) and binds `address`.
pub(crate) async fn bind(address: SocketAddr) -> Result<(PrometheusHandle, TcpListener), Failure> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full("outpost_agent_device_seconds".into()), LATENCY_BUCKETS)
        .map_err(|e| Failure::Runtime(format!("metrics: {e}")))?
        .install_recorder()
        .map_err(|e| Failure::Runtime(format!("metrics: {e}")))?;
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| Failure::Runtime(format!("metrics: cannot listen on {address}: {e}")))?;
    if !address.ip().is_loopback() {
        warn!(%address, "metrics are served beyond loopback: keep the address on a management network");
    }
    Ok((handle, listener))
}

/// Answers `GET /metrics` on `listener` with `refresh` called first (it
/// records the snapshot metrics).
pub(crate) fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    refresh: impl Fn() + Send + Sync + 'static,
) -> Endpoint {
    let upkeep_handle = handle.clone();
    let upkeep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep_handle.run_upkeep();
        }
    });
    let refresh = std::sync::Arc::new(refresh);
    let task = tokio::spawn(async move {
        // The connections' tasks end with this one (dropping the JoinSet
        // aborts them).
        let mut connections = tokio::task::JoinSet::new();
        loop {
            while connections.try_join_next().is_some() {}
            let Ok((mut stream, peer)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let handle = handle.clone();
            let refresh = std::sync::Arc::clone(&refresh);
            // One short request per connection, bounded in size and time.
            connections.spawn(async move {
                let mut head = Vec::with_capacity(512);
                let mut chunk = [0u8; 512];
                let read = tokio::time::timeout(Duration::from_secs(5), async {
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return false,
                            Ok(n) => head.extend_from_slice(&chunk[..n]),
                        }
                    }
                    true
                })
                .await;
                if !matches!(read, Ok(true)) {
                    debug!(%peer, "metrics request incomplete");
                    return;
                }
                let response = if head.starts_with(b"GET /metrics ") || head.starts_with(b"GET /metrics?") {
                    refresh();
                    let body = handle.render();
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
                };
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Endpoint { task, upkeep }
}
