//! Task ownership: every task this crate starts has an owner that ends it.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tracing::warn;

/// How long an accept loop pauses after a failed accept.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Aborts a task when dropped.
#[derive(Debug)]
pub(crate) struct AbortOnDrop<T>(pub(crate) JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Accepts connections on `listener` until the future is dropped, handing
/// each to `admit`, which may start its task in `tasks` (dropped with the
/// future, which ends them all). A failed accept (out of file descriptors,
/// a connection reset before it was taken) is logged and retried after a
/// pause: it never ends the loop.
pub(crate) async fn accept_loop<F>(listener: TcpListener, what: &'static str, admit: F)
where
    F: FnMut(TcpStream, SocketAddr, &mut JoinSet<()>),
{
    accept_loop_when(listener, what, || std::future::ready(()), admit).await;
}

/// [`accept_loop`] that accepts only when `room()` has resolved: until
/// then, new connections wait in the listen backlog.
pub(crate) async fn accept_loop_when<F, R, Fut>(listener: TcpListener, what: &'static str, mut room: R, mut admit: F)
where
    F: FnMut(TcpStream, SocketAddr, &mut JoinSet<()>),
    R: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut tasks = JoinSet::new();
    loop {
        // Dropped when a task ends first: waiting for room and accepting
        // are both cancel-safe, and the next turn starts them again.
        let next = async {
            room().await;
            listener.accept().await
        };
        tokio::select! {
            accepted = next => match accepted {
                Ok((stream, peer)) => admit(stream, peer, &mut tasks),
                Err(e) => {
                    warn!(listener = what, error = %e, "accept failed; retrying");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
}
