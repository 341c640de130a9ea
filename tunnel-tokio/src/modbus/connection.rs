//! The task behind a [`super::Client`]: connects on demand, writes
//! requests, matches answers, and fails every request by its deadline.

use foldhash::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use outpost_modbus_core::client::{Matched, RtuExchange, RtuMatch};
use outpost_modbus_core::frame::{mbap, rtu};
use outpost_modbus_core::{Expectation, Transactions, UnitId};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout_at, Instant};
use tokio_rustls::TlsConnector;
use tracing::{debug, warn};

use super::client::{ClientBuilder, MAX_IN_FLIGHT};
use super::error::ClientError;
use super::link::{Link, LinkState, Reclaimed, Shared};

/// How the client frames requests on the TCP stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// MBAP: transaction ids, many in flight.
    Tcp,
    /// RTU frames with CRC through a serial gateway: one at a time.
    RtuOverTcp,
    /// RTU on a local serial port (feature `serial`).
    #[cfg(feature = "serial")]
    Serial {
        /// Bits per second.
        baud: u32,
    },
}

/// One request handed to the connection task.
pub(super) struct Call {
    pub(super) unit: UnitId,
    pub(super) pdu: Bytes,
    pub(super) expect: Expectation,
    pub(super) deadline: Instant,
    pub(super) reply: oneshot::Sender<Result<Bytes, ClientError>>,
}

impl Call {
    fn answer(self, result: Result<Bytes, ClientError>) {
        // The caller may have given up; nothing to do then.
        let _ = self.reply.send(result);
    }
}

/// Runs until every [`super::Client`] handle is dropped.
pub(super) async fn run(config: ClientBuilder, mut rx: mpsc::Receiver<Call>, shared: Arc<Shared>) {
    let mut next: Option<Call> = None;
    loop {
        let call = match next.take() {
            Some(call) => call,
            None => match rx.recv().await {
                Some(call) => call,
                None => return,
            },
        };
        if call.reply.is_closed() {
            continue;
        }
        if call.deadline <= Instant::now() {
            call.answer(Err(ClientError::Expired));
            continue;
        }
        let attempt_end = call.deadline.min(Instant::now() + config.connect_timeout);
        #[cfg(feature = "serial")]
        if let Framing::Serial { baud } = config.framing {
            let port = match open_serial(&config.address, baud) {
                Ok(port) => port,
                Err(e) => {
                    debug!(port = %config.address, error = %e, "serial port open failed");
                    call.answer(Err(ClientError::Connect(e)));
                    continue;
                }
            };
            match rtu(port, call, &mut rx, config.rtu_silence).await {
                Ended::Closed => return,
                Ended::Broken(pending) => next = pending,
                Ended::Idle => {}
            }
            continue;
        }
        let stream = match timeout_at(attempt_end, TcpStream::connect(&config.address)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                debug!(address = %config.address, error = %e, "modbus connect failed");
                call.answer(Err(ClientError::Connect(e)));
                continue;
            }
            Err(_) => {
                let e = io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
                call.answer(Err(ClientError::Connect(e)));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        debug!(address = %config.address, "modbus connected");
        let max_in_flight = config.max_in_flight.clamp(1, MAX_IN_FLIGHT);
        let outcome = match (config.framing, &config.tls) {
            (Framing::Tcp, Some(tls)) => {
                let connector = TlsConnector::from(tls.config());
                let stream = match timeout_at(attempt_end, connector.connect(tls.server_name().clone(), stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        debug!(address = %config.address, error = %e, "modbus/tcp security handshake failed");
                        call.answer(Err(ClientError::Connect(e)));
                        continue;
                    }
                    Err(_) => {
                        let e = io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out");
                        call.answer(Err(ClientError::Connect(e)));
                        continue;
                    }
                };
                let (mut rd, mut wr) = tokio::io::split(stream);
                let mut state = LinkState::new();
                tcp(&mut rd, &mut wr, &mut state, Some(call), &mut rx, max_in_flight, false).await
            }
            (Framing::Tcp, None) => {
                let link = Box::new(Link::new(stream));
                plain(link, call, &mut rx, max_in_flight, &shared).await
            }
            _ => rtu(stream, call, &mut rx, config.rtu_silence).await,
        };
        match outcome {
            Ended::Closed => return,
            Ended::Broken(pending) => next = pending,
            Ended::Idle => {}
        }
    }
}

/// A plain TCP connection: driven by this task while it has work, parked
/// for callers to borrow while it has none (see [`super::link`]).
async fn plain(
    mut link: Box<Link>,
    first: Call,
    rx: &mut mpsc::Receiver<Call>,
    max_in_flight: usize,
    shared: &Shared,
) -> Ended {
    let mut next = Some(first);
    loop {
        let outcome = {
            let Link { stream, state, .. } = &mut *link;
            let (mut rd, mut wr) = stream.split();
            tcp(&mut rd, &mut wr, state, next.take(), rx, max_in_flight, true).await
        };
        if !matches!(outcome, Ended::Idle) {
            return outcome;
        }
        shared.park(link);
        next = tokio::select! {
            call = rx.recv() => match call {
                Some(call) => Some(call),
                None => return Ended::Closed,
            },
            () = shared.returned() => None,
        };
        link = match shared.reclaim().await {
            Reclaimed::Link(link) => link,
            Reclaimed::Dead => return Ended::Broken(next),
        };
    }
}

/// How a connection ended.
enum Ended {
    /// Every handle is gone.
    Closed,
    /// The connection broke; a request taken but not yet sent goes on.
    Broken(Option<Call>),
    /// Nothing is in flight and nothing waits (only when asked to park).
    Idle,
}

/// Replies to every waiter with an error made by `error`.
fn fail_all(waiters: &mut HashMap<u16, Call>, error: impl Fn() -> ClientError) {
    for (_, call) in waiters.drain() {
        call.answer(Err(error()));
    }
}

fn lost(e: &io::Error) -> impl Fn() -> ClientError + '_ {
    move || ClientError::ConnectionLost(io::Error::new(e.kind(), e.to_string()))
}

/// Drives a Modbus TCP connection until it breaks or every handle is gone;
/// with `park`, also returns [`Ended::Idle`] once nothing is in flight and
/// nothing waits, so the connection can be lent to callers.
async fn tcp<R, W>(
    rd: &mut R,
    wr: &mut W,
    state: &mut LinkState,
    first: Option<Call>,
    rx: &mut mpsc::Receiver<Call>,
    max_in_flight: usize,
    park: bool,
) -> Ended
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let LinkState { tracker, waiters, buf } = state;
    let mut out: Vec<u8> = Vec::with_capacity(mbap::MAX_ADU_LEN);
    let mut next = first;
    let mut open = true;
    // One timer for the whole connection, armed at the earliest deadline
    // in flight and moved only to an earlier one: requests one after the
    // other (each due later than the last) leave it armed, instead of
    // registering a timer per request. When it fires early (its request
    // was answered), expiry finds nothing and it is armed again.
    let timer = tokio::time::sleep_until(Instant::now());
    tokio::pin!(timer);
    let mut armed: Option<Instant> = None;
    loop {
        if next.is_some() && tracker.in_flight() < MAX_IN_FLIGHT {
            // Every request that waits goes out in one write, up to the
            // limit in flight: under load, one system call for many.
            out.clear();
            let now = Instant::now();
            while let Some(call) = next.take().or_else(|| {
                (tracker.in_flight() < max_in_flight)
                    .then(|| rx.try_recv().ok())
                    .flatten()
            }) {
                if call.reply.is_closed() {
                    continue;
                }
                if call.deadline <= now {
                    call.answer(Err(ClientError::Expired));
                    continue;
                }
                let Ok(header) = tracker.start_with_deadline(call.unit, call.expect, call.deadline) else {
                    // The table is full: this one waits for an answer.
                    next = Some(call);
                    break;
                };
                let start = out.len();
                out.resize(start + mbap::MAX_ADU_LEN, 0);
                match mbap::encode(header, &call.pdu[..], &mut out[start..]) {
                    Ok(n) => out.truncate(start + n),
                    Err(e) => {
                        out.truncate(start);
                        let _ = tracker.cancel(header.transaction_id);
                        call.answer(Err(ClientError::Encode(e)));
                        continue;
                    }
                }
                waiters.insert(header.transaction_id, call);
            }
            // Flushed at once: a TLS stream keeps records back until then.
            if !out.is_empty() {
                if let Err(e) = write_frame(wr, &out).await {
                    fail_all(waiters, lost(&e));
                    return Ended::Broken(next);
                }
            }
            continue;
        }
        if !open && waiters.is_empty() {
            return Ended::Closed;
        }
        if park && open && waiters.is_empty() && tracker.in_flight() == 0 && rx.is_empty() {
            return Ended::Idle;
        }
        if let Some(deadline) = tracker.poll_timeout() {
            if armed.is_none_or(|at| deadline < at) {
                timer.as_mut().reset(deadline);
                armed = Some(deadline);
            }
        }
        tokio::select! {
            call = rx.recv(), if open && tracker.in_flight() < max_in_flight => match call {
                Some(call) => next = Some(call),
                None => open = false,
            },
            read = rd.read_buf(buf) => {
                let error = match read {
                    Ok(0) => io::Error::new(io::ErrorKind::UnexpectedEof, "the device closed the connection"),
                    Err(e) => e,
                    Ok(_) => {
                        match deliver_tcp(buf, tracker, waiters) {
                            Ok(()) => continue,
                            Err(Desync::Framing(e)) => {
                                warn!(error = %e, "modbus framing error; dropping the connection");
                                fail_all(waiters, || ClientError::Framing(e));
                                return Ended::Broken(None);
                            }
                            Err(Desync::Stray(transaction_id)) => {
                                warn!(transaction_id, in_flight = waiters.len(), "the device answered a transaction id it was not sent; its requests failed and the connection dropped");
                                fail_all(waiters, || ClientError::DeviceFault);
                                return Ended::Broken(None);
                            }
                        }
                    }
                };
                debug!(error = %error, "modbus connection lost");
                fail_all(waiters, lost(&error));
                return Ended::Broken(None);
            }
            () = &mut timer, if armed.is_some() => {
                armed = None;
                let now = Instant::now();
                while let Some(id) = tracker.poll_expired(now) {
                    if let Some(call) = waiters.remove(&id) {
                        call.answer(Err(ClientError::Timeout));
                    }
                }
            }
        }
    }
}

/// Writes one request frame and flushes it.
async fn write_frame<W: AsyncWrite + Unpin + ?Sized>(wr: &mut W, frame: &[u8]) -> io::Result<()> {
    wr.write_all(frame).await?;
    wr.flush().await
}

/// Hands every whole frame in `buf` to its waiter.
fn deliver_tcp(
    buf: &mut BytesMut,
    tracker: &mut Transactions<Instant, MAX_IN_FLIGHT>,
    waiters: &mut HashMap<u16, Call>,
) -> Result<(), Desync> {
    while let Some(frame) = mbap::decode(buf)? {
        let len = frame.len();
        match tracker.handle_frame(frame) {
            Matched::Response { transaction_id, result } => {
                let answer = result
                    .map(|_| Bytes::copy_from_slice(frame.pdu))
                    .map_err(ClientError::InvalidResponse);
                if let Some(call) = waiters.remove(&transaction_id) {
                    call.answer(answer);
                }
            }
            Matched::Late { transaction_id } => {
                debug!(transaction_id, "modbus answer to a request that already ended, dropped");
            }
            Matched::Stray { transaction_id } => {
                // Not asked, and not late: the device's answers cannot be
                // matched to requests any more.
                return Err(Desync::Stray(transaction_id));
            }
        }
        buf.advance(len);
    }
    Ok(())
}

/// Why a Modbus TCP connection can no longer be trusted.
#[derive(Debug)]
enum Desync {
    /// The stream is not Modbus framing.
    Framing(outpost_modbus_core::FrameError),
    /// An answer with a transaction id no request carries.
    Stray(u16),
}

impl From<outpost_modbus_core::FrameError> for Desync {
    fn from(e: outpost_modbus_core::FrameError) -> Self {
        Desync::Framing(e)
    }
}

/// Opens a serial port for RTU: 8 data bits, even parity, 1 stop bit (the
/// specification's default), at `baud`.
#[cfg(feature = "serial")]
fn open_serial(path: &str, baud: u32) -> io::Result<tokio_serial::SerialStream> {
    use tokio_serial::SerialPortBuilderExt;
    tokio_serial::new(path, baud)
        .data_bits(tokio_serial::DataBits::Eight)
        .parity(tokio_serial::Parity::Even)
        .stop_bits(tokio_serial::StopBits::One)
        .open_native_async()
        .map_err(io::Error::from)
}

/// RTU, one request at a time, over a TCP stream to a serial gateway or a serial port.
async fn rtu<S>(stream: S, first: Call, rx: &mut mpsc::Receiver<Call>, silence: Duration) -> Ended
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    let (rd, wr) = tokio::io::split(stream);
    tokio::pin!(rd);
    tokio::pin!(wr);
    let mut buf = BytesMut::with_capacity(2 * rtu::MAX_ADU_LEN);
    let mut frame = [0u8; rtu::MAX_ADU_LEN];
    let mut next = Some(first);
    loop {
        let call = match next.take() {
            Some(call) => call,
            None => match rx.recv().await {
                Some(call) => call,
                None => return Ended::Closed,
            },
        };
        if call.reply.is_closed() {
            continue;
        }
        if call.deadline <= Instant::now() {
            call.answer(Err(ClientError::Expired));
            continue;
        }
        let n = match rtu::encode(call.unit, &call.pdu[..], &mut frame) {
            Ok(n) => n,
            Err(e) => {
                call.answer(Err(ClientError::Encode(e)));
                continue;
            }
        };
        // Whatever arrived since the last answer is stale.
        buf.clear();
        if let Err(e) = write_frame(&mut wr, &frame[..n]).await {
            call.answer(Err(lost(&e)()));
            return Ended::Broken(None);
        }
        // Which bytes answer the request is the sans-IO exchange's to say;
        // this loop only reads and keeps time.
        let exchange = RtuExchange::new(call.unit, call.expect);
        let answer = loop {
            match exchange.poll(&buf) {
                Ok(RtuMatch::Answer { result, consumed }) => {
                    let answer = result.map(Bytes::copy_from_slice).map_err(ClientError::InvalidResponse);
                    buf.advance(consumed);
                    break Ok(answer);
                }
                Ok(RtuMatch::NeedMore { discard }) => buf.advance(discard),
                Ok(_) => {}
                Err(e) => break Err(e),
            }
            // Serial framing ends with a silence: bytes that start no frame
            // and are followed by silence were noise.
            let wait = if buf.is_empty() {
                call.deadline
            } else {
                call.deadline.min(Instant::now() + silence)
            };
            match timeout_at(wait, rd.read_buf(&mut buf)).await {
                Err(_) if wait < call.deadline => buf.advance(exchange.on_silence(buf.len())),
                Err(_) => break Ok(Err(ClientError::Timeout)),
                Ok(Ok(0)) => {
                    let e = io::Error::new(io::ErrorKind::UnexpectedEof, "the gateway closed the connection");
                    call.answer(Err(lost(&e)()));
                    return Ended::Broken(None);
                }
                Ok(Err(e)) => {
                    call.answer(Err(lost(&e)()));
                    return Ended::Broken(None);
                }
                Ok(Ok(_)) => {}
            }
        };
        match answer {
            Ok(result) => call.answer(result),
            Err(e) => {
                call.answer(Err(ClientError::Framing(e)));
                return Ended::Broken(None);
            }
        }
    }
}
