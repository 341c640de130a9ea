//! Flow control: stalls and resumes, per-channel violations, the session cap.

use super::util::*;
use crate::frame::Frame;
use crate::*;

fn drain_reads(s: &mut Session, ch: ChannelId) -> usize {
    let mut n = 0;
    let mut buf = [0u8; 4096];
    while let Ok(k) = s.read(ch, &mut buf) {
        if k == 0 {
            break;
        }
        n += k;
    }
    n
}

#[test]
fn sender_stalls_at_the_window_and_resumes_when_the_reader_consumes() {
    let mut b = Builder::new();
    b.agent_config.channel_window(1000).unwrap();
    let mut pair = b.connect();
    let ch = pair.open_from_hub(ChannelKind::Stream);
    assert_eq!(pair.hub.send(ch, &[7; 1500]), Ok(1000), "only the window is taken");
    assert_eq!(pair.hub.send(ch, &[7; 500]), Err(SendError::Blocked));
    pair.drive();
    // Reading less than half a window returns nothing yet.
    let mut buf = [0; 400];
    assert_eq!(pair.agent.read(ch, &mut buf), Ok(400));
    pair.drive();
    assert!(pair.hub_event(|e| matches!(e, Event::Writable { .. })).is_none());
    assert_eq!(pair.agent.read(ch, &mut buf), Ok(400));
    pair.drive();
    assert_eq!(
        pair.hub_event(|e| matches!(e, Event::Writable { .. })),
        Some(Event::Writable { channel: ch })
    );
    assert_eq!(pair.hub.send(ch, &[7; 1000]), Ok(800));
}

#[test]
fn the_session_window_caps_all_channels_together() {
    let mut b = Builder::new();
    b.agent_config.session_window(3000).unwrap();
    b.agent_config.channel_window(2000).unwrap();
    let mut pair = b.connect();
    let a = pair.open_from_hub(ChannelKind::Stream);
    let c = pair.open_from_hub(ChannelKind::Stream);
    assert_eq!(pair.hub.send(a, &[1; 2000]), Ok(2000));
    assert_eq!(pair.hub.send(c, &[2; 2000]), Ok(1000), "session window left 1000");
    assert_eq!(pair.hub.send(c, &[2; 1]), Err(SendError::Blocked));
    pair.drive();
    assert_eq!(drain_reads(&mut pair.agent, a), 2000);
    pair.drive();
    assert!(pair.hub_event(|e| *e == Event::Writable { channel: c }).is_some());
    assert_eq!(pair.hub.send(c, &[2; 2000]), Ok(1000), "channel window left 1000");
}

#[test]
fn a_channel_that_overruns_its_window_is_reset_not_the_session() {
    let mut b = Builder::new();
    b.agent_config.channel_window(100).unwrap();
    let mut pair = b.connect();
    let ch = pair.open_from_hub(ChannelKind::Stream);
    // Forge a DATA frame past the window, as a misbehaving hub would.
    let frame = Frame::Data {
        channel: ch,
        data: vec![0; 101].into(),
    }
    .to_vec();
    pair.agent.handle_input(pair.now, &frame);
    pair.step();
    let e = pair.agent_event(|e| matches!(e, Event::ChannelReset { .. })).unwrap();
    assert_eq!(
        e,
        Event::ChannelReset {
            channel: ch,
            code: ErrorCode::FlowControlError,
            by_peer: false
        }
    );
    assert!(pair.agent.is_established());
    // The session still carries new channels.
    let again = pair.open_from_hub(ChannelKind::Message);
    assert!(pair.agent.is_open(again));
}

#[test]
fn overrunning_the_session_window_closes_the_session() {
    let mut b = Builder::new();
    b.agent_config.session_window(100).unwrap();
    let mut pair = b.connect();
    let ch = pair.open_from_hub(ChannelKind::Stream);
    let frame = Frame::Data {
        channel: ch,
        data: vec![0; 101].into(),
    }
    .to_vec();
    pair.agent.handle_input(pair.now, &frame);
    assert_eq!(
        pair.agent.error(),
        Some(&SessionError::Violation(Violation::SessionWindow {
            received: 101,
            allowed: 100
        }))
    );
    assert_eq!(pair.agent.error().unwrap().code(), ErrorCode::FlowControlError);
    pair.drive();
    assert!(matches!(
        pair.hub.error(),
        Some(SessionError::Remote {
            code: ErrorCode::FlowControlError,
            ..
        })
    ));
}

#[test]
fn data_before_accept_is_a_flow_violation_of_that_channel() {
    let mut pair = Pair::connected();
    let ch = pair.hub.open_channel(ChannelKind::Stream, b"t", b"").unwrap();
    pair.drive();
    let frame = Frame::Data {
        channel: ch,
        data: vec![0; 1].into(),
    }
    .to_vec();
    pair.agent.handle_input(pair.now, &frame);
    assert!(pair
        .agent
        .poll_event()
        .is_some_and(|e| matches!(e, Event::ChannelReset { .. })));
    assert!(pair.agent.is_established());
}

#[test]
fn window_update_overflow_is_refused() {
    let mut pair = Pair::connected();
    let frame = Frame::WindowUpdate {
        channel: None,
        increment: u32::MAX,
    }
    .to_vec();
    pair.agent.handle_input(pair.now, &frame);
    assert_eq!(
        pair.agent.error(),
        Some(&SessionError::Violation(Violation::WindowOverflow))
    );
}

#[test]
fn messages_larger_than_half_the_peers_session_window_are_refused_up_front() {
    // Channel windows are large; the session's is the smaller bound.
    let mut b = Builder::new();
    b.agent_config.session_window(200).unwrap();
    let mut pair = b.connect();
    let ch = pair.open_from_hub(ChannelKind::Message);
    assert_eq!(pair.hub.max_message_len(ch), Some(96));
    assert_eq!(
        pair.hub.send_message(ch, 1, &[0; 97]),
        Err(SendError::TooLarge { len: 97, max: 96 })
    );
    assert_eq!(pair.hub.send_message(ch, 1, &[0; 96]), Ok(()));
}

#[test]
fn a_message_that_takes_exactly_the_credit_left_is_sent() {
    let mut b = Builder::new();
    b.agent_config.channel_window(100).unwrap();
    let mut pair = b.connect();
    let ch = pair.open_from_hub(ChannelKind::Message);
    // Each costs 50 of the 100 bytes of credit: both go, a third waits.
    assert_eq!(pair.hub.send_message(ch, 1, &[0; 46]), Ok(()));
    assert_eq!(pair.hub.send_message(ch, 2, &[0; 46]), Ok(()));
    assert_eq!(pair.hub.send_message(ch, 3, &[0; 1]), Err(SendError::Blocked));
}

/// Reads every message waiting on `ch` at the agent.
fn drain_messages(pair: &mut Pair, ch: ChannelId) -> usize {
    let mut n = 0;
    while let Ok(Some(_)) = pair.agent.recv_message(ch) {
        n += 1;
    }
    n
}

#[test]
fn a_channel_with_exactly_the_credit_it_needs_waits_on_the_session_and_is_woken_by_it() {
    // Windows of 100 both ways: messages of cost 50 at most.
    let mut b = Builder::new();
    b.agent_config.session_window(100).unwrap();
    b.agent_config.channel_window(100).unwrap();
    let mut pair = b.connect();
    let a = pair.open_from_hub(ChannelKind::Message);
    let other = pair.open_from_hub(ChannelKind::Message);
    assert_eq!(pair.hub.send_message(a, 1, &[0; 46]), Ok(()));
    assert_eq!(pair.hub.send_message(other, 2, &[0; 46]), Ok(()));
    // `a` has the 50 it needs; the session has none.
    assert_eq!(pair.hub.send_message(a, 3, &[0; 46]), Err(SendError::Blocked));
    pair.drive();
    // Only the other channel's message is read: the session gets credit
    // back, `a` gets none of its own.
    assert_eq!(drain_messages(&mut pair, other), 1);
    pair.drive();
    assert!(pair.hub_event(|e| *e == Event::Writable { channel: a }).is_some());
    assert_eq!(pair.hub.send_message(a, 3, &[0; 46]), Ok(()));
}

#[test]
fn a_channel_blocked_on_its_own_credit_then_on_the_session_is_woken_by_the_session() {
    let mut b = Builder::new();
    b.agent_config.session_window(200).unwrap();
    b.agent_config.channel_window(100).unwrap();
    let mut pair = b.connect();
    let a = pair.open_from_hub(ChannelKind::Message);
    let other = pair.open_from_hub(ChannelKind::Message);
    let third = pair.open_from_hub(ChannelKind::Message);
    // `a` spends 80 of its 100, then a message of 50 waits on its own credit.
    assert_eq!(pair.hub.send_message(a, 1, &[0; 46]), Ok(()));
    assert_eq!(pair.hub.send_message(a, 2, &[0; 26]), Ok(()));
    assert_eq!(pair.hub.send_message(a, 3, &[0; 46]), Err(SendError::Blocked));
    // The others take the session down to 10.
    assert_eq!(pair.hub.send_message(other, 4, &[0; 46]), Ok(()));
    assert_eq!(pair.hub.send_message(other, 5, &[0; 46]), Ok(()));
    assert_eq!(pair.hub.send_message(third, 6, &[0; 6]), Ok(()));
    // A smaller message fits `a`'s own 20 but not the session's 10: now
    // it waits on the session.
    assert_eq!(pair.hub.send_message(a, 7, &[0; 11]), Err(SendError::Blocked));
    pair.drive();
    assert_eq!(drain_messages(&mut pair, other), 2);
    pair.drive();
    assert!(pair.hub_event(|e| *e == Event::Writable { channel: a }).is_some());
    assert_eq!(pair.hub.send_message(a, 7, &[0; 11]), Ok(()));
}

#[test]
fn a_read_returns_the_data_first_and_the_end_on_the_next_call() {
    let mut pair = Pair::connected();
    let ch = pair.open_from_hub(ChannelKind::Stream);
    // This side has finished already: the peer's end retires the channel.
    pair.agent.finish(ch).unwrap();
    assert_eq!(pair.hub.send(ch, b"last words"), Ok(10));
    pair.hub.finish(ch).unwrap();
    pair.drive();
    let mut empty = [0u8; 0];
    assert_eq!(pair.agent.read(ch, &mut empty), Ok(0), "an empty buffer reads nothing");
    let mut buf = [0u8; 64];
    assert_eq!(pair.agent.read(ch, &mut buf), Ok(10));
    assert_eq!(&buf[..10], b"last words");
    assert_eq!(pair.agent.read(ch, &mut buf), Ok(0), "then the end");
    assert_eq!(
        pair.agent.read(ch, &mut buf),
        Err(ReadError::UnknownChannel(ch)),
        "then the channel is gone"
    );
}

#[test]
fn an_empty_read_of_a_channel_with_nothing_waiting_is_not_blocked() {
    let mut pair = Pair::connected();
    let ch = pair.open_from_hub(ChannelKind::Stream);
    let mut buf = [0u8; 8];
    assert_eq!(pair.agent.read(ch, &mut buf), Err(ReadError::Blocked));
    assert_eq!(pair.agent.read(ch, &mut []), Ok(0));
}

#[test]
fn resetting_a_channel_gives_back_the_session_credit_of_what_it_never_sent() {
    let mut b = Builder::new();
    b.agent_config.session_window(100).unwrap();
    let mut pair = b.connect();
    let a = pair.open_from_hub(ChannelKind::Stream);
    let other = pair.open_from_hub(ChannelKind::Stream);
    // Queued, not transmitted: the peer never counts these bytes.
    assert_eq!(pair.hub.send(a, &[1; 100]), Ok(100));
    assert_eq!(pair.hub.send(other, &[2; 10]), Err(SendError::Blocked));
    pair.hub.reset(a, ErrorCode::Cancel).unwrap();
    assert_eq!(
        pair.hub.send(other, &[2; 100]),
        Ok(100),
        "the whole session window again"
    );
    pair.drive();
    assert_eq!(drain_reads(&mut pair.agent, other), 100);
}

#[test]
fn sending_nothing_on_a_stream_sends_nothing() {
    let mut pair = Pair::connected();
    let ch = pair.open_from_hub(ChannelKind::Stream);
    pair.drive();
    assert_eq!(pair.hub.send(ch, &[]), Ok(0));
    let mut out = Vec::new();
    assert_eq!(pair.hub.poll_transmit(pair.now, &mut out), 0, "no empty DATA frame");
    assert!(out.is_empty());
    // Nor does it block when there is no credit left.
    let mut b = Builder::new();
    b.agent_config.channel_window(10).unwrap();
    let mut pair = b.connect();
    let ch = pair.open_from_hub(ChannelKind::Stream);
    assert_eq!(pair.hub.send(ch, &[1; 20]), Ok(10));
    assert_eq!(pair.hub.send(ch, &[]), Ok(0));
}

#[test]
fn messages_larger_than_half_a_window_are_refused_up_front() {
    let mut b = Builder::new();
    b.agent_config.channel_window(100).unwrap();
    let mut pair = b.connect();
    let ch = pair.open_from_hub(ChannelKind::Message);
    assert_eq!(pair.hub.max_message_len(ch), Some(46));
    assert_eq!(
        pair.hub.send_message(ch, 1, &[0; 47]),
        Err(SendError::TooLarge { len: 47, max: 46 })
    );
    // Messages of exactly the maximum never deadlock, whatever the reader's pace.
    for i in 0..50 {
        loop {
            match pair.hub.send_message(ch, i, &[0; 46]) {
                Ok(()) => break,
                Err(SendError::Blocked) => {
                    pair.drive();
                    while pair.agent.recv_message(ch).is_ok_and(|m| m.is_some()) {}
                    pair.drive();
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
}

#[test]
fn data_after_fin_resets_the_channel() {
    let mut pair = Pair::connected();
    let ch = pair.open_from_hub(ChannelKind::Stream);
    let mut frames = Frame::Fin { channel: ch }.to_vec();
    Frame::Data {
        channel: ch,
        data: vec![1].into(),
    }
    .encode(&mut frames);
    pair.agent.handle_input(pair.now, &frames);
    let reset = std::iter::from_fn(|| pair.agent.poll_event()).find(|e| matches!(e, Event::ChannelReset { .. }));
    assert_eq!(
        reset,
        Some(Event::ChannelReset {
            channel: ch,
            code: ErrorCode::ProtocolError,
            by_peer: false
        })
    );
}

#[test]
fn many_tiny_frames_cost_no_more_memory_than_their_bytes() {
    let mut pair = Pair::connected();
    let s = pair.open_from_hub(ChannelKind::Stream);
    let m = pair.open_from_hub(ChannelKind::Message);
    // 100 000 one-byte DATA frames and 20 000 empty messages, each in its own read.
    let one = Frame::Data {
        channel: s,
        data: vec![1].into(),
    }
    .to_vec();
    let empty = Frame::Message {
        channel: m,
        correlation: 9,
        payload: Default::default(),
    }
    .to_vec();
    for i in 0..100_000 {
        pair.agent.handle_input(pair.now, &one);
        if i % 5 == 0 {
            pair.agent.handle_input(pair.now, &empty);
        }
    }
    assert!(pair.agent.is_established(), "{:?}", pair.agent.error());
    // 100 000 stream bytes + 20 000 message records of 8 bytes: 260 000 bytes held.
    let held = pair.agent.receive_memory();
    assert!(held < 2 * 260_000 + 64 * 1024, "{held} bytes held for 260 000 received");
    assert_eq!(drain_reads(&mut pair.agent, s), 100_000);
    let mut messages = 0;
    while let Ok(Some(msg)) = pair.agent.recv_message(m) {
        assert_eq!(msg.correlation, 9);
        messages += 1;
    }
    assert_eq!(messages, 20_000);
}

#[test]
fn the_send_buffer_caps_what_the_application_queues() {
    let mut b = Builder::new();
    b.hub_config.max_send_buffer(1000).unwrap();
    let mut pair = b.connect();
    let s = pair.open_from_hub(ChannelKind::Stream);
    let m = pair.open_from_hub(ChannelKind::Message);
    assert_eq!(
        pair.hub.send(s, &[1; 5000]),
        Ok(1000),
        "credit allows more; the buffer does not"
    );
    assert_eq!(pair.hub.send(s, &[1; 10]), Err(SendError::Blocked));
    assert_eq!(pair.hub.send_message(m, 1, &[0; 10]), Err(SendError::Blocked));
    // Once transmitted, the buffer frees and both blocked channels hear of it.
    pair.drive();
    assert!(pair.hub_event(|e| *e == Event::Writable { channel: s }).is_some());
    assert!(pair.hub_event(|e| *e == Event::Writable { channel: m }).is_some());
    assert_eq!(pair.hub.send(s, &[1; 5000]), Ok(1000));
    assert_eq!(
        pair.hub.max_message_len(m),
        Some(996),
        "no message beyond the send buffer"
    );
}

#[test]
fn a_channel_window_update_past_the_limit_resets_that_channel() {
    let mut pair = Pair::connected();
    let ch = pair.open_from_hub(ChannelKind::Stream);
    let update = Frame::WindowUpdate {
        channel: Some(ch),
        increment: u32::MAX,
    }
    .to_vec();
    pair.hub.handle_input(pair.now, &update);
    let reset = std::iter::from_fn(|| pair.hub.poll_event()).find(|e| matches!(e, Event::ChannelReset { .. }));
    assert_eq!(
        reset,
        Some(Event::ChannelReset {
            channel: ch,
            code: ErrorCode::FlowControlError,
            by_peer: false
        })
    );
    assert!(pair.hub.is_established());
}
