//! What a session reports about itself, and rules seen only from outside:
//! drained, clean endings, the handshake deadline, the control backlog,
//! the agent's answer to a version it did not offer, ping numbering.

use std::time::Duration;

use bytes::Bytes;

use super::util::{hub_open, Builder, Pair};
use crate::frame::{Challenge, NONCE_LEN};
use crate::frame::{Frame, FrameDecoder};
use crate::{
    ChannelId, ChannelKind, ErrorCode, Event, SendError, SessionError, SessionId, Violation, PROTOCOL_VERSION,
};

/// Every frame in `bytes`.
fn frames(bytes: &[u8]) -> Vec<Frame> {
    let mut d = FrameDecoder::new(1 << 20, 1 << 16);
    d.push(bytes);
    std::iter::from_fn(|| d.next_frame().unwrap().map(|raw| Frame::decode(raw).unwrap())).collect()
}

#[test]
fn version_and_channel_count_are_known_once_established() {
    let mut pair = Builder::new().build();
    assert_eq!((pair.agent.version(), pair.hub.version()), (None, None));
    pair.drive();
    assert_eq!(pair.agent.version(), Some(PROTOCOL_VERSION));
    assert_eq!(pair.hub.version(), Some(PROTOCOL_VERSION));
    assert_eq!(pair.hub.channel_count(), 0);
    pair.open_from_hub(ChannelKind::Stream);
    pair.open_from_hub(ChannelKind::Message);
    assert_eq!((pair.hub.channel_count(), pair.agent.channel_count()), (2, 2));
}

#[test]
fn a_closed_session_is_drained_once_its_close_is_taken() {
    let mut pair = Pair::connected();
    assert!(!pair.hub.is_drained(), "an open session is not drained");
    pair.hub.close(ErrorCode::NoError, b"bye");
    assert!(pair.hub.is_closed());
    assert!(!pair.hub.is_drained(), "its CLOSE still waits");
    let mut out = Vec::new();
    while pair.hub.poll_transmit(pair.now, &mut out) > 0 {}
    assert!(pair.hub.is_drained());
    assert!(matches!(
        frames(&out).last(),
        Some(Frame::Close {
            code: ErrorCode::NoError,
            ..
        })
    ));
}

#[test]
fn only_a_no_error_ending_is_clean() {
    assert!(SessionError::Local {
        code: ErrorCode::NoError
    }
    .is_clean());
    assert!(SessionError::Remote {
        code: ErrorCode::NoError,
        reason: Bytes::new()
    }
    .is_clean());
    for unclean in [
        SessionError::Local {
            code: ErrorCode::Cancel,
        },
        SessionError::Remote {
            code: ErrorCode::Shutdown,
            reason: Bytes::new(),
        },
        SessionError::TimedOut,
        SessionError::HandshakeTimedOut,
        SessionError::Violation(Violation::Backlog),
    ] {
        assert!(!unclean.is_clean(), "{unclean:?}");
    }
    assert_eq!(Violation::Backlog.code(), ErrorCode::LimitExceeded);
}

#[test]
fn the_handshake_deadline_is_the_configured_one() {
    let mut b = Builder::new();
    b.hub_config.handshake_timeout(Duration::from_secs(2));
    let mut pair = b.build();
    let start = pair.now;
    // The agent never speaks.
    assert_eq!(pair.hub.poll_timeout(), Some(start + Duration::from_secs(2)));
    pair.hub.handle_timeout(start + Duration::from_millis(1999));
    assert!(!pair.hub.is_closed());
    pair.hub.handle_timeout(start + Duration::from_secs(2));
    assert_eq!(pair.hub.error(), Some(&SessionError::HandshakeTimedOut));
}

/// Refusals a peer causes are queued up to a bound far above what an
/// honest peer makes: 2,000 refused opens in one read are answered.
#[test]
fn a_burst_of_refusals_is_answered_not_cut_off() {
    let mut b = Builder::new();
    b.agent_config.max_channels(1).unwrap();
    let mut pair = b.connect();
    let mut burst = Vec::new();
    for i in 0..2_000u32 {
        hub_open(i, &mut burst);
    }
    pair.agent.handle_input(pair.now, &burst);
    assert!(pair.agent.is_established(), "{:?}", pair.agent.error());
}

/// A hub that picks a version the agent did not offer gets a CLOSE with
/// UNSUPPORTED_VERSION and no reason (only a hub lists its versions).
#[test]
fn the_agent_refuses_a_version_it_did_not_offer() {
    let mut pair = Builder::new().build();
    let mut hello = Vec::new();
    while pair.agent.poll_transmit(pair.now, &mut hello) > 0 {}
    let mut challenge = Vec::new();
    Frame::Challenge(Challenge {
        version: 99,
        max_frame: 1 << 16,
        session_window: 1 << 20,
        nonce: [7; NONCE_LEN],
        session: SessionId([3; 16]),
    })
    .encode(&mut challenge);
    pair.agent.handle_input(pair.now, &challenge);
    assert!(matches!(
        pair.agent.error(),
        Some(SessionError::VersionMismatch { supported, .. }) if supported == &[99]
    ));
    let mut out = Vec::new();
    while pair.agent.poll_transmit(pair.now, &mut out) > 0 {}
    let Some(Frame::Close { code, reason }) = frames(&out).pop() else {
        panic!("no CLOSE");
    };
    assert_eq!(code, ErrorCode::UnsupportedVersion);
    assert!(reason.is_empty(), "{reason:?}");
}

/// Each PING carries the next number.
#[test]
fn pings_are_numbered_one_after_the_other() {
    let mut pair = Pair::connected();
    pair.record = true;
    for _ in 0..3 {
        pair.hub.ping(pair.now);
        pair.drive();
    }
    let pings: Vec<u64> = frames(&pair.to_agent.delivered)
        .into_iter()
        .filter_map(|f| match f {
            Frame::Ping(n) => Some(n),
            _ => None,
        })
        .collect();
    assert_eq!(pings, [1, 2, 3]);
    assert!(pair.hub.stats().rtt.is_some());
}

/// Two writes before anything is transmitted: the channel is queued once
/// (the pair checks the session's books after every step) and the data
/// arrives in order.
#[test]
fn writes_back_to_back_queue_the_channel_once() {
    let mut pair = Pair::connected();
    let channel = pair.open_from_hub(ChannelKind::Stream);
    pair.hub.send(channel, b"first ").unwrap();
    pair.hub.send(channel, b"second").unwrap();
    pair.hub.check_invariants();
    pair.drive();
    let mut buf = [0u8; 64];
    let n = pair.agent.read(channel, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"first second");
}

/// A channel refused or reset while it waits for the application leaves
/// no pending open behind (the pair checks the books after every step).
#[test]
fn pending_channels_that_are_refused_or_reset_are_forgotten() {
    let mut pair = Pair::connected();
    let a = pair.hub.open_channel(ChannelKind::Stream, b"plc-1", b"").unwrap();
    let b = pair.hub.open_channel(ChannelKind::Stream, b"plc-2", b"").unwrap();
    pair.drive();
    assert!(pair
        .agent_event(|e| matches!(e, Event::ChannelRequested { channel, .. } if *channel == a))
        .is_some());
    pair.agent.refuse(a, ErrorCode::Refused).unwrap();
    pair.agent.check_invariants();
    pair.agent.reset(b, ErrorCode::Cancel).unwrap();
    pair.agent.check_invariants();
    pair.drive();
    assert_eq!(pair.agent.channel_count(), 0);
    assert_eq!(pair.hub.channel_count(), 0);
}

/// A channel waiting for session credit is told when it comes, even when
/// another channel's own credit came back first.
#[test]
fn every_channel_waiting_for_session_credit_is_woken() {
    let mut b = Builder::new();
    b.agent_config.channel_window(2000).unwrap();
    b.agent_config.session_window(3000).unwrap();
    let mut pair = b.connect();
    let a = pair.open_from_hub(ChannelKind::Stream);
    let c = pair.open_from_hub(ChannelKind::Stream);
    assert_eq!(pair.hub.send(a, &[1; 2000]), Ok(2000));
    assert_eq!(pair.hub.send(c, &[2; 1000]), Ok(1000));
    // The session's credit is spent: c waits for it; a for its own.
    assert_eq!(pair.hub.send(c, &[2; 10]), Err(crate::SendError::Blocked));
    assert_eq!(pair.hub.send(a, &[1; 10]), Err(crate::SendError::Blocked));
    pair.drive();
    // Told to try again once the bytes left (the send buffer emptied), both
    // are still out of credit.
    assert_eq!(pair.hub.send(c, &[2; 10]), Err(crate::SendError::Blocked));
    assert_eq!(pair.hub.send(a, &[1; 10]), Err(crate::SendError::Blocked));
    pair.hub_events.clear();
    // The agent reads a: a's credit comes back, then the session's.
    let mut buf = vec![0u8; 4096];
    let mut read = 0;
    while read < 2000 {
        read += pair.agent.read(a, &mut buf).unwrap();
    }
    pair.drive();
    for channel in [a, c] {
        assert!(
            pair.hub_event(|e| matches!(e, Event::Writable { channel: w } if *w == channel))
                .is_some(),
            "{channel} was not told it may write"
        );
    }
}

/// The idle timer starts when the last channel goes, unless another channel
/// opened before time moved on.
#[test]
fn a_channel_opened_right_after_the_last_one_closed_keeps_the_session() {
    let mut b = Builder::new();
    b.hub_config.idle_timeout(Some(Duration::from_secs(1)));
    let mut pair = b.connect();
    let x = pair.open_from_hub(ChannelKind::Stream);
    pair.hub.reset(x, ErrorCode::Cancel).unwrap();
    let y = pair.hub.open_channel(ChannelKind::Stream, b"plc-1", b"").unwrap();
    pair.drive();
    assert!(pair
        .agent_event(|e| matches!(e, Event::ChannelRequested { channel, .. } if *channel == y))
        .is_some());
    pair.agent.accept(y).unwrap();
    pair.run_for(Duration::from_secs(5));
    assert!(pair.hub.is_established(), "{:?}", pair.hub.error());
    assert!(pair.hub.is_open(y));
    // Once y goes too, the session is idle and ends after a second.
    pair.hub.reset(y, ErrorCode::Cancel).unwrap();
    pair.run_for(Duration::from_secs(2));
    assert!(pair.hub.is_closed());
}

/// A channel reset with bytes still queued gives their buffer space back.
#[test]
fn a_reset_channel_gives_back_the_buffer_its_queued_bytes_held() {
    let mut b = Builder::new();
    b.hub_config.max_send_buffer(1000).unwrap();
    let mut pair = b.connect();
    let a = pair.open_from_hub(ChannelKind::Stream);
    let c = pair.open_from_hub(ChannelKind::Stream);
    assert_eq!(pair.hub.send(a, &[1; 1000]), Ok(1000));
    assert_eq!(pair.hub.send(c, &[2; 10]), Err(crate::SendError::Blocked));
    pair.hub.reset(a, ErrorCode::Cancel).unwrap();
    pair.hub.check_invariants();
    assert_eq!(pair.hub.send(c, &[2; 1000]), Ok(1000));
}

/// An open names a target of up to 255 bytes, and the whole OPEN (6 bytes,
/// target and metadata) must fit the peer's frame limit; each open counts.
#[test]
fn opens_respect_the_target_limit_and_the_peers_frame_limit() {
    let mut pair = Pair::connected();
    assert_eq!(pair.hub.stats().channels_opened, 0);
    let target = [b't'; 256];
    assert!(pair.hub.open_channel(ChannelKind::Stream, &target[..255], b"").is_ok());
    assert_eq!(
        pair.hub.open_channel(ChannelKind::Stream, &target, b""),
        Err(crate::OpenError::TargetTooLong)
    );
    assert_eq!(pair.hub.stats().channels_opened, 1);

    // An agent that takes frames of up to 1 KiB: an OPEN of exactly that
    // size goes, one byte more does not.
    let mut b = Builder::new();
    b.agent_config.max_frame_size(1024).unwrap();
    let mut pair = b.connect();
    let metadata = vec![b'm'; 1024 - 6 - 3];
    assert!(pair.hub.open_channel(ChannelKind::Message, b"plc", &metadata).is_ok());
    let over = vec![b'm'; 1024 - 6 - 3 + 1];
    assert_eq!(
        pair.hub.open_channel(ChannelKind::Message, b"plc", &over),
        Err(crate::OpenError::TooLarge { len: 1025, max: 1024 })
    );
    assert!(pair.hub.open_channel(ChannelKind::Message, b"plc", b"").is_ok());
    assert_eq!(pair.hub.stats().channels_opened, 2);
}

/// Channel ids of one side go up by two, and the limit on channels open at
/// once holds at exactly its value.
#[test]
fn channel_ids_go_up_by_two_up_to_the_channel_limit() {
    let mut b = Builder::new();
    b.hub_config.max_channels(3).unwrap();
    let mut pair = b.connect();
    let ids: Vec<u32> = (0..3)
        .map(|_| pair.hub.open_channel(ChannelKind::Stream, b"plc", b"").unwrap().value())
        .collect();
    assert_eq!(ids, [2, 4, 6]);
    assert_eq!(
        pair.hub.open_channel(ChannelKind::Stream, b"plc", b""),
        Err(crate::OpenError::TooManyChannels)
    );
}

#[test]
fn a_channel_is_open_only_once_accepted_and_until_it_is_reset() {
    let mut pair = Pair::connected();
    let open = pair.open_from_hub(ChannelKind::Stream);
    assert!(pair.hub.is_open(open) && pair.agent.is_open(open));
    let opening = pair.hub.open_channel(ChannelKind::Stream, b"plc-1", b"").unwrap();
    pair.drive();
    assert!(!pair.hub.is_open(opening), "opening: not accepted yet");
    assert!(!pair.agent.is_open(opening), "pending: not accepted yet");
    assert!(!pair.hub.is_open(ChannelId::new(998).unwrap()), "unknown");
    pair.hub.reset(open, ErrorCode::Cancel).unwrap();
    assert!(!pair.hub.is_open(open), "reset");
}

#[test]
fn a_channel_is_finished_once_and_not_before_it_is_accepted() {
    let mut pair = Pair::connected();
    let open = pair.open_from_hub(ChannelKind::Stream);
    let pending = pair.hub.open_channel(ChannelKind::Stream, b"plc-1", b"").unwrap();
    pair.drive();
    assert_eq!(
        pair.agent.finish(pending),
        Err(crate::ChannelError::UnknownChannel(pending)),
        "the application has not accepted it"
    );
    assert_eq!(pair.hub.finish(open), Ok(()));
    assert_eq!(
        pair.hub.finish(open),
        Err(crate::ChannelError::UnknownChannel(open)),
        "a second FIN is refused"
    );
}

#[test]
fn resets_this_side_makes_are_counted() {
    let mut pair = Pair::connected();
    assert_eq!(pair.hub.stats().channels_reset, 0);
    for n in 1..=2 {
        let ch = pair.open_from_hub(ChannelKind::Stream);
        pair.hub.reset(ch, ErrorCode::Cancel).unwrap();
        assert_eq!(pair.hub.stats().channels_reset, n);
    }
}

#[test]
fn bytes_and_frames_received_are_counted_on_both_paths() {
    let mut pair = Pair::connected();
    let ch = pair.open_from_hub(ChannelKind::Message);
    pair.drive();
    let before = pair.agent.stats();
    let hub_before = pair.hub.stats();
    for i in 0..3 {
        pair.hub.send_message(ch, i, b"reading").unwrap();
    }
    let mut out = Vec::new();
    while pair.hub.poll_transmit(pair.now, &mut out) > 0 {}
    let sent = frames(&out).len();
    assert!(sent >= 3);
    // Whole frames straight from the caller's bytes, then one frame split
    // in two (the decoder's path).
    pair.agent.handle_input(pair.now, &out);
    pair.hub.send_message(ch, 9, b"split").unwrap();
    let mut split = Vec::new();
    while pair.hub.poll_transmit(pair.now, &mut split) > 0 {}
    let split_frames = frames(&split).len();
    pair.agent.handle_input(pair.now, &split[..3]);
    pair.agent.handle_input(pair.now, &split[3..]);
    let after = pair.agent.stats();
    assert_eq!(pair.hub.stats().data_sent - hub_before.data_sent, 42);
    assert_eq!(
        pair.hub.stats().bytes_sent - hub_before.bytes_sent,
        (out.len() + split.len()) as u64
    );
    // Payload with each message's correlation: 3 x (4 + 7) + (4 + 5).
    assert_eq!(after.data_received - before.data_received, 42);
    assert_eq!(
        after.frames_received - before.frames_received,
        (sent + split_frames) as u64
    );
    assert_eq!(
        after.bytes_received - before.bytes_received,
        (out.len() + split.len()) as u64
    );
}

#[test]
fn a_closed_session_takes_no_more_input() {
    let mut pair = Pair::connected();
    let ch = pair.open_from_hub(ChannelKind::Message);
    pair.drive();
    pair.hub.send_message(ch, 1, b"late").unwrap();
    let mut out = Vec::new();
    while pair.hub.poll_transmit(pair.now, &mut out) > 0 {}
    pair.agent.close(ErrorCode::NoError, b"");
    while pair.agent.poll_event().is_some() {}
    let before = pair.agent.stats();
    pair.agent.handle_input(pair.now, &out);
    assert_eq!(pair.agent.stats().bytes_received, before.bytes_received);
    assert_eq!(pair.agent.stats().frames_received, before.frames_received);
    assert_eq!(pair.agent.poll_event(), None);
}

#[test]
fn empty_input_is_no_sign_of_life() {
    let mut b = Builder::new();
    b.agent_config.peer_timeout(Duration::from_secs(10));
    let mut pair = b.connect();
    let start = pair.now;
    let deadline = pair.agent.poll_timeout().expect("a timer runs");
    // Nothing arrives, but the caller reports an empty read: the peer's
    // deadline does not move.
    pair.agent.handle_input(start + Duration::from_secs(1), &[]);
    assert_eq!(pair.agent.poll_timeout(), Some(deadline));
}

#[test]
fn resets_and_opens_by_the_peer_are_counted() {
    let mut pair = Pair::connected();
    for n in 1..=2u64 {
        let ch = pair.open_from_hub(ChannelKind::Stream);
        assert_eq!(pair.agent.stats().channels_requested, n);
        pair.hub.reset(ch, ErrorCode::Cancel).unwrap();
        pair.drive();
        assert_eq!(pair.agent.stats().channels_reset, n);
    }
}

#[test]
fn the_channel_limit_refuses_the_open_past_it() {
    let mut b = Builder::new();
    b.agent_config.max_channels(2).unwrap();
    b.agent_config.max_pending_opens(100).unwrap();
    let mut pair = b.connect();
    let opened: Vec<ChannelId> = (0..3)
        .map(|_| pair.hub.open_channel(ChannelKind::Message, b"t", b"").unwrap())
        .collect();
    pair.drive();
    let refused: Vec<ChannelId> = std::iter::from_fn(|| pair.hub_event(|e| matches!(e, Event::ChannelRefused { .. })))
        .map(|e| match e {
            Event::ChannelRefused { channel, code } => {
                assert_eq!(code, ErrorCode::LimitExceeded);
                channel
            }
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(refused, [opened[2]], "two channels fit, the third does not");
}

#[test]
fn a_frame_for_the_channel_this_side_would_open_next_is_a_violation() {
    // Channel ids are deterministic: learn the hub's first one elsewhere.
    let first = Pair::connected()
        .hub
        .open_channel(ChannelKind::Stream, b"plc-1", b"")
        .unwrap();
    let mut pair = Pair::connected();
    let reset = Frame::Reset {
        channel: first,
        code: ErrorCode::Cancel,
    }
    .to_vec();
    pair.hub.handle_input(pair.now, &reset);
    assert_eq!(
        pair.hub.error(),
        Some(&SessionError::Violation(Violation::NotOpened(first)))
    );
}

#[test]
fn sending_only_control_frames_wakes_no_blocked_channel() {
    let mut b = Builder::new();
    b.agent_config.session_window(100).unwrap();
    let mut pair = b.connect();
    let a = pair.open_from_hub(ChannelKind::Stream);
    let other = pair.open_from_hub(ChannelKind::Stream);
    assert_eq!(pair.hub.send(a, &[1; 100]), Ok(100));
    let mut out = Vec::new();
    while pair.hub.poll_transmit(pair.now, &mut out) > 0 {}
    assert_eq!(pair.hub.send(other, &[2; 10]), Err(SendError::Blocked));
    // A PING goes out; no room was freed.
    pair.hub.ping(pair.now);
    let mut ping = Vec::new();
    while pair.hub.poll_transmit(pair.now, &mut ping) > 0 {}
    assert!(!ping.is_empty());
    assert!(
        !std::iter::from_fn(|| pair.hub.poll_event()).any(|e| e == Event::Writable { channel: other }),
        "woken with no room"
    );
}
