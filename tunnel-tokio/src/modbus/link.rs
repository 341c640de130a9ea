//! A plain Modbus TCP connection that an idle client lends to its caller.
//!
//! While nothing is in flight and nothing waits in the queue, the
//! connection task parks the connection here; a request that finds it
//! parked writes and reads it itself (the caller-driven fast path: no
//! hand-off to the task and back, as with a client owned by one caller),
//! then parks it again. A request that finds it busy, or lent, goes
//! through the task's queue, which keeps pipelining and ordering as
//! before; the task takes the connection back when a queued request or a
//! lent-out connection needs it.
//!
//! What the fast path does to the connection is what the task would do:
//! the same transaction table and deadlines. A caller that gives up while
//! its request is on the wire (its future dropped) hands the connection
//! back with the transaction in flight, and the task reads its answer as a
//! late one; a caller that gives up in the middle of a write leaves a
//! connection that can no longer be trusted, and the task makes a new one.

use foldhash::{HashMap, HashMapExt};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use outpost_modbus_core::client::Matched;
use outpost_modbus_core::frame::mbap;
use outpost_modbus_core::{Expectation, Transactions, UnitId};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};
use tracing::{debug, warn};

use super::client::MAX_IN_FLIGHT;
use super::connection::Call;
use super::error::ClientError;

/// What a Modbus TCP connection keeps between requests: its transactions,
/// the callers waiting for answers, and bytes read but not yet framed.
pub(super) struct LinkState {
    pub(super) tracker: Transactions<Instant, MAX_IN_FLIGHT>,
    pub(super) waiters: HashMap<u16, Call>,
    pub(super) buf: BytesMut,
}

impl LinkState {
    pub(super) fn new() -> Self {
        LinkState {
            tracker: Transactions::new(),
            waiters: HashMap::new(),
            buf: BytesMut::with_capacity(2 * mbap::MAX_ADU_LEN),
        }
    }

    /// Whether no request is in flight.
    pub(super) fn is_quiet(&self) -> bool {
        self.waiters.is_empty() && self.tracker.in_flight() == 0
    }
}

/// A plain TCP connection and its state.
pub(super) struct Link {
    pub(super) stream: TcpStream,
    pub(super) state: LinkState,
    /// The deadline of the caller's request, on a timer that outlives it.
    timer: Timer,
}

impl Link {
    pub(super) fn new(stream: TcpStream) -> Self {
        Link {
            stream,
            state: LinkState::new(),
            timer: Timer {
                sleep: Box::pin(tokio::time::sleep_until(Instant::now())),
                armed: None,
            },
        }
    }
}

/// One timer for the connection's callers, armed at a request's deadline
/// and moved only to an earlier one: requests one after the other (each
/// due later than the last) leave it armed instead of registering a timer
/// each. When it fires early, it is armed again.
struct Timer {
    sleep: Pin<Box<Sleep>>,
    armed: Option<Instant>,
}

impl Timer {
    /// Runs `work` until `deadline`; `None` when the deadline came first.
    async fn by<T>(&mut self, deadline: Instant, work: impl Future<Output = T>) -> Option<T> {
        tokio::pin!(work);
        loop {
            if self.armed.is_none_or(|at| deadline < at) {
                self.sleep.as_mut().reset(deadline);
                self.armed = Some(deadline);
            }
            tokio::select! {
                biased;
                out = &mut work => return Some(out),
                () = self.sleep.as_mut() => {
                    self.armed = None;
                    if Instant::now() >= deadline {
                        return None;
                    }
                }
            }
        }
    }
}

/// Where a connection is parked between the task and its callers.
#[derive(Default)]
pub(super) struct Shared {
    lend: Mutex<Lend>,
    /// Wakes the task: a lent connection came back and it wants it, or
    /// it came back with work for it.
    returned: Notify,
}

#[derive(Default)]
struct Lend {
    /// The connection, when parked.
    link: Option<Box<Link>>,
    /// A caller has it.
    lent: bool,
    /// The task waits for it back.
    wanted: bool,
    /// A caller found it broken and dropped it.
    dead: bool,
}

/// What the task gets back.
pub(super) enum Reclaimed {
    /// The connection, to drive.
    Link(Box<Link>),
    /// A caller found it broken: connect again.
    Dead,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lend = self.lend();
        f.debug_struct("Shared")
            .field("parked", &lend.link.is_some())
            .field("lent", &lend.lent)
            .finish()
    }
}

impl Shared {
    fn lend(&self) -> MutexGuard<'_, Lend> {
        self.lend.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The task parks an idle connection.
    pub(super) fn park(&self, link: Box<Link>) {
        let mut lend = self.lend();
        lend.link = Some(link);
        lend.lent = false;
        lend.wanted = false;
        lend.dead = false;
    }

    /// A caller borrows the parked connection, if it is parked.
    pub(super) fn borrow(&self) -> Option<Box<Link>> {
        let mut lend = self.lend();
        let link = lend.link.take()?;
        lend.lent = true;
        Some(link)
    }

    /// A caller gives the connection back (`None`: it broke).
    fn give_back(&self, link: Option<Box<Link>>) {
        let mut lend = self.lend();
        lend.lent = false;
        // A request still in flight (its caller gave up) is the task's to
        // finish; a broken connection is the task's to replace.
        let wake = lend.wanted || link.as_ref().is_none_or(|l| !l.state.is_quiet());
        match link {
            Some(link) => lend.link = Some(link),
            None => lend.dead = true,
        }
        drop(lend);
        if wake {
            self.returned.notify_one();
        }
    }

    /// Waits until the task should look at its parked connection.
    pub(super) async fn returned(&self) {
        self.returned.notified().await;
    }

    /// The task takes the connection back, waiting for a caller that has it.
    pub(super) async fn reclaim(&self) -> Reclaimed {
        loop {
            {
                let mut lend = self.lend();
                if let Some(link) = lend.link.take() {
                    lend.wanted = false;
                    return Reclaimed::Link(link);
                }
                if lend.dead || !lend.lent {
                    lend.dead = false;
                    lend.wanted = false;
                    return Reclaimed::Dead;
                }
                lend.wanted = true;
            }
            self.returned.notified().await;
        }
    }
}

/// A borrowed connection, given back however the caller's future ends.
struct Borrowed<'a> {
    shared: &'a Shared,
    link: Option<Box<Link>>,
    /// The connection cannot be trusted any more (a write was cut short,
    /// the device closed it, or its bytes stopped making sense).
    broken: bool,
}

impl Drop for Borrowed<'_> {
    fn drop(&mut self) {
        let link = self.link.take().filter(|_| !self.broken);
        if let Some(link) = &link {
            debug_assert!(link.state.waiters.is_empty());
        }
        self.shared.give_back(link);
    }
}

/// Sends one request on a borrowed connection and reads its answer, in
/// the caller's task. `None` when nothing was sent: the connection turned
/// out to be closed or out of step, and the request goes the task's way
/// (which connects again).
pub(super) async fn exchange(
    shared: &Shared,
    link: Box<Link>,
    unit: UnitId,
    expect: Expectation,
    pdu: &[u8],
    deadline: Instant,
) -> Option<Result<Bytes, ClientError>> {
    let mut borrowed = Borrowed {
        shared,
        link: Some(link),
        broken: false,
    };
    let link = borrowed.link.as_deref_mut()?;
    // Whatever the device did while the connection was parked: closed it
    // (a common idle timeout), or sent a late answer.
    // Asked of the socket's readiness first, which costs no system call
    // when nothing happened.
    match poll_once(&mut link.stream, &mut link.state.buf) {
        Poll::Pending => {}
        Poll::Ready(Ok(n)) if n > 0 && settle(&mut link.state, None).is_ok() => {}
        Poll::Ready(_) => {
            debug!("modbus connection found closed or out of step while idle");
            borrowed.broken = true;
            return None;
        }
    }
    if deadline <= Instant::now() {
        return Some(Err(ClientError::Expired));
    }
    let Ok(header) = link.state.tracker.start_with_deadline(unit, expect, deadline) else {
        return None;
    };
    let mut frame = [0u8; mbap::MAX_ADU_LEN];
    let n = match mbap::encode(header, pdu, &mut frame) {
        Ok(n) => n,
        Err(e) => {
            let _ = link.state.tracker.cancel(header.transaction_id);
            return Some(Err(ClientError::Encode(e)));
        }
    };
    // Broken until the whole frame is out: a caller that gives up in the
    // middle leaves half a request on the wire.
    borrowed.broken = true;
    let link = borrowed.link.as_deref_mut()?;
    match link
        .timer
        .by(deadline, write_frame(&mut link.stream, &frame[..n]))
        .await
    {
        Some(Ok(())) => {}
        Some(Err(e)) => return Some(Err(lost(e))),
        None => return Some(Err(ClientError::Timeout)),
    }
    borrowed.broken = false;
    let id = header.transaction_id;
    let link = borrowed.link.as_deref_mut()?;
    loop {
        match settle(&mut link.state, Some(id)) {
            Ok(Some(answer)) => return Some(answer),
            Ok(None) => {}
            Err(e) => {
                borrowed.broken = true;
                return Some(Err(e));
            }
        }
        link.state.buf.reserve(mbap::MAX_ADU_LEN);
        match link.timer.by(deadline, link.stream.read_buf(&mut link.state.buf)).await {
            Some(Ok(0)) => {
                borrowed.broken = true;
                let e = io::Error::new(io::ErrorKind::UnexpectedEof, "the device closed the connection");
                return Some(Err(lost(e)));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                borrowed.broken = true;
                return Some(Err(lost(e)));
            }
            None => {
                // Its answer, should it come, is a late one.
                let _ = link.state.tracker.cancel(id);
                return Some(Err(ClientError::Timeout));
            }
        }
    }
}

/// Frames what was read: the answer to `ours` when it is there; answers to
/// requests that ended are dropped. An error when the device's bytes can
/// no longer be matched to requests.
fn settle(state: &mut LinkState, ours: Option<u16>) -> Result<Option<Result<Bytes, ClientError>>, ClientError> {
    loop {
        let frame = match mbap::decode(&state.buf) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(None),
            Err(e) => {
                warn!(error = %e, "modbus framing error; dropping the connection");
                return Err(ClientError::Framing(e));
            }
        };
        let len = frame.len();
        match state.tracker.handle_frame(frame) {
            Matched::Response { transaction_id, result } if Some(transaction_id) == ours => {
                let answer = result
                    .map(|_| Bytes::copy_from_slice(frame.pdu))
                    .map_err(ClientError::InvalidResponse);
                state.buf.advance(len);
                return Ok(Some(answer));
            }
            Matched::Response { transaction_id, .. } | Matched::Late { transaction_id } => {
                debug!(transaction_id, "modbus answer to a request that already ended, dropped");
            }
            Matched::Stray { transaction_id } => {
                warn!(
                    transaction_id,
                    "the device answered a transaction id it was not sent; the connection dropped"
                );
                return Err(ClientError::DeviceFault);
            }
        }
        state.buf.advance(len);
    }
}

/// Reads what is there without waiting: `Pending` when nothing is.
fn poll_once(stream: &mut TcpStream, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut bytes = [0u8; mbap::MAX_ADU_LEN];
    let mut read = ReadBuf::new(&mut bytes);
    match Pin::new(stream).poll_read(&mut cx, &mut read) {
        Poll::Ready(Ok(())) => {
            buf.extend_from_slice(read.filled());
            Poll::Ready(Ok(read.filled().len()))
        }
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Pending => Poll::Pending,
    }
}

/// Writes a whole frame.
async fn write_frame(stream: &mut TcpStream, frame: &[u8]) -> io::Result<()> {
    stream.write_all(frame).await
}

fn lost(e: io::Error) -> ClientError {
    ClientError::ConnectionLost(e)
}
