//! The invariant checker (the fuzz targets' oracle) notices each kind of
//! broken bookkeeping.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use super::channels::State;
use super::*;
use crate::tests::util::Pair;
use crate::ChannelKind;

/// An established hub session with an open stream channel that has data
/// queued both ways (some of it received and unread), and its channel.
fn busy_hub() -> (Session, ChannelId) {
    let mut pair = Pair::connected();
    let channel = pair.open_from_hub(ChannelKind::Stream);
    pair.agent.send(channel, &[1u8; 3000]).unwrap();
    pair.drive();
    // Queued, not yet transmitted.
    pair.hub.send(channel, &[2u8; 500]).unwrap();
    pair.hub.check_invariants();
    (pair.hub, channel)
}

fn breaks(name: &str, corrupt: impl FnOnce(&mut Session, ChannelId)) {
    let (mut session, channel) = busy_hub();
    corrupt(&mut session, channel);
    let noticed = catch_unwind(AssertUnwindSafe(|| session.check_invariants())).is_err();
    assert!(noticed, "the checker missed: {name}");
}

#[test]
fn the_checker_notices_each_broken_invariant() {
    breaks("a pending open not counted", |s, _| s.pending_opens += 1);
    breaks("a channel pending but not counted", |s, c| {
        s.channels.get_mut(&c).unwrap().state = State::Pending;
    });
    breaks("queued bytes the channels do not hold", |s, _| s.queued_bytes += 1);
    breaks("more queued than the send buffer allows", |s, c| {
        let over = s.config.max_send_buffer + 1 - s.queued_bytes;
        s.queued_bytes += over;
        s.channels.get_mut(&c).unwrap().outgoing_bytes += over;
    });
    breaks("more channels than allowed", |s, _| s.config.max_channels = 0);
    breaks("session credit lost", |s, _| {
        s.recv_window = flow::RecvWindow::new(s.config.session_window + 1);
    });
    breaks("channel credit lost", |s, c| {
        s.channels.get_mut(&c).unwrap().incoming_bytes += 1
    });
    breaks("outgoing bytes miscounted", |s, c| {
        s.channels.get_mut(&c).unwrap().outgoing_bytes += 1;
        s.queued_bytes += 1;
    });
    breaks("a scheduled channel not in the queue", |s, _| s.send_queue.clear());
    breaks("a channel in the queue not marked scheduled", |s, c| {
        s.channels.get_mut(&c).unwrap().scheduled = false;
    });
    breaks("a channel queued twice", |s, c| s.send_queue.push_back(c));
    breaks("a closed session still holding channels", |s, c| {
        let held = s.channels.remove(&c).unwrap();
        s.enter_closed(SessionError::TimedOut);
        s.channels.insert(c, held);
    });
    breaks("a closed session with a timer set", |s, _| {
        s.enter_closed(SessionError::TimedOut);
        s.timers
            .set_after(timer::Timer::KeepAlive, Instant::now(), Duration::from_secs(1));
    });
}

#[test]
fn the_checker_passes_a_session_that_keeps_its_books() {
    let (mut session, _) = busy_hub();
    session.check_invariants();
    session.close(ErrorCode::NoError, b"");
    session.check_invariants();
}

#[cfg(feature = "fuzzing")]
#[test]
fn the_fuzzing_hooks_reach_the_checker_and_the_memory_count() {
    let (mut session, channel) = busy_hub();
    assert!(crate::fuzzing::receive_memory(&session) >= 3000);
    assert_eq!(crate::fuzzing::receive_memory(&session), session.receive_memory());
    crate::fuzzing::check_invariants(&session);
    session.channels.get_mut(&channel).unwrap().scheduled = false;
    let noticed = catch_unwind(AssertUnwindSafe(|| crate::fuzzing::check_invariants(&session))).is_err();
    assert!(noticed);
}
