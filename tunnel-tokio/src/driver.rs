//! The connection task: drives one `tunnel-proto` session over any
//! `AsyncRead + AsyncWrite`, with one timer, commands in and events out over
//! bounded channels.
//!
//! The task never blocks on one side while another waits on it: it waits
//! for room for its next event, for the stream to take its output, for
//! input, for a command,
//! for a close and for the session's timer all at once. While the
//! application is slow to take events, the task stops reading (the
//! session's windows then hold the peer back). A message that waits for
//! send credit waits in a bounded queue of its own, in order with the later
//! messages of its channel; commands for other channels, resets and closes
//! go on meanwhile. Only when that queue is full does the task stop taking
//! commands (the bounded command channel then holds the application back);
//! a close never waits (it comes on its own watch).

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::task::AtomicWaker;
use outpost_tunnel_proto::{
    AgentId, ChannelId, ChannelKind, ErrorCode, Event, Message, OpenError, SendError, Session, SessionError,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::mpsc;
use tracing::{debug, trace};

/// Output taken from the session before it is written, at most (a little
/// more if one frame is larger).
const BATCH: usize = 64 * 1024;
/// How long a closing session waits for its last bytes to be written.
const LINGER: Duration = Duration::from_secs(2);
/// Messages that may wait for send credit before commands stop being taken.
const MAX_STALLED: usize = 1024;
/// Events handed over in one turn of the loop without waiting.
const DELIVER_AT_ONCE: usize = 16;

/// What the application asks of the session.
#[derive(Debug)]
pub(crate) enum Command {
    /// Open a message channel; the result comes as [`DriverEvent::Opened`].
    Open { token: u64, target: Box<Target> },
    /// Accept a channel the peer opened.
    Accept(ChannelId),
    /// Refuse a channel the peer opened.
    Refuse(ChannelId, ErrorCode),
    /// Send one message.
    Send {
        channel: ChannelId,
        correlation: u32,
        payload: Bytes,
    },
    /// Abandon a channel.
    Reset(ChannelId, ErrorCode),
    /// Start a graceful shutdown (GOAWAY, code SHUTDOWN): no new channels;
    /// the session closes once the peer has closed every channel, or after
    /// `drain`.
    GoAway(Duration),
}

/// What a channel is opened to: boxed in commands and events, so the rare
/// open does not size every slot of their queues (which a hub keeps for
/// every idle agent).
#[derive(Debug)]
pub(crate) struct Target {
    /// The device, by name.
    pub(crate) name: Bytes,
    /// The channel's metadata (the binding's role and options).
    pub(crate) metadata: Bytes,
}

/// What happened in the session.
#[derive(Debug)]
pub(crate) enum DriverEvent {
    /// The handshake completed.
    Established(AgentId),
    /// The session's answer to [`Command::Open`].
    Opened {
        token: u64,
        result: Result<ChannelId, OpenError>,
    },
    /// The peer asks to open a channel.
    ChannelRequested {
        channel: ChannelId,
        kind: ChannelKind,
        target: Box<Target>,
    },
    /// The peer accepted a channel this side opened.
    ChannelAccepted(ChannelId),
    /// The peer refused a channel this side opened.
    ChannelRefused(ChannelId, ErrorCode),
    /// A message arrived.
    Message(ChannelId, Message),
    /// A channel is gone (reset by either side, or closed).
    ChannelGone(ChannelId),
    /// The peer is going away: open no more channels.
    GoingAway,
}

/// How a session ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Ended {
    /// The session closed (cleanly or not; the error says).
    #[error("{0}")]
    Session(SessionError),
    /// The connection failed under the session.
    #[error("connection: {0}")]
    Io(#[from] io::Error),
}

/// Ends a driven session from anywhere, at once: a close never waits
/// behind commands.
#[derive(Debug, Clone)]
pub(crate) struct Closer(Arc<CloseSignal>);

/// The first close asked for, and the driver waiting for it.
///
/// Not a `watch`: the driver looks at it on every turn of its loop, and a
/// watch's receiver takes a lock to do so; this takes an atomic load.
#[derive(Debug, Default)]
pub(crate) struct CloseSignal {
    asked: std::sync::Mutex<Option<(ErrorCode, &'static str)>>,
    /// `asked` holds the first close.
    set: AtomicBool,
    driver: AtomicWaker,
}

impl Closer {
    /// Asks the session to end with `code` and `reason`, sent in its CLOSE
    /// (the first close asked wins).
    pub(crate) fn close(&self, code: ErrorCode, reason: &'static str) {
        let mut asked = self.0.asked.lock().unwrap_or_else(|p| p.into_inner());
        if asked.is_none() {
            *asked = Some((code, reason));
            self.0.set.store(true, Release);
            drop(asked);
            self.0.driver.wake();
        }
    }
}

/// Where the driver learns of a close.
#[derive(Debug)]
pub(crate) struct CloseWatch(Arc<CloseSignal>);

impl CloseWatch {
    /// The first close asked for, once there is one.
    fn poll_asked(&self, cx: &mut Context<'_>) -> Poll<(ErrorCode, &'static str)> {
        if !self.0.set.load(Acquire) {
            self.0.driver.register(cx.waker());
            // Asked between the look and the registration: not missed.
            if !self.0.set.load(Acquire) {
                return Poll::Pending;
            }
        }
        match *self.0.asked.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(asked) => Poll::Ready(asked),
            None => Poll::Pending,
        }
    }
}

/// A closer and where the driver learns of its close.
pub(crate) fn closer() -> (Closer, CloseWatch) {
    let signal = Arc::new(CloseSignal::default());
    (Closer(Arc::clone(&signal)), CloseWatch(signal))
}

/// What the driver keeps between turns of its loop.
#[derive(Default)]
struct Queues {
    /// Events produced by commands (open results), handed out first.
    produced: VecDeque<DriverEvent>,
    /// Channels with messages to read, in turn.
    readable: VecDeque<ChannelId>,
    /// Messages waiting for send credit, in order.
    stalled: VecDeque<(ChannelId, u32, Bytes)>,
}

/// The application's side of a driven session: where its events go,
/// where its commands come from, and the application's own clock, which
/// the driver keeps with the session's.
pub(crate) trait Port: Send {
    /// Waits for whichever comes first: room for `event` (then taken from
    /// the slot and handed over), or a command when `commands` is set.
    /// Called only when there is an event or commands are wanted.
    fn turn<'a>(
        &'a mut self,
        event: &'a mut Option<DriverEvent>,
        commands: bool,
    ) -> impl std::future::Future<Output = Turn> + Send + 'a;

    /// Hands `event` over now if there is room for it (then taken from
    /// the slot): `Some(Turn::Delivered)`, or `Some(Turn::Deaf)` when
    /// nobody takes events any more; `None` when it must wait for a
    /// [`Port::turn`]. Saves a turn of the driver's loop per event.
    fn try_deliver(&mut self, event: &mut Option<DriverEvent>) -> Option<Turn>;

    /// When the application's clock next needs a turn.
    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }

    /// Time passed: the application's clock is at `now`.
    fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
    }
}

/// What one [`Port::turn`] gave.
pub(crate) enum Turn {
    /// The event was handed over.
    Delivered,
    /// Nobody takes events any more.
    Deaf,
    /// A command to apply.
    Command(Command),
    /// No more commands will come (the application dropped its handle).
    Hangup,
}

/// A port of two bounded queues: commands in, events out. While the
/// application is slow to take events, the driver stops reading.
pub(crate) struct Channels {
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) events: mpsc::Sender<DriverEvent>,
}

impl Port for Channels {
    fn try_deliver(&mut self, event: &mut Option<DriverEvent>) -> Option<Turn> {
        match self.events.try_reserve() {
            Ok(permit) => {
                if let Some(event) = event.take() {
                    permit.send(event);
                }
                Some(Turn::Delivered)
            }
            Err(mpsc::error::TrySendError::Full(())) => None,
            Err(mpsc::error::TrySendError::Closed(())) => Some(Turn::Deaf),
        }
    }

    async fn turn(&mut self, event: &mut Option<DriverEvent>, commands: bool) -> Turn {
        let deliver = event.is_some();
        tokio::select! {
            permit = self.events.reserve(), if deliver => match permit {
                Ok(permit) => {
                    if let Some(event) = event.take() {
                        permit.send(event);
                    }
                    Turn::Delivered
                }
                Err(_) => Turn::Deaf,
            },
            command = self.commands.recv(), if commands => match command {
                Some(command) => Turn::Command(command),
                None => Turn::Hangup,
            },
            else => std::future::pending().await,
        }
    }
}

/// Runs `session` over `io` until it closes or the connection fails, with
/// the application behind two bounded queues.
pub(crate) fn drive<S>(
    io: S,
    session: Session,
    commands: mpsc::Receiver<Command>,
    close: CloseWatch,
    events: mpsc::Sender<DriverEvent>,
) -> impl std::future::Future<Output = Ended> + Send
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let port = Channels { commands, events };
    let driving = drive_with(io, session, port, close);
    async move { driving.await.0 }
}

/// Runs `session` over `io` until it closes or the connection fails, with
/// the application behind `port`; gives the port back at the end.
///
/// The stream and the session are boxed here, outside the future: an async
/// function keeps its arguments for its whole life, and values moved out
/// of them would still size every idle session's task (a TLS stream is
/// some 1.2 KiB, a session 1 KiB).
pub(crate) fn drive_with<S, P>(
    io: S,
    session: Session,
    port: P,
    close: CloseWatch,
) -> impl std::future::Future<Output = (Ended, P)> + Send
where
    S: AsyncRead + AsyncWrite + Send + 'static,
    P: Port,
{
    drive_boxed(Box::pin(io), Box::new(session), port, close)
}

async fn drive_boxed<S, P>(mut io: Pin<Box<S>>, mut session: Box<Session>, mut port: P, close: CloseWatch) -> (Ended, P)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
    P: Port,
{
    let mut output = Output::default();
    let mut input = Input::default();
    let mut pending: Option<DriverEvent> = None;
    let mut queues = Queues::default();
    let mut app_gone = false;
    // The close asked for was taken.
    let mut closed = false;
    let mut hung_up = false;
    let mut failure: Option<io::Error> = None;
    // One timer for the session's life, moved only when its deadline
    // does: a timer made per turn cost an insertion into and a removal
    // from the runtime's wheel on every one.
    let far = || tokio::time::Instant::now() + Duration::from_secs(3600);
    let mut armed = far();
    let sleep = tokio::time::sleep_until(armed);
    tokio::pin!(sleep);
    loop {
        if pending.is_none() {
            pending = next_event(&mut session, &mut queues);
        }
        // Events go out at once while the application has room for them
        // (a few: the loop's other work gets its turn after them).
        for _ in 0..DELIVER_AT_ONCE {
            if pending.is_none() || app_gone {
                break;
            }
            match port.try_deliver(&mut pending) {
                Some(Turn::Delivered) => pending = next_event(&mut session, &mut queues),
                Some(Turn::Deaf) => deaf(&mut session, &mut pending, &mut app_gone),
                Some(Turn::Command(_) | Turn::Hangup) | None => break,
            }
        }
        output.transmit(&mut session);
        if session.is_closed() && (pending.is_none() || app_gone) {
            break;
        }
        let timer = match (session.poll_timeout(), port.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let timer = timer.map(tokio::time::Instant::from_std);
        // Without a deadline the old one stays (it fires and finds nothing
        // due) unless it passed; a far one is set then.
        match timer {
            Some(at) if at != armed => {
                armed = at;
                sleep.as_mut().reset(at);
            }
            None if sleep.is_elapsed() => {
                armed = far();
                sleep.as_mut().reset(armed);
            }
            _ => {}
        }
        let read = (pending.is_none() || app_gone) && !session.is_closed();
        let commands = !hung_up && queues.stalled.len() < MAX_STALLED && !session.is_closed();
        tokio::select! {
            turn = port.turn(&mut pending, commands), if (pending.is_some() && !app_gone) || commands => match turn {
                Turn::Delivered => {}
                Turn::Deaf => deaf(&mut session, &mut pending, &mut app_gone),
                Turn::Command(command) => apply(&mut session, command, &mut queues),
                Turn::Hangup => {
                    // The application dropped its handle: end gracefully.
                    hung_up = true;
                    session.close(ErrorCode::NoError, b"");
                }
            },
            done = Transfer { io: io.as_mut(), output: &mut output, input: read.then_some((&mut input, &mut *session)) } => match done {
                Transferred::Wrote | Transferred::Read => {}
                Transferred::Failed(e) => {
                    failure = Some(e);
                    break;
                }
            },
            (code, reason) = std::future::poll_fn(|cx| close.poll_asked(cx)), if !closed && !session.is_closed() => {
                closed = true;
                session.close(code, reason.as_bytes());
            }
            () = &mut sleep => {
                let now = Instant::now();
                session.handle_timeout(now);
                port.handle_timeout(now);
            }
        }
    }
    if failure.is_none() {
        // The last bytes (a CLOSE) get a moment; a peer that does not read
        // them does not hold the end back.
        let _ = tokio::time::timeout(LINGER, async {
            loop {
                output.transmit(&mut session);
                if output.is_done() {
                    break;
                }
                let transfer = Transfer {
                    io: io.as_mut(),
                    output: &mut output,
                    input: None,
                };
                if let Transferred::Failed(e) = transfer.await {
                    debug!(error = %e, "tunnel write failed");
                    return;
                }
            }
            let _ = io.shutdown().await;
        })
        .await;
    }
    let ended = match (session.error(), failure) {
        (Some(e), _) => Ended::Session(e.clone()),
        (None, Some(e)) => Ended::Io(e),
        (None, None) => Ended::Io(io::Error::other("session ended without an error")),
    };
    (ended, port)
}

/// Nobody takes events any more: the session ends.
fn deaf(session: &mut Session, pending: &mut Option<DriverEvent>, app_gone: &mut bool) {
    *app_gone = true;
    *pending = None;
    session.close(ErrorCode::Cancel, b"application ended");
}

/// What the session has to send, and how much of it went out.
#[derive(Default)]
struct Output {
    buf: Vec<u8>,
    /// Bytes of `buf` already written.
    written: usize,
    /// Written since the last flush: a TLS stream may accept bytes and
    /// keep their records back (when the socket was not writable at that
    /// moment) until it is flushed, and nothing else would ever send them.
    unflushed: bool,
}

impl Output {
    /// What an idle session keeps between writes: a keepalive, a few
    /// requests. A larger buffer is given back once it is written out.
    const KEEP: usize = 4 * 1024;

    /// Takes what the session has to send, up to [`BATCH`] waiting.
    fn transmit(&mut self, session: &mut Session) {
        while self.buf.len() < BATCH && session.poll_transmit(Instant::now(), &mut self.buf) > 0 {}
    }

    /// Everything taken was written and flushed.
    fn is_done(&self) -> bool {
        self.written == self.buf.len() && !self.unflushed
    }

    /// `n` more bytes were written.
    fn wrote(&mut self, n: usize) {
        self.written += n;
        self.unflushed = true;
        if self.written == self.buf.len() {
            if self.buf.capacity() > Self::KEEP {
                self.buf = Vec::new();
            } else {
                self.buf.clear();
            }
            self.written = 0;
        }
    }
}

/// One turn of the connection's I/O: writes (and flushes) what waits to
/// be written, and reads when `input` is given; whichever is ready first.
/// One stream, read and written from the same task: no split halves, no
/// writer task, no queue between them.
struct Transfer<'a, S: ?Sized> {
    io: Pin<&'a mut S>,
    output: &'a mut Output,
    /// Where reads go, when the session takes input now.
    input: Option<(&'a mut Input, &'a mut Session)>,
}

/// What one [`Transfer`] did.
enum Transferred {
    /// Bytes were written, or flushed.
    Wrote,
    /// Bytes were read and handed to the session.
    Read,
    /// The connection failed (a peer's close included).
    Failed(io::Error),
}

impl<S: AsyncRead + AsyncWrite + ?Sized> std::future::Future for Transfer<'_, S> {
    type Output = Transferred;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Transferred> {
        let this = self.get_mut();
        let output = &mut *this.output;
        if output.written < output.buf.len() {
            match this.io.as_mut().poll_write(cx, &output.buf[output.written..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Transferred::Failed(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => {
                    output.wrote(n);
                    // All of it taken: flushed now, not in a turn of its own.
                    if output.written == output.buf.len() {
                        if let Poll::Ready(Ok(())) = this.io.as_mut().poll_flush(cx) {
                            output.unflushed = false;
                        }
                    }
                    return Poll::Ready(Transferred::Wrote);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Transferred::Failed(e)),
                Poll::Pending => {}
            }
        } else if output.unflushed {
            match this.io.as_mut().poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    output.unflushed = false;
                    return Poll::Ready(Transferred::Wrote);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Transferred::Failed(e)),
                Poll::Pending => {}
            }
        }
        if let Some((input, session)) = this.input.as_mut() {
            // Not zeroed: a turn that reads nothing (most of them) costs
            // no 1 KiB of stores.
            let mut small = [std::mem::MaybeUninit::<u8>::uninit(); Input::SMALL];
            let mut buf = if input.large.is_empty() {
                ReadBuf::uninit(&mut small)
            } else {
                ReadBuf::new(&mut input.large[..])
            };
            match this.io.as_mut().poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                    let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "the peer closed the connection");
                    return Poll::Ready(Transferred::Failed(eof));
                }
                Poll::Ready(Ok(())) => {
                    let n = buf.filled().len();
                    session.handle_input(Instant::now(), buf.filled());
                    input.read(n);
                    return Poll::Ready(Transferred::Read);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Transferred::Failed(e)),
                Poll::Pending => {}
            }
        }
        Poll::Pending
    }
}

/// The read buffer: none at all while the session idles (an idle session
/// costs memory on a hub with thousands of them: its reads go through a
/// small buffer on the stack), a large one once reads fill the small one,
/// given back when the traffic stops.
#[derive(Default)]
struct Input {
    large: Vec<u8>,
}

impl Input {
    /// What an idle session reads at once: a keepalive or a few requests.
    const SMALL: usize = 1024;
    /// What a busy one reads at once: a whole TLS record.
    const LARGE: usize = 16 * 1024;

    /// How much the next read may take.
    fn size(&self) -> usize {
        if self.large.is_empty() {
            Self::SMALL
        } else {
            self.large.len()
        }
    }

    /// `n` bytes were read: grow if they filled the buffer, give the large
    /// one back if the small one would have held them.
    fn read(&mut self, n: usize) {
        if n == self.size() && n < Self::LARGE {
            self.large = vec![0; Self::LARGE];
        } else if n < Self::SMALL && !self.large.is_empty() {
            self.large = Vec::new();
        }
    }
}

/// The next event to hand to the application, if any.
fn next_event(session: &mut Session, queues: &mut Queues) -> Option<DriverEvent> {
    if let Some(event) = queues.produced.pop_front() {
        return Some(event);
    }
    while let Some(event) = session.poll_event() {
        trace!(?event, "tunnel event");
        match event {
            Event::Established { agent, .. } => return Some(DriverEvent::Established(agent)),
            Event::ChannelRequested {
                channel,
                kind,
                target,
                metadata,
            } => {
                return Some(DriverEvent::ChannelRequested {
                    channel,
                    kind,
                    target: Box::new(Target { name: target, metadata }),
                })
            }
            Event::ChannelAccepted { channel } => return Some(DriverEvent::ChannelAccepted(channel)),
            Event::ChannelRefused { channel, code } => return Some(DriverEvent::ChannelRefused(channel, code)),
            Event::Readable { channel } if !queues.readable.contains(&channel) => queues.readable.push_back(channel),
            Event::Writable { .. } => flush_stalled(session, &mut queues.stalled),
            Event::ChannelReset { channel, .. } | Event::ChannelClosed { channel } => {
                queues.readable.retain(|c| *c != channel);
                queues.stalled.retain(|(c, _, _)| *c != channel);
                return Some(DriverEvent::ChannelGone(channel));
            }
            Event::GoingAway { .. } => return Some(DriverEvent::GoingAway),
            // The driver's caller learns the error from its return value.
            Event::Closed(_) => {}
            _ => {}
        }
    }
    while let Some(&channel) = queues.readable.front() {
        match session.recv_message(channel) {
            Ok(Some(message)) => return Some(DriverEvent::Message(channel, message)),
            Ok(None) | Err(_) => {
                queues.readable.pop_front();
            }
        }
    }
    None
}

/// Sends what waited for credit, keeping each channel's order: once a
/// channel's message is blocked, its later messages wait behind it.
fn flush_stalled(session: &mut Session, stalled: &mut VecDeque<(ChannelId, u32, Bytes)>) {
    let mut blocked: Vec<ChannelId> = Vec::new();
    let mut keep = VecDeque::with_capacity(stalled.len());
    for (channel, correlation, payload) in stalled.drain(..) {
        if blocked.contains(&channel) {
            keep.push_back((channel, correlation, payload));
            continue;
        }
        match session.send_message_bytes(channel, correlation, payload.clone()) {
            Ok(()) => {}
            Err(SendError::Blocked) => {
                blocked.push(channel);
                keep.push_back((channel, correlation, payload));
            }
            // The channel is gone; its requests fail where they wait.
            Err(e) => debug!(%channel, error = %e, "message dropped"),
        }
    }
    *stalled = keep;
}

/// Applies a command; a send without credit waits in `queues.stalled`.
fn apply(session: &mut Session, command: Command, queues: &mut Queues) {
    match command {
        Command::Open { token, target } => {
            let result = session.open_channel(ChannelKind::Message, &target.name, &target.metadata);
            queues.produced.push_back(DriverEvent::Opened { token, result });
        }
        Command::Accept(channel) => {
            let _ = session.accept(channel);
        }
        Command::GoAway(drain) => session.shutdown(Instant::now(), ErrorCode::Shutdown, drain),
        Command::Refuse(channel, code) => {
            let _ = session.refuse(channel, code);
        }
        Command::Send {
            channel,
            correlation,
            payload,
        } => {
            if queues.stalled.iter().any(|(c, _, _)| *c == channel) {
                // Behind an earlier message of its channel.
                queues.stalled.push_back((channel, correlation, payload));
                return;
            }
            match session.send_message_bytes(channel, correlation, payload.clone()) {
                Ok(()) => {}
                Err(SendError::Blocked) => queues.stalled.push_back((channel, correlation, payload)),
                // The channel is gone; its requests fail where they wait.
                Err(e) => debug!(%channel, error = %e, "message dropped"),
            }
        }
        Command::Reset(channel, code) => {
            queues.stalled.retain(|(c, _, _)| *c != channel);
            let _ = session.reset(channel, code);
        }
    }
}

#[cfg(test)]
mod tests {
    use outpost_tunnel_proto::{AgentIdentity, ChannelBinding, Config, MemoryCredentials, Random, Secret, Start};

    use super::*;
    use crate::tasks::AbortOnDrop;

    #[test]
    fn the_read_buffer_is_none_while_idle_and_large_while_busy() {
        let mut input = Input::default();
        assert_eq!(input.size(), Input::SMALL);
        assert_eq!(input.large.capacity(), 0);
        // A keepalive leaves it on the stack.
        input.read(40);
        assert_eq!(input.large.capacity(), 0);
        // A read that fills it: more is waiting, read it in larger pieces.
        input.read(Input::SMALL);
        assert_eq!(input.size(), Input::LARGE);
        // Busy reads keep it large, a full one included.
        input.read(Input::SMALL);
        input.read(Input::LARGE);
        assert_eq!(input.size(), Input::LARGE);
        // Quiet again: given back.
        input.read(Input::SMALL - 1);
        assert_eq!(input.size(), Input::SMALL);
        assert_eq!(input.large.capacity(), 0);
    }

    #[test]
    fn the_output_buffer_is_written_in_parts_and_given_back_when_large() {
        let mut output = Output::default();
        assert!(output.is_done());
        output.buf.extend_from_slice(&[1; 100]);
        output.wrote(60);
        assert!(!output.is_done());
        assert_eq!((output.written, output.buf.len()), (60, 100));
        output.wrote(40);
        // All written; a small buffer is kept for the next turn.
        assert_eq!((output.written, output.buf.len()), (0, 0));
        assert!(output.buf.capacity() >= 100);
        assert!(!output.is_done(), "written but not flushed");
        output.unflushed = false;
        assert!(output.is_done());
        // A large one is given back once it is out.
        output.buf.extend_from_slice(&vec![2; Output::KEEP + 1]);
        output.wrote(Output::KEEP + 1);
        assert_eq!(output.buf.capacity(), 0);
    }

    /// A hub and an agent driver over an in-memory pipe, established.
    struct Pair {
        hub_commands: mpsc::Sender<Command>,
        hub_closer: Closer,
        hub_events: mpsc::Receiver<DriverEvent>,
        hub: tokio::task::JoinHandle<Ended>,
        agent_commands: mpsc::Sender<Command>,
        agent_events: mpsc::Receiver<DriverEvent>,
        _agent: AbortOnDrop<Ended>,
    }

    async fn pair() -> Pair {
        pair_over(|io| io).await
    }

    async fn pair_over<S>(wrap: impl Fn(tokio::io::DuplexStream) -> S) -> Pair
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let agent_id = AgentId::new("plant-7").unwrap();
        let secret = Secret::new(&[7; 32]).unwrap();
        let mut store = MemoryCredentials::new();
        store.insert(agent_id.clone(), secret.clone());
        let binding = ChannelBinding::new(&[0x42; 32]).unwrap();
        let now = Instant::now();
        let agent = Session::agent(
            Config::default(),
            AgentIdentity::new(agent_id.clone(), secret),
            Start::new(binding.clone(), Random([1; 32])),
            now,
        );
        let hub = Session::hub(
            Config::default(),
            Arc::new(store),
            Start::new(binding, Random([2; 32])).certified_agent(agent_id),
            now,
        );
        let (a, b) = tokio::io::duplex(64 * 1024);
        let (hub_commands, hub_rx) = mpsc::channel(16);
        let (hub_events_tx, mut hub_events) = mpsc::channel(16);
        let (hub_closer, hub_close) = closer();
        let hub = tokio::spawn(drive(wrap(b), hub, hub_rx, hub_close, hub_events_tx));
        let (agent_commands, agent_rx) = mpsc::channel(16);
        // The agent's application takes one event at a time, when it wants.
        let (agent_events_tx, mut agent_events) = mpsc::channel(1);
        let (_, agent_close) = closer();
        let agent = AbortOnDrop(tokio::spawn(drive(
            wrap(a),
            agent,
            agent_rx,
            agent_close,
            agent_events_tx,
        )));
        assert!(matches!(hub_events.recv().await, Some(DriverEvent::Established(_))));
        assert!(matches!(agent_events.recv().await, Some(DriverEvent::Established(_))));
        Pair {
            hub_commands,
            hub_closer,
            hub_events,
            hub,
            agent_commands,
            agent_events,
            _agent: agent,
        }
    }

    /// The hub opens a channel and the agent accepts it.
    async fn open(p: &mut Pair) -> ChannelId {
        let open = Command::Open {
            token: 1,
            target: Box::new(Target {
                name: Bytes::from_static(b"plc"),
                metadata: Bytes::new(),
            }),
        };
        p.hub_commands.send(open).await.unwrap();
        let Some(DriverEvent::Opened {
            result: Ok(channel), ..
        }) = p.hub_events.recv().await
        else {
            panic!("no channel");
        };
        let Some(DriverEvent::ChannelRequested { channel: requested, .. }) = p.agent_events.recv().await else {
            panic!("no request");
        };
        p.agent_commands.send(Command::Accept(requested)).await.unwrap();
        assert!(matches!(p.hub_events.recv().await, Some(DriverEvent::ChannelAccepted(c)) if c == channel));
        channel
    }

    /// Over streams that send nothing until flushed (TLS records kept back
    /// when the socket was busy), the handshake, a request and its answer
    /// still go through: the writer flushes whenever it has nothing more.
    #[tokio::test]
    async fn streams_that_hold_writes_until_flushed_still_deliver() {
        let held = crate::held::HeldUntilFlush::new;
        let mut p = tokio::time::timeout(Duration::from_secs(5), pair_over(held))
            .await
            .expect("the handshake went through");
        let channel = tokio::time::timeout(Duration::from_secs(5), open(&mut p))
            .await
            .expect("the channel opened");
        for correlation in 0..100 {
            let ask = Command::Send {
                channel,
                correlation,
                payload: Bytes::from_static(b"read"),
            };
            p.hub_commands.send(ask).await.unwrap();
            let asked = tokio::time::timeout(Duration::from_secs(5), p.agent_events.recv()).await;
            let Ok(Some(DriverEvent::Message(at_agent, message))) = asked else {
                panic!("request {correlation} did not arrive: {asked:?}");
            };
            assert_eq!(message.correlation, correlation);
            let answer = Command::Send {
                channel: at_agent,
                correlation,
                payload: Bytes::from_static(b"answer"),
            };
            p.agent_commands.send(answer).await.unwrap();
            let answered = tokio::time::timeout(Duration::from_secs(5), p.hub_events.recv()).await;
            let Ok(Some(DriverEvent::Message(_, message))) = answered else {
                panic!("answer {correlation} did not arrive: {answered:?}");
            };
            assert_eq!(&message.payload[..], b"answer");
        }
    }

    #[tokio::test]
    async fn messages_waiting_for_credit_are_bounded() {
        let mut p = pair().await;
        let channel = open(&mut p).await;
        // The agent takes no events: past the windows, messages wait in the
        // driver, up to its bound; then the command queue fills and the
        // application is held back.
        let payload = Bytes::from(vec![0u8; 1024]);
        let mut taken = 0u32;
        for correlation in 0..4000 {
            let send = Command::Send {
                channel,
                correlation,
                payload: payload.clone(),
            };
            match tokio::time::timeout(Duration::from_millis(200), p.hub_commands.send(send)).await {
                Ok(sent) => {
                    sent.unwrap();
                    taken += 1;
                }
                Err(_) => break,
            }
        }
        assert!(taken as usize >= MAX_STALLED, "{taken}");
        assert!(
            taken < 4000,
            "the driver took every message: nothing held the application back"
        );
        // The close still goes through.
        p.hub_closer.close(ErrorCode::Shutdown, "the hub is stopping");
        assert!(tokio::time::timeout(Duration::from_secs(5), &mut p.hub).await.is_ok());
    }

    #[tokio::test]
    async fn a_close_is_not_stuck_behind_messages_waiting_for_credit() {
        let mut p = pair().await;
        let channel = open(&mut p).await;
        // The agent's application stops taking events: its driver stops
        // reading, the channel's window runs out, the hub's messages wait.
        let payload = Bytes::from(vec![0u8; 8 * 1024]);
        for correlation in 0..200 {
            let send = Command::Send {
                channel,
                correlation,
                payload: payload.clone(),
            };
            tokio::time::timeout(Duration::from_secs(5), p.hub_commands.send(send))
                .await
                .expect("sends waiting for credit do not stop commands")
                .unwrap();
        }
        // A reset and then a close still go through at once.
        p.hub_commands
            .send(Command::Reset(channel, ErrorCode::Cancel))
            .await
            .unwrap();
        p.hub_closer.close(ErrorCode::Shutdown, "the hub is stopping");
        let ended = tokio::time::timeout(Duration::from_secs(5), &mut p.hub)
            .await
            .expect("the close went through")
            .unwrap();
        assert!(matches!(ended, Ended::Session(_)), "{ended:?}");
    }
}
