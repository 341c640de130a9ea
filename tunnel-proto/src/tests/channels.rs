//! Channel scenarios: open, accept, refuse, data, half close, reset,
//! interleaving, limits, shutdown.

use std::time::Duration;

use bytes::Bytes;

use super::util::*;
use crate::*;

fn read_all(s: &mut Session, ch: ChannelId) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 1000];
    loop {
        match s.read(ch, &mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(ReadError::Blocked) => return (out, false),
            Err(e) => panic!("read: {e}"),
        }
    }
}

#[test]
fn open_carries_kind_target_and_metadata() {
    let mut pair = Pair::connected();
    let ch = pair
        .hub
        .open_channel(ChannelKind::Message, b"plc-1", b"principal=alice;role=operator")
        .unwrap();
    assert!(ch.value().is_multiple_of(2), "the hub opens even ids");
    pair.drive();
    let e = pair
        .agent_event(|e| matches!(e, Event::ChannelRequested { .. }))
        .unwrap();
    assert_eq!(
        e,
        Event::ChannelRequested {
            channel: ch,
            kind: ChannelKind::Message,
            target: Bytes::from_static(b"plc-1"),
            metadata: Bytes::from_static(b"principal=alice;role=operator"),
        }
    );
    let from_agent = pair.agent.open_channel(ChannelKind::Stream, b"", b"").unwrap();
    assert!(from_agent.opened_by_agent());
}

#[test]
fn refused_channel_reports_the_code_and_frees_its_slot() {
    let mut pair = Pair::connected();
    let ch = pair.hub.open_channel(ChannelKind::Message, b"nope", b"").unwrap();
    pair.drive();
    assert!(pair
        .agent_event(|e| matches!(e, Event::ChannelRequested { .. }))
        .is_some());
    pair.agent.refuse(ch, ErrorCode::UnknownTarget).unwrap();
    assert_eq!(
        pair.agent.refuse(ch, ErrorCode::UnknownTarget),
        Err(ChannelError::UnknownChannel(ch))
    );
    pair.drive();
    let e = pair.hub_event(|e| matches!(e, Event::ChannelRefused { .. })).unwrap();
    assert_eq!(
        e,
        Event::ChannelRefused {
            channel: ch,
            code: ErrorCode::UnknownTarget
        }
    );
    assert_eq!(pair.hub.channel_count(), 0);
    assert_eq!(pair.agent.channel_count(), 0);
    assert_eq!(pair.hub.send_message(ch, 1, b"x"), Err(SendError::UnknownChannel(ch)));
}

#[test]
fn sends_before_accept_block_then_become_writable() {
    let mut pair = Pair::connected();
    let ch = pair.hub.open_channel(ChannelKind::Stream, b"t", b"").unwrap();
    assert_eq!(pair.hub.send(ch, b"early"), Err(SendError::Blocked));
    pair.drive();
    pair.agent.accept(ch).unwrap();
    pair.drive();
    assert!(pair.hub_event(|e| *e == Event::Writable { channel: ch }).is_some());
    assert_eq!(pair.hub.send(ch, b"early"), Ok(5));
}

#[test]
fn stream_data_both_ways_with_half_close() {
    let mut pair = Pair::connected();
    let ch = pair.open_from_hub(ChannelKind::Stream);
    assert_eq!(pair.hub.send(ch, b"request bytes"), Ok(13));
    pair.hub.finish(ch).unwrap();
    assert_eq!(pair.hub.send(ch, b"more"), Err(SendError::Finished));
    pair.drive();
    assert!(pair.agent_event(|e| *e == Event::Readable { channel: ch }).is_some());
    let mut buf = [0; 64];
    assert_eq!(
        pair.agent.read(ch, &mut buf),
        Ok(13),
        "data and FIN together: the data first"
    );
    assert_eq!(pair.agent.read(ch, &mut buf), Ok(0), "then the end");
    assert_eq!(
        pair.agent.read(ch, &mut buf),
        Ok(0),
        "and the end again while the channel lives"
    );
    // Half closed: the agent can still answer.
    assert_eq!(pair.agent.send(ch, b"answer"), Ok(6));
    pair.drive();
    assert_eq!(read_all(&mut pair.hub, ch), (b"answer".to_vec(), false));
    pair.agent.finish(ch).unwrap();
    pair.drive();
    assert!(pair
        .agent_event(|e| *e == Event::ChannelClosed { channel: ch })
        .is_some());
    assert_eq!(read_all(&mut pair.hub, ch), (Vec::new(), true));
    pair.drive();
    assert!(pair.hub_event(|e| *e == Event::ChannelClosed { channel: ch }).is_some());
    assert_eq!(pair.hub.channel_count(), 0);
    assert_eq!(pair.agent.channel_count(), 0);
}

#[test]
fn messages_keep_their_boundaries_and_correlation_ids() {
    let mut pair = Pair::connected();
    let ch = pair.open_from_hub(ChannelKind::Message);
    for i in 0..5u32 {
        pair.hub.send_message(ch, 100 + i, &vec![i as u8; i as usize]).unwrap();
    }
    pair.drive();
    for i in 0..5u32 {
        let m = pair.agent.recv_message(ch).unwrap().unwrap();
        assert_eq!(m.correlation, 100 + i);
        assert_eq!(m.payload.len(), i as usize);
    }
    assert_eq!(pair.agent.recv_message(ch), Err(ReadError::Blocked));
    assert_eq!(pair.agent.read(ch, &mut [0; 4]), Err(ReadError::WrongKind));
    assert_eq!(pair.agent.send(ch, b"x"), Err(SendError::WrongKind));
    pair.agent.send_message(ch, 7, b"").unwrap();
    pair.drive();
    assert_eq!(pair.hub.recv_message(ch).unwrap().unwrap().correlation, 7);
}

#[test]
fn reset_drops_data_and_tells_the_peer() {
    let mut pair = Pair::connected();
    let ch = pair.open_from_hub(ChannelKind::Stream);
    pair.agent.send(ch, &[1; 5000]).unwrap();
    pair.drive();
    pair.hub.reset(ch, ErrorCode::Cancel).unwrap();
    assert_eq!(pair.hub.read(ch, &mut [0; 8]), Err(ReadError::UnknownChannel(ch)));
    pair.drive();
    let e = pair.agent_event(|e| matches!(e, Event::ChannelReset { .. })).unwrap();
    assert_eq!(
        e,
        Event::ChannelReset {
            channel: ch,
            code: ErrorCode::Cancel,
            by_peer: true
        }
    );
    assert_eq!(pair.agent.send(ch, b"x"), Err(SendError::UnknownChannel(ch)));
    // Session credit for the unread 5000 bytes came back: a full window flows again.
    let ch2 = pair.open_from_hub(ChannelKind::Stream);
    let window = 256 * 1024;
    assert_eq!(pair.agent.send(ch2, &vec![0; window]), Ok(window));
}

#[test]
fn many_channels_interleave_fairly() {
    let mut b = Builder::new();
    b.agent_config.max_frame_size(1024).unwrap();
    let mut pair = b.connect();
    let chans: Vec<ChannelId> = (0..8).map(|_| pair.open_from_hub(ChannelKind::Stream)).collect();
    // Each channel queues 8 KiB; frames go out round-robin, at most 1 KiB each.
    for (i, ch) in chans.iter().enumerate() {
        assert_eq!(pair.hub.send(*ch, &vec![i as u8; 8192]), Ok(8192));
    }
    let mut wire = Vec::new();
    while pair.hub.poll_transmit(pair.now, &mut wire) > 0 {}
    let mut d = crate::frame::FrameDecoder::new(1 << 20, 1 << 16);
    d.push(&wire);
    let mut order = Vec::new();
    while let Some(raw) = d.next_frame().unwrap() {
        assert!(raw.payload.len() <= 1024);
        order.push(raw.header.channel);
    }
    assert_eq!(order.len(), 64);
    for round in order.chunks(8) {
        let mut r = round.to_vec();
        r.sort_unstable();
        r.dedup();
        assert_eq!(r.len(), 8, "every channel gets one frame per round: {round:?}");
    }
    // Deliver and check contents.
    pair.agent.handle_input(pair.now, &wire);
    for (i, ch) in chans.iter().enumerate() {
        let (data, _) = read_all(&mut pair.agent, *ch);
        assert_eq!(data, vec![i as u8; 8192]);
    }
}

#[test]
fn limits_refuse_excess_opens() {
    let mut b = Builder::new();
    b.agent_config.max_pending_opens(2).unwrap();
    b.agent_config.max_channels(3).unwrap();
    let mut pair = b.connect();
    let opened: Vec<ChannelId> = (0..4)
        .map(|_| pair.hub.open_channel(ChannelKind::Message, b"t", b"").unwrap())
        .collect();
    pair.drive();
    // Two wait for the application; the others are refused by the session.
    let refused: Vec<Event> = pair
        .hub_events
        .drain(..)
        .filter(|e| matches!(e, Event::ChannelRefused { .. }))
        .collect();
    assert_eq!(refused.len(), 2);
    assert!(refused.iter().all(|e| matches!(
        e,
        Event::ChannelRefused {
            code: ErrorCode::LimitExceeded,
            ..
        }
    )));
    pair.agent.accept(opened[0]).unwrap();
    pair.agent.accept(opened[1]).unwrap();
    // The agent's own limit of 3 channels.
    pair.agent.open_channel(ChannelKind::Stream, b"", b"").unwrap();
    assert_eq!(
        pair.agent.open_channel(ChannelKind::Stream, b"", b""),
        Err(OpenError::TooManyChannels)
    );
}

#[test]
fn open_arguments_are_checked() {
    let mut pair = Pair::connected();
    assert_eq!(
        pair.hub.open_channel(ChannelKind::Stream, &[b'a'; 256], b""),
        Err(OpenError::TargetTooLong)
    );
    let big = vec![0; 17 * 1024];
    assert!(matches!(
        pair.hub.open_channel(ChannelKind::Stream, b"", &big),
        Err(OpenError::TooLarge { .. })
    ));
}

#[test]
fn goaway_drains_open_channels_then_closes() {
    let mut pair = Pair::connected();
    let ch = pair.open_from_hub(ChannelKind::Message);
    pair.hub
        .shutdown(pair.now, ErrorCode::Shutdown, Duration::from_secs(30));
    assert_eq!(
        pair.hub.open_channel(ChannelKind::Stream, b"", b""),
        Err(OpenError::GoingAway)
    );
    pair.drive();
    let e = pair.agent_event(|e| matches!(e, Event::GoingAway { .. })).unwrap();
    assert_eq!(
        e,
        Event::GoingAway {
            code: ErrorCode::Shutdown,
            drain: Duration::from_secs(30)
        }
    );
    assert_eq!(
        pair.agent.open_channel(ChannelKind::Stream, b"", b""),
        Err(OpenError::GoingAway)
    );
    // The open channel still works while draining.
    pair.hub.send_message(ch, 1, b"last request").unwrap();
    pair.hub.finish(ch).unwrap();
    pair.drive();
    assert_eq!(
        &pair.agent.recv_message(ch).unwrap().unwrap().payload[..],
        b"last request"
    );
    assert_eq!(pair.agent.recv_message(ch), Ok(None));
    pair.agent.send_message(ch, 1, b"last answer").unwrap();
    pair.agent.finish(ch).unwrap();
    pair.drive();
    assert!(!pair.hub.is_closed());
    assert_eq!(&pair.hub.recv_message(ch).unwrap().unwrap().payload[..], b"last answer");
    assert_eq!(pair.hub.recv_message(ch), Ok(None));
    pair.drive();
    assert_eq!(
        pair.hub.error(),
        Some(&SessionError::Local {
            code: ErrorCode::NoError
        })
    );
    assert!(pair.agent.error().is_some_and(SessionError::is_clean));
}

#[test]
fn goaway_deadline_cuts_channels_that_do_not_drain() {
    let mut pair = Pair::connected();
    let _ch = pair.open_from_hub(ChannelKind::Stream);
    pair.hub.shutdown(pair.now, ErrorCode::Shutdown, Duration::from_secs(5));
    pair.run_for(Duration::from_secs(4));
    assert!(!pair.hub.is_closed());
    pair.run_for(Duration::from_secs(2));
    assert_eq!(
        pair.hub.error(),
        Some(&SessionError::Local {
            code: ErrorCode::Shutdown
        })
    );
    assert!(matches!(
        pair.agent.error(),
        Some(SessionError::Remote {
            code: ErrorCode::Shutdown,
            ..
        })
    ));
}

#[test]
fn shutdown_without_channels_closes_at_once() {
    let mut pair = Pair::connected();
    pair.agent
        .shutdown(pair.now, ErrorCode::Shutdown, Duration::from_secs(5));
    assert!(pair.agent.is_closed());
    pair.drive();
    assert!(pair.hub.error().is_some_and(SessionError::is_clean));
    assert_eq!(
        pair.hub.open_channel(ChannelKind::Stream, b"", b""),
        Err(OpenError::Closed)
    );
    assert_eq!(pair.hub.send(ChannelId::new(2).unwrap(), b""), Err(SendError::Closed));
}

#[test]
fn accept_crossing_a_reset_is_ignored() {
    let mut pair = Pair::connected();
    let ch = pair.hub.open_channel(ChannelKind::Stream, b"t", b"").unwrap();
    pair.drive();
    // Both act before hearing from the other.
    pair.hub.reset(ch, ErrorCode::Cancel).unwrap();
    pair.agent.accept(ch).unwrap();
    pair.agent.send(ch, b"too late").unwrap();
    pair.drive();
    assert!(pair.hub.is_established() && pair.agent.is_established());
    assert!(pair
        .agent_event(|e| matches!(e, Event::ChannelReset { by_peer: true, .. }))
        .is_some());
    assert!(pair
        .hub_events
        .iter()
        .all(|e| !matches!(e, Event::ChannelAccepted { .. })));
    assert_eq!((pair.hub.channel_count(), pair.agent.channel_count()), (0, 0));
}

#[test]
fn finish_before_accept_is_held_until_accepted() {
    let mut pair = Pair::connected();
    let ch = pair.agent.open_channel(ChannelKind::Message, b"t", b"").unwrap();
    pair.agent.finish(ch).unwrap();
    pair.drive();
    pair.hub.accept(ch).unwrap();
    pair.drive();
    assert_eq!(pair.hub.recv_message(ch), Ok(None), "the FIN arrives after ACCEPT");
    pair.hub.finish(ch).unwrap();
    pair.drive();
    assert_eq!(pair.agent.recv_message(ch), Ok(None));
    pair.drive();
    assert_eq!((pair.hub.channel_count(), pair.agent.channel_count()), (0, 0));
}

#[test]
fn bytes_can_be_sent_without_copying() {
    let mut pair = Pair::connected();
    let s = pair.open_from_hub(ChannelKind::Stream);
    let m = pair.open_from_hub(ChannelKind::Message);
    let big = Bytes::from(vec![5u8; 300 * 1024]);
    let taken = pair.hub.send_bytes(s, big.clone()).unwrap();
    assert_eq!(taken, 256 * 1024, "only the window is taken; the caller keeps the rest");
    pair.hub
        .send_message_bytes(m, 3, Bytes::from_static(b"request"))
        .unwrap();
    pair.drive();
    let (data, _) = read_all(&mut pair.agent, s);
    assert_eq!(data.len(), taken);
    assert_eq!(
        pair.agent.recv_message(m).unwrap().unwrap().payload,
        Bytes::from_static(b"request")
    );
}

#[test]
fn after_goaway_new_opens_from_the_peer_are_refused_with_shutdown() {
    let mut pair = Pair::connected();
    let _keep = pair.open_from_hub(ChannelKind::Stream);
    let pending = pair.agent.open_channel(ChannelKind::Stream, b"t", b"").unwrap();
    pair.drive();
    // The hub shuts down with one channel waiting for its answer...
    pair.hub
        .shutdown(pair.now, ErrorCode::Shutdown, Duration::from_secs(30));
    // ...and the agent, not yet told, opens another: it crosses the GOAWAY.
    let crossing = pair.agent.open_channel(ChannelKind::Stream, b"t", b"").unwrap();
    pair.drive();
    let refused: Vec<Event> = pair
        .agent_events
        .drain(..)
        .filter(|e| matches!(e, Event::ChannelRefused { .. }))
        .collect();
    assert_eq!(
        refused,
        vec![
            Event::ChannelRefused {
                channel: pending,
                code: ErrorCode::Shutdown
            },
            Event::ChannelRefused {
                channel: crossing,
                code: ErrorCode::Shutdown
            },
        ]
    );
    assert!(pair.hub.is_established(), "the accepted channel still drains");
}

#[test]
fn channel_ids_run_out_cleanly() {
    let mut pair = Pair::connected();
    pair.hub.skip_channel_ids_to(u64::from(u32::MAX) - 1);
    let last = pair.hub.open_channel(ChannelKind::Stream, b"", b"").unwrap();
    assert_eq!(last.value(), u32::MAX - 1);
    assert_eq!(
        pair.hub.open_channel(ChannelKind::Stream, b"", b""),
        Err(OpenError::IdsExhausted)
    );
}

#[test]
fn calls_after_the_end_say_closed() {
    let mut pair = Pair::connected();
    let ch = pair.open_from_hub(ChannelKind::Message);
    pair.hub.close(ErrorCode::Cancel, b"");
    assert_eq!(pair.hub.accept(ch), Err(ChannelError::Closed));
    assert_eq!(pair.hub.finish(ch), Err(ChannelError::Closed));
    assert_eq!(pair.hub.reset(ch, ErrorCode::Cancel), Err(ChannelError::Closed));
    assert_eq!(pair.hub.recv_message(ch), Err(ReadError::Closed));
    assert_eq!(pair.hub.send_message(ch, 1, b""), Err(SendError::Closed));
}

#[test]
fn settings_out_of_range_are_refused() {
    let mut c = Config::default();
    assert_eq!(c.max_frame_size(1023).unwrap_err().setting, "max_frame_size");
    assert!(c.max_frame_size(1 << 24).is_err());
    assert!(c.max_handshake_size(255).is_err());
    assert!(c.max_channels(0).is_err());
    assert!(c.max_pending_opens(0).is_err());
    assert!(c.channel_window(0).is_err());
    assert!(c.session_window(0).is_err());
    assert!(c.max_send_buffer(0).is_err());
    assert!(c.max_frame_size(1024).is_ok() && c.channel_window(1).is_ok());
}
