//! One agent as the hub's API sees it, across its sessions: the sans-IO
//! [`Requester`] behind a lock, the callers waiting on it, and the session
//! that carries its actions now. This file only moves bytes and time: the
//! rules are the requester's.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use outpost_tunnel_proto::{AgentId, ErrorCode};
use rustls::pki_types::CertificateDer;
use tokio::sync::{mpsc, oneshot, Notify};
use tracing::{debug, info, warn};

use crate::driver::{Closer, Command, DriverEvent, Target};
use crate::profile::{Action, Failure, OpenToken, RequestId, Requester, RequesterConfig, Submit};

/// How much longer than a request's deadline a caller waits for the
/// requester to end it (its outcome may still be on its way: the requester
/// allows up to 500 ms).
const CALLER_SLACK: Duration = Duration::from_millis(600);

/// The session that carries a line's traffic now.
#[derive(Debug)]
struct Carrier {
    generation: u64,
    peer: SocketAddr,
    commands: mpsc::Sender<Command>,
    closer: Closer,
    /// The certificate chain the session authenticated with.
    chain: Vec<CertificateDer<'static>>,
}

#[derive(Debug)]
struct State {
    requester: Requester,
    waiters: HashMap<RequestId, oneshot::Sender<Result<Bytes, Failure>>>,
    carrier: Option<Carrier>,
    generation: u64,
    /// Commands for the carrier that its queue had no room for yet, in
    /// order (bounded by the requester's requests and channels).
    outbox: VecDeque<Command>,
}

impl State {
    /// Moves the requester's actions toward the session: straight into its
    /// queue while there is room (from whichever task holds the lock, so a
    /// request needs no hand-off to reach the driver), the rest in order
    /// into the outbox. Returns whether the outbox holds commands.
    fn flush(&mut self) -> bool {
        while let Some(action) = self.requester.poll_action() {
            self.outbox.push_back(command(action));
        }
        let Some(carrier) = &self.carrier else {
            self.outbox.clear();
            return false;
        };
        while let Some(command) = self.outbox.pop_front() {
            match carrier.commands.try_send(command) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(command)) => {
                    self.outbox.push_front(command);
                    return true;
                }
                // The driver is gone; the session's end is on its way.
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.outbox.clear();
                    return false;
                }
            }
        }
        false
    }

    /// Hands every finished request to its caller.
    fn settle(&mut self) {
        while let Some((id, result)) = self.requester.poll_done() {
            if let Some(waiter) = self.waiters.remove(&id) {
                let _ = waiter.send(result);
            }
        }
    }
}

/// An agent known to the hub.
#[derive(Debug)]
pub(crate) struct Line {
    pub(crate) agent: AgentId,
    state: Mutex<State>,
    /// Wakes the session's pump when the requester has actions.
    wake: Notify,
}

/// A session replaced by a newer one of the same agent.
#[derive(Debug)]
pub(crate) struct Superseded {
    pub(crate) peer: SocketAddr,
}

impl Line {
    pub(crate) fn new(agent: AgentId, config: RequesterConfig) -> Self {
        Line {
            agent,
            state: Mutex::new(State {
                requester: Requester::new(config),
                waiters: HashMap::new(),
                carrier: None,
                generation: 0,
                outbox: VecDeque::new(),
            }),
            wake: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a session is up.
    pub(crate) fn is_up(&self) -> bool {
        self.state().carrier.is_some()
    }

    /// Whether nothing depends on this line: no session, no request.
    pub(crate) fn is_unused(&self) -> bool {
        let state = self.state();
        state.carrier.is_none() && state.requester.is_idle() && state.waiters.is_empty()
    }

    /// Channels the agent's current session holds for the hub's requests.
    pub(crate) fn channel_count(&self) -> usize {
        self.state().requester.channel_count()
    }

    /// Makes a new session the carrier; an older one is closed
    /// (SUPERSEDED) and its requests go on under the rules of a break.
    pub(crate) fn attach(
        &self,
        peer: SocketAddr,
        commands: mpsc::Sender<Command>,
        closer: Closer,
        chain: Vec<CertificateDer<'static>>,
    ) -> (u64, Option<Superseded>) {
        let now = Instant::now();
        let mut state = self.state();
        state.generation += 1;
        let generation = state.generation;
        let old = state.carrier.take();
        state.outbox.clear();
        if old.is_some() {
            state.requester.session_down(now);
        }
        state.carrier = Some(Carrier {
            generation,
            peer,
            commands,
            closer,
            chain,
        });
        state.requester.session_up(now);
        state.settle();
        let waiting = state.flush();
        drop(state);
        if waiting {
            self.wake.notify_one();
        }
        let superseded = old.map(|old| {
            old.closer
                .close(ErrorCode::Superseded, "a newer session of this agent took over");
            Superseded { peer: old.peer }
        });
        (generation, superseded)
    }

    /// The session of `generation` ended.
    pub(crate) fn detach(&self, generation: u64) {
        let mut state = self.state();
        if state.carrier.as_ref().is_some_and(|c| c.generation == generation) {
            state.carrier = None;
            state.outbox.clear();
            state.requester.session_down(Instant::now());
            state.settle();
        }
    }

    /// The current session's peer and certificate chain.
    pub(crate) fn session(&self) -> Option<(SocketAddr, Vec<CertificateDer<'static>>)> {
        let state = self.state();
        state.carrier.as_ref().map(|c| (c.peer, c.chain.clone()))
    }

    /// Asks the current session to end.
    pub(crate) fn close(&self, code: ErrorCode, reason: &'static str) {
        if let Some(carrier) = &self.state().carrier {
            carrier.closer.close(code, reason);
        }
    }

    /// Sends a request and waits for what becomes of it.
    pub(crate) async fn request(&self, submit: Submit) -> Result<Bytes, Failure> {
        let changes = submit.changes;
        let deadline = submit.deadline;
        let (tx, rx) = oneshot::channel();
        let (id, waiting) = {
            let mut state = self.state();
            let id = state.requester.submit(Instant::now(), submit);
            state.waiters.insert(id, tx);
            state.settle();
            (id, state.flush())
        };
        if waiting {
            self.wake.notify_one();
        }
        let mut guard = CancelOnDrop {
            line: self,
            id: Some(id),
        };
        let limit = tokio::time::Instant::from_std(deadline + CALLER_SLACK);
        let mut rx = rx;
        let result = match tokio::time::timeout_at(limit, &mut rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Failure::NoAgent),
            Err(_) => {
                // No session drove the requester's clock (the agent is
                // away): drive it here.
                let mut state = self.state();
                state.requester.handle_timeout(Instant::now());
                state.settle();
                let _ = state.flush();
                drop(state);
                rx.try_recv().unwrap_or(Err(Failure::no_answer(changes)))
            }
        };
        guard.id = None;
        result
    }

    /// Moves the requester's actions into the session of `generation` when
    /// its queue was full, the session's events into the requester, and
    /// time, until the session ends or a newer one takes over (then the
    /// rest of its events are dropped).
    pub(crate) async fn pump(&self, generation: u64, events: &mut mpsc::Receiver<DriverEvent>) {
        let Some(commands) = self.commands(generation) else {
            return;
        };
        loop {
            let (waiting, timer) = {
                let mut state = self.state();
                if state.carrier.as_ref().is_none_or(|c| c.generation != generation) {
                    break;
                }
                (state.flush(), state.requester.poll_timeout())
            };
            let sleep = timer
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => self.on_event(generation, event, &commands),
                    None => return,
                },
                permit = commands.reserve(), if waiting => match permit {
                    Ok(permit) => {
                        let mut state = self.state();
                        if state.carrier.as_ref().is_some_and(|c| c.generation == generation) {
                            if let Some(command) = state.outbox.pop_front() {
                                permit.send(command);
                            }
                        }
                    }
                    Err(_) => break,
                },
                () = self.wake.notified() => {}
                () = tokio::time::sleep_until(sleep) => {
                    let mut state = self.state();
                    state.requester.handle_timeout(Instant::now());
                    state.settle();
                }
            }
        }
        // Superseded, or the driver is gone: drain the rest unread.
        while events.recv().await.is_some() {}
    }

    fn commands(&self, generation: u64) -> Option<mpsc::Sender<Command>> {
        let state = self.state();
        state
            .carrier
            .as_ref()
            .filter(|c| c.generation == generation)
            .map(|c| c.commands.clone())
    }

    fn on_event(&self, generation: u64, event: DriverEvent, commands: &mpsc::Sender<Command>) {
        let now = Instant::now();
        let mut state = self.state();
        if state.carrier.as_ref().is_none_or(|c| c.generation != generation) {
            return;
        }
        let requester = &mut state.requester;
        match event {
            DriverEvent::Opened { token, result } => requester.handle_opened(now, OpenToken(token), result),
            DriverEvent::ChannelAccepted(channel) => requester.handle_accepted(now, channel),
            DriverEvent::ChannelRefused(channel, code) => {
                debug!(agent = %self.agent, %channel, %code, "the agent refused a channel");
                requester.handle_refused(now, channel, code)
            }
            DriverEvent::ChannelGone(channel) => requester.handle_gone(now, channel),
            DriverEvent::Message(channel, message) => {
                requester.handle_message(now, channel, message.correlation, message.payload)
            }
            // The agent may not open channels to the hub: refuse them. A
            // full command queue drops the refusal; the agent's open then
            // times out on its side.
            DriverEvent::ChannelRequested { channel, .. } => {
                if commands.try_send(Command::Refuse(channel, ErrorCode::Refused)).is_err() {
                    warn!(agent = %self.agent, %channel, "a channel the agent opened was left unanswered");
                }
            }
            DriverEvent::GoingAway => {
                info!(target: "outpost::audit", event = "agent.going_away", agent = %self.agent, "the agent is stopping: requests in flight finish, new ones wait for its return");
                requester.session_going_away(now);
            }
            DriverEvent::Established(_) => {}
        }
        state.settle();
        // What the event set off goes out now; leftovers on the next turn.
        let _ = state.flush();
    }
}

/// The command that carries out an action.
fn command(action: Action) -> Command {
    match action {
        Action::Open {
            token,
            target,
            metadata,
        } => Command::Open {
            token: token.0,
            target: Box::new(Target { name: target, metadata }),
        },
        Action::Send {
            channel,
            correlation,
            payload,
        } => Command::Send {
            channel,
            correlation,
            payload,
        },
        Action::Reset { channel, code } => Command::Reset(channel, code),
    }
}

/// Cancels a request whose caller stopped waiting.
struct CancelOnDrop<'a> {
    line: &'a Line,
    id: Option<RequestId>,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let mut state = self.line.state();
            state.waiters.remove(&id);
            state.requester.cancel(Instant::now(), id);
        }
    }
}
