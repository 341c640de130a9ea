//! Handshake scenarios: success, every rejection, replay, timeout, versions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::util::*;
use crate::frame::{Frame, FrameDecoder};
use crate::*;

fn hub_rejection(pair: &mut Pair) -> Rejection {
    match pair.hub.error() {
        Some(SessionError::Rejected(r)) => r.clone(),
        other => panic!("hub should have rejected the agent, got {other:?}"),
    }
}

fn agent_saw_auth_failed(pair: &Pair) {
    match pair.agent.error() {
        Some(SessionError::Remote {
            code: ErrorCode::AuthFailed,
            ..
        }) => {}
        other => panic!("agent should be told AuthFailed, got {other:?}"),
    }
}

#[test]
fn handshake_succeeds_and_both_sides_agree() {
    let mut pair = Builder::new().build();
    pair.drive();
    let a = pair.agent_event(|e| matches!(e, Event::Established { .. })).unwrap();
    let h = pair.hub_event(|e| matches!(e, Event::Established { .. })).unwrap();
    assert_eq!(a, h, "same agent, session id and version on both sides");
    let Event::Established {
        agent,
        session,
        version,
    } = h
    else {
        unreachable!()
    };
    assert_eq!(agent.as_str(), AGENT);
    assert_eq!(version, PROTOCOL_VERSION);
    assert_eq!(
        (pair.agent.version(), pair.hub.version()),
        (Some(version), Some(version))
    );
    assert_eq!(pair.agent.session_id(), Some(session));
    // Two round trips of 10 ms.
    assert!(pair.hub.poll_timeout().is_some());
}

#[test]
fn handshake_completes_byte_by_byte() {
    let mut b = Builder::new();
    b.chunking = Chunking::Fixed(1);
    let pair = b.connect();
    assert_eq!(pair.hub.agent_id().unwrap().as_str(), AGENT);
}

#[test]
fn wrong_secret_is_rejected_with_a_generic_code() {
    let mut b = Builder::new();
    b.agent_secret = Secret::new(b"not the right secret at all!").unwrap();
    let mut pair = b.build();
    pair.drive();
    assert_eq!(hub_rejection(&mut pair), Rejection::BadProof(agent_id()));
    agent_saw_auth_failed(&pair);
    assert!(pair.agent.is_drained() && pair.hub.is_drained());
}

#[test]
fn revoked_agent_is_rejected() {
    let mut b = Builder::new();
    b.store.revoke(agent_id());
    let mut pair = b.build();
    pair.drive();
    assert_eq!(hub_rejection(&mut pair), Rejection::Revoked(agent_id()));
    agent_saw_auth_failed(&pair);
}

#[test]
fn unknown_agent_is_rejected_only_after_its_proof() {
    let mut b = Builder::new();
    b.store = MemoryCredentials::new();
    let mut pair = b.build();
    // HELLO -> CHALLENGE still happens: the hub reveals nothing before the proof.
    pair.step();
    pair.run_for(Duration::from_millis(10));
    assert!(!pair.hub.is_closed());
    pair.drive();
    assert_eq!(hub_rejection(&mut pair), Rejection::UnknownAgent(agent_id()));
    agent_saw_auth_failed(&pair);
}

#[test]
fn agent_must_claim_the_id_its_certificate_names() {
    let mut b = Builder::new();
    b.certified = Some(AgentId::new("plant-8").unwrap());
    let mut pair = b.build();
    pair.drive();
    assert!(matches!(hub_rejection(&mut pair), Rejection::IdentityMismatch { .. }));
    let mut b = Builder::new();
    b.certified = Some(agent_id());
    b.connect();
}

#[test]
fn proof_from_another_tls_connection_fails() {
    // A relay: the agent's TLS connection and the hub's are different ones.
    let mut b = Builder::new();
    b.agent_binding = ChannelBinding::new(&[0xEE; 32]).unwrap();
    let mut pair = b.build();
    pair.drive();
    assert_eq!(hub_rejection(&mut pair), Rejection::BadProof(agent_id()));
}

/// Frames a session transmitted, decoded.
fn frames_of(bytes: &[u8]) -> Vec<(Vec<u8>, Frame)> {
    let mut d = FrameDecoder::new(1 << 20, 1 << 16);
    d.push(bytes);
    let mut out = Vec::new();
    while let Some(raw) = d.next_frame().unwrap() {
        let mut wire = raw.header.to_bytes().to_vec();
        wire.extend_from_slice(&raw.payload);
        out.push((wire, Frame::decode(raw).unwrap()));
    }
    out
}

#[test]
fn recorded_proof_replayed_onto_another_exporter_value_fails() {
    // Record a complete, successful exchange.
    let mut pair = Builder::new().build();
    pair.record = true;
    pair.drive();
    assert!(pair.hub.is_established());
    let recorded = frames_of(&pair.to_hub.delivered);
    let (hello, proof) = (&recorded[0].0, &recorded[1].0);
    assert!(matches!(recorded[1].1, Frame::Proof(_)));

    // Replay it to a hub whose every input is identical (same randomness,
    // so the same challenge and transcript) except the TLS exporter value.
    let replay_to = |binding: [u8; 32]| {
        let mut hub = Session::hub(
            Config::default(),
            Arc::new(store()),
            Start::new(ChannelBinding::new(&binding).unwrap(), Random([0xB2; 32])),
            Instant::now(),
        );
        hub.handle_input(Instant::now(), hello);
        hub.handle_input(Instant::now(), proof);
        hub
    };
    let same = replay_to(BINDING);
    assert!(
        same.is_established(),
        "control: the replay verifies on the original connection"
    );
    let other = replay_to([0xB3; 32]);
    assert_eq!(
        other.error(),
        Some(&SessionError::Rejected(Rejection::BadProof(agent_id())))
    );
}

#[test]
fn a_hub_that_cannot_confirm_is_refused_by_the_agent() {
    let mut pair = Builder::new().build();
    // Let HELLO, CHALLENGE and PROOF through, then corrupt the CONFIRM.
    let now = pair.now;
    let mut buf = Vec::new();
    let _ = pair.agent.poll_transmit(pair.now, &mut buf);
    pair.hub.handle_input(now, &buf);
    buf.clear();
    let _ = pair.hub.poll_transmit(pair.now, &mut buf);
    pair.agent.handle_input(now, &buf);
    buf.clear();
    let _ = pair.agent.poll_transmit(pair.now, &mut buf);
    pair.hub.handle_input(now, &buf);
    buf.clear();
    let _ = pair.hub.poll_transmit(pair.now, &mut buf);
    assert!(matches!(frames_of(&buf)[0].1, Frame::Confirm(_)));
    *buf.last_mut().unwrap() ^= 1;
    pair.agent.handle_input(now, &buf);
    assert_eq!(pair.agent.error(), Some(&SessionError::HubNotAuthenticated));
    assert!(!pair.agent.is_established());
}

#[test]
fn handshake_deadline_closes_a_silent_peer() {
    let mut pair = Builder::new().build();
    pair.to_hub.cut = true;
    pair.run_for(Duration::from_secs(9));
    assert!(!pair.hub.is_closed() && !pair.agent.is_closed());
    pair.run_for(Duration::from_secs(2));
    assert_eq!(pair.hub.error(), Some(&SessionError::HandshakeTimedOut));
    assert_eq!(pair.agent.error(), Some(&SessionError::HandshakeTimedOut));
    assert_eq!(pair.hub.error().unwrap().code(), ErrorCode::HandshakeTimeout);
}

#[test]
fn no_common_version_is_reported_on_both_sides() {
    let mut b = Builder::new();
    b.agent_config.versions(&[7, 9]);
    let mut pair = b.build();
    pair.drive();
    let expected = SessionError::VersionMismatch {
        offered: vec![7, 9],
        supported: vec![PROTOCOL_VERSION],
    };
    assert_eq!(pair.hub.error(), Some(&expected));
    assert_eq!(pair.agent.error(), Some(&expected));
    let mut after = Vec::new();
    assert_eq!(
        pair.agent.poll_transmit(pair.now, &mut after),
        0,
        "nothing is sent after the peer's CLOSE"
    );
}

#[test]
fn highest_common_version_is_chosen() {
    let mut b = Builder::new();
    b.agent_config.versions(&[1, 5, 3]);
    b.hub_config.versions(&[3, 1]);
    let mut pair = b.build();
    pair.drive();
    let Some(Event::Established { version, .. }) = pair.agent_event(|e| matches!(e, Event::Established { .. })) else {
        panic!("not established: {:?}", pair.agent.error())
    };
    assert_eq!(version, 3);
}

#[test]
fn channel_frames_before_the_handshake_are_a_violation() {
    let mut pair = Builder::new().build();
    let open = Frame::Fin {
        channel: ChannelId::new(1).unwrap(),
    }
    .to_vec();
    pair.hub.handle_input(pair.now, &open);
    assert_eq!(
        pair.hub.error(),
        Some(&SessionError::Violation(Violation::Unexpected(
            crate::frame::FrameType::Fin
        )))
    );
}

#[test]
fn commands_before_the_handshake_are_refused() {
    let mut pair = Builder::new().build();
    assert_eq!(
        pair.hub.open_channel(ChannelKind::Stream, b"x", b""),
        Err(OpenError::NotEstablished)
    );
}
