//! Keepalive, round-trip time, dead peers and idle sessions.

use std::time::Duration;

use super::util::*;
use crate::*;

#[test]
fn keepalive_measures_rtt_and_keeps_a_quiet_session_alive() {
    let mut b = Builder::new();
    b.latency = Duration::from_millis(25);
    let mut pair = b.connect();
    pair.run_for(Duration::from_secs(300));
    assert!(pair.agent.is_established() && pair.hub.is_established());
    assert_eq!(pair.agent.stats().rtt, Some(Duration::from_millis(50)));
    assert_eq!(pair.hub.stats().rtt, Some(Duration::from_millis(50)));
}

#[test]
fn explicit_ping_measures_rtt() {
    let mut pair = Pair::connected();
    assert_eq!(pair.hub.stats().rtt, None);
    pair.hub.ping(pair.now);
    pair.drive();
    assert_eq!(pair.hub.stats().rtt, Some(Duration::from_millis(20)));
}

#[test]
fn a_silent_peer_is_detected_within_the_timeout() {
    let mut b = Builder::new();
    b.agent_config
        .keepalive_interval(Duration::from_secs(5))
        .peer_timeout(Duration::from_secs(15));
    let mut pair = b.connect();
    // The hub's packets stop reaching the agent (the hub host vanished).
    pair.to_agent.cut = true;
    pair.run_for(Duration::from_secs(14));
    assert!(pair.agent.is_established());
    pair.run_for(Duration::from_secs(2));
    assert_eq!(pair.agent.error(), Some(&SessionError::TimedOut));
    assert!(matches!(
        pair.agent_event(|e| matches!(e, Event::Closed(_))),
        Some(Event::Closed(SessionError::TimedOut))
    ));
}

#[test]
fn idle_timeout_closes_a_session_without_channels() {
    let mut b = Builder::new();
    b.hub_config.idle_timeout(Some(Duration::from_secs(60)));
    let mut pair = b.connect();
    let ch = pair.open_from_hub(ChannelKind::Message);
    pair.run_for(Duration::from_secs(120));
    assert!(
        pair.hub.is_established(),
        "an open channel keeps the session: {:?}",
        pair.hub.error()
    );
    pair.hub.reset(ch, ErrorCode::Cancel).unwrap();
    pair.run_for(Duration::from_secs(59));
    assert!(pair.hub.is_established());
    pair.run_for(Duration::from_secs(2));
    assert!(
        pair.hub.error().is_some_and(SessionError::is_clean),
        "{:?}",
        pair.hub.error()
    );
    assert!(pair.agent.is_closed());
}

#[test]
fn closing_reports_once_and_later_calls_see_the_same_error() {
    let mut pair = Pair::connected();
    pair.agent.close(ErrorCode::Superseded, b"newer session");
    pair.drive();
    let expected = SessionError::Remote {
        code: ErrorCode::Superseded,
        reason: bytes::Bytes::from_static(b"newer session"),
    };
    assert_eq!(pair.hub.error(), Some(&expected));
    assert_eq!(
        pair.hub_events.iter().filter(|e| matches!(e, Event::Closed(_))).count(),
        1
    );
    assert_eq!(pair.hub.poll_timeout(), None);
    pair.hub.handle_input(pair.now, b"anything at all");
    assert_eq!(pair.hub.error(), Some(&expected));
    assert!(pair.hub.is_drained());
}

#[test]
fn timeouts_too_long_to_represent_mean_never() {
    let mut b = Builder::new();
    for c in [&mut b.agent_config, &mut b.hub_config] {
        c.keepalive_interval(Duration::MAX)
            .peer_timeout(Duration::MAX)
            .idle_timeout(Some(Duration::MAX));
    }
    let mut pair = b.connect();
    pair.hub.shutdown(pair.now, ErrorCode::Shutdown, Duration::MAX);
    pair.run_for(Duration::from_secs(3600));
    assert!(pair.agent.is_closed() && pair.hub.is_closed());
}
