//! The agent's admission: scenario tests of each rule.

use std::time::Duration;

use outpost_modbus_core::access::Denial;
use outpost_modbus_core::{ExceptionCode, UnitId};
use outpost_tunnel_proto::{ChannelId, ChannelKind, ErrorCode};

use super::super::*;
use super::policy;
use crate::binding::{ChannelMetadata, Outcome, Principal, Role, TunnelRequest, CODE_BAD_METADATA};

const READ: [u8; 5] = [0x03, 0x00, 0x00, 0x00, 0x01];
const WRITE: [u8; 5] = [0x06, 0x00, 0x01, 0x00, 0x07];

fn metadata(role: &str) -> Vec<u8> {
    ChannelMetadata {
        role: Role::new(role).unwrap(),
        principal: Principal::new("scada-1").unwrap(),
    }
    .to_vec()
}

fn request(unit: u8, pdu: &[u8], retry: bool) -> Vec<u8> {
    let r = TunnelRequest::new(UnitId(unit), Duration::from_secs(2), pdu).unwrap();
    let r = if retry { r.retried() } else { r };
    let mut wire = Vec::new();
    r.encode(&mut wire);
    wire
}

fn channel(n: u32) -> ChannelId {
    ChannelId::new(n).unwrap()
}

/// An admission with channel 2 open to device "plc" (serving unit 1) as `role`.
fn admission(role: &str, max: usize) -> Admission<&'static str> {
    let mut a = Admission::new(max);
    a.open(channel(2), ChannelKind::Message, b"plc", &metadata(role), |n| {
        (n == "plc").then_some("plc")
    })
    .unwrap();
    a
}

fn serves(_: &&str, unit: UnitId) -> bool {
    unit == UnitId(1)
}

#[test]
fn channels_to_known_devices_with_valid_metadata_are_accepted() {
    let mut a: Admission<&str> = Admission::new(8);
    let known = |n: &str| (n == "plc").then_some("plc");
    let grant = a.open(channel(2), ChannelKind::Message, b"plc", &metadata("operator"), known);
    assert_eq!(grant.unwrap().metadata.principal.as_str(), "scada-1");
    let stream = a.open(channel(4), ChannelKind::Stream, b"plc", &metadata("operator"), known);
    assert_eq!(stream.unwrap_err().code(), ErrorCode::Refused);
    let unknown = a.open(channel(6), ChannelKind::Message, b"plc-9", &metadata("operator"), known);
    assert_eq!(unknown.unwrap_err().code(), ErrorCode::UnknownTarget);
    let bad = a.open(channel(8), ChannelKind::Message, b"plc", &[1, 1, b' ', 0], known);
    assert_eq!(bad.unwrap_err().code(), CODE_BAD_METADATA);
    assert_eq!(a.channel_count(), 1);
}

#[test]
fn an_allowed_request_is_forwarded_and_counted_until_finished() {
    let mut a = admission("operator", 8);
    let payload = request(1, &READ, false);
    let Verdict::Forward(admitted) = a.handle_request(channel(2), 7, &payload, &policy(), serves) else {
        panic!("not forwarded");
    };
    assert_eq!(admitted.pdu, READ);
    assert_eq!(admitted.unit, UnitId(1));
    assert_eq!(admitted.budget, Duration::from_secs(2));
    assert!(!admitted.request.is_write());
    assert!(a.is_in_service(channel(2), 7));
    assert_eq!(a.in_service(), 1);
    a.finished(channel(2), 7);
    assert_eq!(a.in_service(), 0);
    // The id is free again once its outcome is sent.
    assert!(matches!(
        a.handle_request(channel(2), 7, &payload, &policy(), serves),
        Verdict::Forward(_)
    ));
}

#[test]
fn a_correlation_id_in_service_resets_the_channel() {
    let mut a = admission("operator", 8);
    let payload = request(1, &READ, false);
    assert!(matches!(
        a.handle_request(channel(2), 7, &payload, &policy(), serves),
        Verdict::Forward(_)
    ));
    assert_eq!(
        a.handle_request(channel(2), 7, &payload, &policy(), serves),
        Verdict::Reset(ErrorCode::ProtocolError)
    );
    assert_eq!(a.in_service(), 0, "the reset channel's requests are no longer wanted");
    assert!(!a.is_in_service(channel(2), 7));
    assert_eq!(
        a.handle_request(channel(2), 8, &payload, &policy(), serves),
        Verdict::Ignore
    );
}

#[test]
fn a_request_that_breaks_the_profile_resets_the_channel() {
    let mut a = admission("operator", 8);
    assert_eq!(
        a.handle_request(channel(2), 1, &[0x01, 0x01], &policy(), serves),
        Verdict::Reset(ErrorCode::ProtocolError)
    );
    assert_eq!(a.channel_count(), 0);
}

#[test]
fn a_retried_write_is_refused_and_a_retried_read_is_not() {
    let mut a = admission("operator", 8);
    let payload = request(1, &WRITE, true);
    let verdict = a.handle_request(channel(2), 1, &payload, &policy(), serves);
    let Verdict::Refuse { refusal, .. } = verdict else {
        panic!("{verdict:?}");
    };
    assert_eq!(refusal, Refusal::RetriedWrite);
    assert_eq!(refusal.outcome(), Outcome::Malformed(ExceptionCode::IllegalDataValue));
    assert!(matches!(
        a.handle_request(channel(2), 2, &request(1, &READ, true), &policy(), serves),
        Verdict::Forward(_)
    ));
}

#[test]
fn a_pdu_that_is_no_request_is_malformed() {
    let mut a = admission("operator", 8);
    let cases: [(&[u8], ExceptionCode); 3] = [
        (&[0x03, 0x00], ExceptionCode::IllegalDataValue),
        (&[0x03, 0xFF, 0xFF, 0x00, 0x02], ExceptionCode::IllegalDataAddress),
        (&[0x03, 0x00, 0x00, 0x00, 0x00], ExceptionCode::IllegalDataValue),
    ];
    for (i, (pdu, code)) in cases.into_iter().enumerate() {
        let payload = request(1, pdu, false);
        let verdict = a.handle_request(channel(2), i as u32, &payload, &policy(), serves);
        let Verdict::Refuse { refusal, .. } = verdict else {
            panic!("{verdict:?}");
        };
        assert_eq!(refusal.outcome(), Outcome::Malformed(code), "{pdu:02x?}");
    }
}

#[test]
fn a_unit_the_device_does_not_serve_is_denied_0a() {
    let mut a = admission("operator", 8);
    let payload = request(2, &READ, false);
    let verdict = a.handle_request(channel(2), 1, &payload, &policy(), serves);
    let Verdict::Refuse { refusal, unit, .. } = verdict else {
        panic!("{verdict:?}");
    };
    assert_eq!((refusal.clone(), unit), (Refusal::Unit, UnitId(2)));
    assert_eq!(
        refusal.outcome(),
        Outcome::Denied(ExceptionCode::GatewayPathUnavailable)
    );
}

#[test]
fn the_policy_decides_for_the_channels_role() {
    let mut a = admission("operator", 8);
    // Writes only to registers 0..=9.
    let write_20 = [0x06, 0x00, 0x14, 0x00, 0x01];
    let payload = request(1, &write_20, false);
    let verdict = a.handle_request(channel(2), 1, &payload, &policy(), serves);
    let Verdict::Refuse {
        refusal: Refusal::Policy(denial),
        ..
    } = verdict
    else {
        panic!("{verdict:?}");
    };
    assert_eq!(denial.exception_code(), ExceptionCode::IllegalDataAddress);
    // A role the policy does not know is denied everything.
    let mut stranger = admission("stranger", 8);
    let payload = request(1, &READ, false);
    let verdict = stranger.handle_request(channel(2), 1, &payload, &policy(), serves);
    assert!(matches!(
        verdict,
        Verdict::Refuse {
            refusal: Refusal::Policy(Denial::UnknownRole { .. }),
            ..
        }
    ));
}

#[test]
fn past_the_limit_in_service_requests_are_busy() {
    let mut a = admission("operator", 2);
    for id in 0..2 {
        assert!(matches!(
            a.handle_request(channel(2), id, &request(1, &READ, false), &policy(), serves),
            Verdict::Forward(_)
        ));
    }
    let payload = request(1, &READ, false);
    let verdict = a.handle_request(channel(2), 2, &payload, &policy(), serves);
    assert!(matches!(
        verdict,
        Verdict::Refuse {
            refusal: Refusal::Busy,
            ..
        }
    ));
    a.channel_gone(channel(2));
    assert_eq!(a.in_service(), 0);
}

#[test]
fn a_channel_id_opened_again_starts_with_nothing_in_service() {
    let mut a = admission("operator", 8);
    let payload = request(1, &READ, false);
    for correlation in [1, 2] {
        assert!(matches!(
            a.handle_request(channel(2), correlation, &payload, &policy(), serves),
            Verdict::Forward(_)
        ));
    }
    assert_eq!(a.in_service(), 2);
    let grant = a.grant(channel(2)).expect("the channel's grant");
    assert_eq!((grant.device, grant.metadata.role.as_str()), ("plc", "operator"));
    a.open(channel(2), ChannelKind::Message, b"plc", &metadata("viewer"), |n| {
        (n == "plc").then_some("plc")
    })
    .unwrap();
    assert_eq!(a.in_service(), 0);
    assert!(!a.is_in_service(channel(2), 1));
    assert_eq!(a.grant(channel(2)).map(|g| g.metadata.role.as_str()), Some("viewer"));
    assert!(a.grant(channel(4)).is_none());
}
