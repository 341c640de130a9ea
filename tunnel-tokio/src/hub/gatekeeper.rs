//! The pre-authentication gate with the tasks of the handshakes it let in,
//! shared by the hub's listener and the Modbus/TCP Security listeners. The
//! rules are [`Gate`]'s (time passed in); this keeps each handshake's task,
//! so that one evicted to make room is ended, and gives a handshake's place
//! back however its task ends.
//!
//! Nothing that may drop a task runs under the lock: a dropped task gives
//! its place back, which takes the lock (a runtime shutting down drops a
//! task spawned on it at once, inside `spawn`; that deadlocked). A task is
//! recorded after it is spawned, while its handshake is in progress; one
//! evicted or ended meanwhile is aborted instead, so none slips past.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::limits::{Admit, Gate, Ticket};

/// A listener's gate and the tasks of its handshakes.
#[derive(Debug)]
pub(crate) struct Gatekeeper {
    state: Mutex<State>,
    /// Told whenever a handshake ends: the table may have room.
    ended: Notify,
}

#[derive(Debug)]
struct State {
    gate: Gate,
    tasks: HashMap<Ticket, AbortHandle>,
}

/// A handshake's place at the gate, given back when dropped.
#[derive(Debug)]
pub(crate) struct Place {
    keeper: Arc<Gatekeeper>,
    ticket: Ticket,
    source: IpAddr,
}

impl Place {
    /// Gives the place back, then counts the handshake as failed against
    /// its source address (see [`Gate::failed_anonymous`]).
    pub(crate) fn failed_anonymous(self, now: Instant) {
        let (keeper, source) = (Arc::clone(&self.keeper), self.source);
        drop(self);
        keeper.with_gate(|g| g.failed_anonymous(now, source));
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut state = self.keeper.state();
        state.gate.finish(self.ticket);
        state.tasks.remove(&self.ticket);
        drop(state);
        self.keeper.ended.notify_one();
    }
}

/// A connection let in: its handshake's task, and how many older
/// handshakes were ended to make room for it.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub(crate) task: AbortHandle,
    pub(crate) evicted: usize,
}

impl Gatekeeper {
    pub(crate) fn new(gate: Gate) -> Arc<Self> {
        Arc::new(Gatekeeper {
            state: Mutex::new(State {
                gate,
                tasks: HashMap::new(),
            }),
            ended: Notify::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `f` to the gate's rules, under its lock.
    pub(crate) fn with_gate<R>(&self, f: impl FnOnce(&mut Gate) -> R) -> R {
        f(&mut self.state().gate)
    }

    /// Decides on a connection from `source` at `now`: `Err` (why) to
    /// close it now, or `spawn` is called with its place to start its
    /// task. The handshakes evicted to make room are ended.
    pub(crate) fn admit(
        self: &Arc<Self>,
        now: Instant,
        source: IpAddr,
        spawn: impl FnOnce(Place) -> AbortHandle,
    ) -> Result<Admitted, &'static str> {
        let (ticket, evicted) = {
            let mut state = self.state();
            let (ticket, evict) = match state.gate.admit(now, source) {
                Admit::Go { ticket, evict } => (ticket, evict),
                Admit::Refuse(why) => return Err(why),
            };
            let evicted: Vec<AbortHandle> = evict.iter().filter_map(|old| state.tasks.remove(old)).collect();
            (ticket, evicted)
        };
        let count = evicted.len();
        for task in evicted {
            task.abort();
        }
        let task = spawn(Place {
            keeper: Arc::clone(self),
            ticket,
            source,
        });
        let mut state = self.state();
        if state.gate.is_in_progress(ticket) {
            state.tasks.insert(ticket, task.clone());
        } else {
            task.abort();
        }
        Ok(Admitted { task, evicted: count })
    }

    /// Returns once the table has room for one more handshake (see
    /// [`Gate::room`]).
    pub(crate) async fn room(&self) {
        loop {
            // Registered before the table is read: a handshake that ends
            // in between still wakes this wait.
            let ended = self.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            let Some(until) = self.state().gate.room(Instant::now()) else {
                return;
            };
            tokio::select! {
                () = ended => {}
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(until)) => {}
            }
        }
    }

    /// Handshakes whose tasks are recorded.
    #[cfg(test)]
    fn recorded(&self) -> usize {
        self.state().tasks.len()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::{Duration, Instant};

    use super::super::limits::{Gate, GateConfig};
    use super::Gatekeeper;

    const SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn keeper(max: usize) -> std::sync::Arc<Gatekeeper> {
        Gatekeeper::new(Gate::new(GateConfig {
            max_handshakes: max,
            per_source: max,
            failure_limit: 10,
            window: Duration::from_secs(60),
            grace: Duration::ZERO,
        }))
    }

    /// A task that waits until it is aborted, holding its place.
    fn holding(place: super::Place) -> tokio::task::AbortHandle {
        tokio::spawn(async move {
            let _place = place;
            std::future::pending::<()>().await;
        })
        .abort_handle()
    }

    #[tokio::test]
    async fn a_handshake_holds_its_place_until_its_task_ends() {
        let keeper = keeper(2);
        let admitted = keeper.admit(Instant::now(), SOURCE, holding).expect("room");
        assert_eq!(admitted.evicted, 0);
        assert_eq!(keeper.recorded(), 1);
        admitted.task.abort();
        // The place comes back when the aborted task is dropped.
        for _ in 0..100 {
            if keeper.recorded() == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(keeper.recorded(), 0);
        assert!(keeper.with_gate(|g| g.room(Instant::now())).is_none());
    }

    #[tokio::test]
    async fn a_full_table_ends_the_oldest_handshake_to_make_room() {
        let keeper = keeper(1);
        let first = keeper.admit(Instant::now(), SOURCE, holding).expect("room");
        let second = keeper.admit(Instant::now(), SOURCE, holding).expect("room made");
        assert_eq!(second.evicted, 1);
        let ended = tokio::time::timeout(Duration::from_secs(5), async {
            while !first.task.is_finished() {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(ended.is_ok(), "the evicted handshake's task was ended");
        assert!(!second.task.is_finished());
        assert_eq!(keeper.recorded(), 1);
    }

    #[tokio::test]
    async fn a_place_given_back_inside_spawn_neither_deadlocks_nor_leaves_a_task_behind() {
        // What a runtime shutting down does: the task is dropped, with its
        // place, before `spawn` returns.
        let keeper = keeper(1);
        let task = tokio::spawn(std::future::pending::<()>());
        let handle = task.abort_handle();
        // On a thread of its own, so that a deadlock fails the test.
        let (done, admitted) = std::sync::mpsc::channel();
        std::thread::spawn({
            let keeper = std::sync::Arc::clone(&keeper);
            move || {
                let admitted = keeper.admit(Instant::now(), SOURCE, |place| {
                    drop(place);
                    handle
                });
                let _ = done.send(admitted);
            }
        });
        let admitted = admitted
            .recv_timeout(Duration::from_secs(10))
            .expect("admit returned (no deadlock)")
            .expect("room");
        // Not recorded: its handshake ended before the task could be.
        assert_eq!(keeper.recorded(), 0);
        let aborted = task.await.expect_err("aborted");
        assert!(aborted.is_cancelled());
        assert!(admitted.task.is_finished());
        // Its place was given back: the next gets in without evicting.
        assert_eq!(keeper.admit(Instant::now(), SOURCE, holding).expect("room").evicted, 0);
    }
}
