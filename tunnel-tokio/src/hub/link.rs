//! One established session with an agent, as the hub's API sees it:
//! channels opened on demand, requests matched to their outcomes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use outpost_tunnel_proto::{AgentId, ChannelId, ErrorCode, OpenError};
use tokio::sync::{mpsc, oneshot};

use crate::binding::ChannelMetadata;
use crate::driver::{Command, DriverEvent};
use crate::modbus::ClientError;

/// How long the agent may take to accept a channel.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// A request's wait ended without an outcome: the channel or session is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Broken;

/// The state of a channel this side opened.
#[derive(Debug)]
enum Opening {
    Waiting(oneshot::Sender<Result<(), ErrorCode>>),
    Accepted,
    Refused(ErrorCode),
}

#[derive(Debug, Default)]
struct State {
    ended: bool,
    channels: HashMap<(String, ChannelMetadata), ChannelId>,
    opening: HashMap<ChannelId, Opening>,
    waiters: HashMap<(ChannelId, u32), oneshot::Sender<Result<Bytes, Broken>>>,
    next_correlation: u32,
}

/// A session with one agent.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) agent: AgentId,
    pub(crate) peer: SocketAddr,
    commands: mpsc::Sender<Command>,
    state: Mutex<State>,
}

impl Link {
    pub(crate) fn new(agent: AgentId, peer: SocketAddr, commands: mpsc::Sender<Command>) -> Self {
        Link {
            agent,
            peer,
            commands,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn gone(&self) -> ClientError {
        ClientError::NoAgent(self.agent.to_string())
    }

    /// Whether the session has ended.
    pub(crate) fn is_ended(&self) -> bool {
        self.state().ended
    }

    /// Asks the session to end (a newer one replaces it, or the hub stops).
    pub(crate) fn close(&self, code: ErrorCode) {
        if let Err(mpsc::error::TrySendError::Full(command)) = self.commands.try_send(Command::Close(code)) {
            // The queue is full: deliver the close when there is room (if
            // a runtime is still there to do it; without one the session's
            // task is gone too).
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let commands = self.commands.clone();
                runtime.spawn(async move {
                    let _ = commands.send(command).await;
                });
            }
        }
    }

    /// The channel for `target` and `metadata`, opened if needed.
    pub(crate) async fn channel(&self, target: &str, metadata: &ChannelMetadata) -> Result<ChannelId, ClientError> {
        let key = (target.to_owned(), metadata.clone());
        if let Some(channel) = self.state().channels.get(&key) {
            return Ok(*channel);
        }
        let (reply, opened) = oneshot::channel();
        let command = Command::Open {
            target: Bytes::copy_from_slice(target.as_bytes()),
            metadata: Bytes::from(metadata.to_vec()),
            reply,
        };
        self.commands.send(command).await.map_err(|_| self.gone())?;
        let channel = match opened.await {
            Ok(Ok(channel)) => channel,
            Ok(Err(OpenError::TooManyChannels)) => return Err(ClientError::Busy),
            Ok(Err(_)) | Err(_) => return Err(self.gone()),
        };
        let (tx, accepted) = oneshot::channel();
        let wait = {
            let mut state = self.state();
            match state.opening.remove(&channel) {
                Some(Opening::Accepted) => false,
                Some(Opening::Refused(code)) => return Err(ClientError::Refused(code)),
                _ => {
                    state.opening.insert(channel, Opening::Waiting(tx));
                    true
                }
            }
        };
        if wait {
            match tokio::time::timeout(OPEN_TIMEOUT, accepted).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(code))) => return Err(ClientError::Refused(code)),
                Ok(Err(_)) => return Err(self.gone()),
                Err(_) => {
                    self.state().opening.remove(&channel);
                    let _ = self.commands.try_send(Command::Reset(channel, ErrorCode::Cancel));
                    return Err(ClientError::Timeout);
                }
            }
        }
        self.state().channels.insert(key, channel);
        Ok(channel)
    }

    /// Sends a request message; the receiver gets its outcome's bytes.
    /// Fails with [`ClientError::Expired`] if the session cannot take the
    /// message by `deadline` (then nothing was sent).
    pub(crate) async fn send(
        &self,
        channel: ChannelId,
        payload: Bytes,
        deadline: tokio::time::Instant,
    ) -> Result<(u32, oneshot::Receiver<Result<Bytes, Broken>>), ClientError> {
        let (tx, rx) = oneshot::channel();
        let correlation = {
            let mut state = self.state();
            if state.ended {
                return Err(self.gone());
            }
            // Skip ids still waiting (after 2^32 requests on one session).
            let mut id = state.next_correlation;
            while state.waiters.contains_key(&(channel, id)) {
                id = id.wrapping_add(1);
            }
            state.next_correlation = id.wrapping_add(1);
            state.waiters.insert((channel, id), tx);
            id
        };
        let command = Command::Send {
            channel,
            correlation,
            payload,
        };
        match tokio::time::timeout_at(deadline, self.commands.send(command)).await {
            Ok(Ok(())) => Ok((correlation, rx)),
            Ok(Err(_)) => {
                self.state().waiters.remove(&(channel, correlation));
                Err(self.gone())
            }
            Err(_) => {
                self.state().waiters.remove(&(channel, correlation));
                Err(ClientError::Expired)
            }
        }
    }

    /// Stops waiting for a request's outcome.
    pub(crate) fn forget(&self, channel: ChannelId, correlation: u32) {
        self.state().waiters.remove(&(channel, correlation));
    }

    /// Routes one event of the session.
    pub(crate) fn on_event(&self, event: DriverEvent) {
        let mut state = self.state();
        match event {
            DriverEvent::Message(channel, message) => {
                if let Some(waiter) = state.waiters.remove(&(channel, message.correlation)) {
                    let _ = waiter.send(Ok(message.payload));
                }
            }
            DriverEvent::ChannelAccepted(channel) => match state.opening.remove(&channel) {
                Some(Opening::Waiting(tx)) => {
                    let _ = tx.send(Ok(()));
                }
                _ => {
                    state.opening.insert(channel, Opening::Accepted);
                }
            },
            DriverEvent::ChannelRefused(channel, code) => match state.opening.remove(&channel) {
                Some(Opening::Waiting(tx)) => {
                    let _ = tx.send(Err(code));
                }
                _ => {
                    state.opening.insert(channel, Opening::Refused(code));
                }
            },
            DriverEvent::ChannelGone(channel) => {
                state.channels.retain(|_, c| *c != channel);
                state.opening.remove(&channel);
                let broken: Vec<_> = state.waiters.keys().filter(|(c, _)| *c == channel).copied().collect();
                for key in broken {
                    if let Some(w) = state.waiters.remove(&key) {
                        let _ = w.send(Err(Broken));
                    }
                }
            }
            // The agent may not open channels to the hub: refuse them.
            DriverEvent::ChannelRequested { channel, .. } => {
                let _ = self.commands.try_send(Command::Refuse(channel, ErrorCode::Refused));
            }
            DriverEvent::Established(_) | DriverEvent::GoingAway => {}
        }
    }

    /// The session is over: every wait ends.
    pub(crate) fn end(&self) {
        let mut state = self.state();
        state.ended = true;
        state.channels.clear();
        state.opening.clear();
        for (_, w) in state.waiters.drain() {
            let _ = w.send(Err(Broken));
        }
    }
}
