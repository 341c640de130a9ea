//! The signals a service gets: SIGTERM (systemd's stop) and SIGINT
//! (Ctrl-C) end it; SIGHUP asks for a reload.

use tokio::signal::unix::{signal, Signal, SignalKind};

// SIGHUP matters to the programs only.

/// Resolves on the first SIGTERM or SIGINT.
pub(crate) async fn terminated() {
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    tokio::select! {
        _ = recv(&mut term) => {}
        _ = recv(&mut int) => {}
    }
}

#[cfg(any(feature = "hub", feature = "agent"))]
/// SIGHUP, as a stream of reload requests (never resolves if it cannot be
/// installed).
pub(crate) fn hangups() -> Option<Signal> {
    signal(SignalKind::hangup()).ok()
}

/// The next signal on `s`, or never.
pub(crate) async fn recv(s: &mut Option<Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}
