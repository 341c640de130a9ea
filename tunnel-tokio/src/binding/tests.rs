//! Byte-exact vectors of PROTOCOL.md section 12, round trips, and every
//! refusal.

use std::time::Duration;

use outpost_modbus_core::{ExceptionCode, UnitId};
use proptest::prelude::*;

use super::*;

#[test]
fn metadata_vector() {
    let m = ChannelMetadata {
        role: Role::new("operator").unwrap(),
        principal: Principal::new("gw:502 10.0.0.5").unwrap(),
    };
    let wire = m.to_vec();
    let mut expected = vec![1, 8];
    expected.extend_from_slice(b"operator");
    expected.push(15);
    expected.extend_from_slice(b"gw:502 10.0.0.5");
    assert_eq!(wire, expected);
    assert_eq!(ChannelMetadata::decode(&wire).unwrap(), m);
}

#[test]
fn metadata_refusals() {
    let ok = ChannelMetadata {
        role: Role::new("r").unwrap(),
        principal: Principal::default(),
    }
    .to_vec();
    assert_eq!(ok, [1, 1, b'r', 0]);
    assert_eq!(ChannelMetadata::decode(&[2, 1, b'r', 0]), Err(BindingError::Version(2)));
    assert_eq!(BindingError::Version(2).code(), CODE_UNSUPPORTED);
    assert_eq!(ChannelMetadata::decode(&[1, 0, 0]), Err(BindingError::Role));
    assert_eq!(ChannelMetadata::decode(&[1, 1, b' ', 0]), Err(BindingError::Role));
    assert_eq!(BindingError::Role.code(), CODE_BAD_METADATA);
    assert!(matches!(
        ChannelMetadata::decode(&[1, 5, b'r']),
        Err(BindingError::Truncated { .. })
    ));
    assert!(matches!(
        ChannelMetadata::decode(&[1, 1, b'r']),
        Err(BindingError::Truncated { .. })
    ));
    assert_eq!(
        ChannelMetadata::decode(&[1, 1, b'r', 1, 0xFF]),
        Err(BindingError::Principal)
    );
    assert_eq!(
        ChannelMetadata::decode(&[1, 1, b'r', 0, 9]),
        Err(BindingError::Trailing {
            what: "metadata",
            extra: 1
        })
    );
    assert!(Role::new(&"a".repeat(64)).is_ok());
    assert_eq!(Role::new(&"a".repeat(65)), Err(BindingError::Role));
    assert_eq!(Principal::new(&"é".repeat(128)), Err(BindingError::Principal));
}

#[test]
fn request_vector() {
    // Read Holding Registers 0x6B x 3 (Application Protocol 6.3), unit 17,
    // 2.5 s, first attempt.
    let pdu = [0x03, 0x00, 0x6B, 0x00, 0x03];
    let r = TunnelRequest::new(UnitId(17), Duration::from_millis(2500), &pdu).unwrap();
    let mut wire = Vec::new();
    r.encode(&mut wire);
    assert_eq!(
        wire,
        [0x01, 0x11, 0x00, 0x00, 0x09, 0xC4, 0x00, 0x03, 0x00, 0x6B, 0x00, 0x03]
    );
    assert_eq!(wire.len(), r.encoded_len());
    assert_eq!(TunnelRequest::decode(&wire).unwrap(), r);
    let mut retry = Vec::new();
    r.retried().encode(&mut retry);
    assert_eq!(retry[6], 1);
    assert!(TunnelRequest::decode(&retry).unwrap().is_retry());
}

#[test]
fn request_refusals() {
    let pdu = [0x03, 0x00, 0x00, 0x00, 0x01];
    let d = Duration::from_secs(1);
    assert_eq!(TunnelRequest::new(UnitId(1), d, &[]), Err(BindingError::PduLength(0)));
    assert_eq!(
        TunnelRequest::new(UnitId(1), d, &[0x41; 254]),
        Err(BindingError::PduLength(254))
    );
    assert!(TunnelRequest::new(UnitId(1), d, &[0x41; 253]).is_ok());
    assert_eq!(
        TunnelRequest::new(UnitId(1), Duration::from_micros(999), &pdu),
        Err(BindingError::Budget(0))
    );
    assert_eq!(
        TunnelRequest::new(UnitId(1), MAX_BUDGET + Duration::from_millis(1), &pdu),
        Err(BindingError::Budget(3_600_001))
    );
    assert!(TunnelRequest::new(UnitId(1), MAX_BUDGET, &pdu).is_ok());
    // Sub-millisecond parts are dropped.
    let r = TunnelRequest::new(UnitId(1), Duration::from_micros(1500), &pdu).unwrap();
    assert_eq!(r.budget(), Duration::from_millis(1));
    let mut wire = Vec::new();
    TunnelRequest::new(UnitId(1), d, &pdu).unwrap().encode(&mut wire);
    let mut bad = wire.clone();
    bad[0] = 0x02;
    assert_eq!(
        TunnelRequest::decode(&bad),
        Err(BindingError::Type { expected: 1, found: 2 })
    );
    let mut bad = wire.clone();
    bad[6] = 2;
    assert_eq!(TunnelRequest::decode(&bad), Err(BindingError::Attempt(2)));
    let mut bad = wire.clone();
    bad[2..6].copy_from_slice(&0u32.to_be_bytes());
    assert_eq!(TunnelRequest::decode(&bad), Err(BindingError::Budget(0)));
    assert_eq!(TunnelRequest::decode(&wire[..7]), Err(BindingError::PduLength(0)));
    assert!(matches!(
        TunnelRequest::decode(&wire[..6]),
        Err(BindingError::Truncated { .. })
    ));
    assert_eq!(
        BindingError::Attempt(2).code(),
        outpost_tunnel_proto::ErrorCode::ProtocolError
    );
}

#[test]
fn outcome_vectors_and_gateway_mapping() {
    use ExceptionCode::*;
    let answer = [0x03, 0x06, 0x02, 0x2B, 0x00, 0x00, 0x00, 0x64];
    let cases: [(Outcome<'_>, &[u8], Option<ExceptionCode>, Delivery); 7] = [
        (
            Outcome::Answered(&answer),
            &[0x02, 0x00, 0x03, 0x06, 0x02, 0x2B, 0x00, 0x00, 0x00, 0x64],
            None,
            Delivery::Answered,
        ),
        (
            Outcome::Denied(IllegalDataAddress),
            &[0x02, 0x01, 0x02],
            Some(IllegalDataAddress),
            Delivery::NotSent,
        ),
        (
            Outcome::NoAnswer,
            &[0x02, 0x02],
            Some(GatewayTargetFailedToRespond),
            Delivery::Unknown,
        ),
        (
            Outcome::Unreachable,
            &[0x02, 0x03],
            Some(GatewayPathUnavailable),
            Delivery::NotSent,
        ),
        (Outcome::Busy, &[0x02, 0x04], Some(ServerDeviceBusy), Delivery::NotSent),
        (
            Outcome::Expired,
            &[0x02, 0x05],
            Some(GatewayTargetFailedToRespond),
            Delivery::NotSent,
        ),
        (
            Outcome::Malformed(IllegalDataValue),
            &[0x02, 0x06, 0x03],
            Some(IllegalDataValue),
            Delivery::NotSent,
        ),
    ];
    for (outcome, bytes, exception, delivery) in cases {
        let mut wire = Vec::new();
        outcome.encode(&mut wire);
        assert_eq!(wire, bytes, "{}", outcome.name());
        assert_eq!(wire.len(), outcome.encoded_len());
        assert_eq!(Outcome::decode(bytes).unwrap(), outcome);
        assert_eq!(outcome.gateway_exception(), exception);
        assert_eq!(outcome.delivery(), delivery);
    }
    // A device's own exception is an answer, passed on as it is.
    let exception = Outcome::decode(&[0x02, 0x00, 0x83, 0x02]).unwrap();
    assert_eq!(exception, Outcome::Answered(&[0x83, 0x02]));
    assert_eq!(exception.gateway_exception(), None);
}

#[test]
fn outcome_refusals_and_unknown_codes() {
    // An outcome from a later version: whether it was sent is unknown.
    assert_eq!(Outcome::decode(&[0x02, 0x7F]), Ok(Outcome::NoAnswer));
    assert!(matches!(Outcome::decode(&[0x02]), Err(BindingError::Truncated { .. })));
    assert_eq!(
        Outcome::decode(&[0x01, 0x02]),
        Err(BindingError::Type { expected: 2, found: 1 })
    );
    assert_eq!(Outcome::decode(&[0x02, 0x00]), Err(BindingError::PduLength(0)));
    assert_eq!(
        Outcome::decode(&[0x02, 0x01, 0x04]),
        Err(BindingError::Detail {
            outcome: 1,
            exception: 4
        })
    );
    assert_eq!(
        Outcome::decode(&[0x02, 0x06, 0x04]),
        Err(BindingError::Detail {
            outcome: 6,
            exception: 4
        })
    );
    assert!(matches!(
        Outcome::decode(&[0x02, 0x01]),
        Err(BindingError::Truncated { .. })
    ));
    assert!(matches!(
        Outcome::decode(&[0x02, 0x01, 0x01, 0x00]),
        Err(BindingError::Trailing { .. })
    ));
    assert!(matches!(
        Outcome::decode(&[0x02, 0x02, 0x00]),
        Err(BindingError::Trailing { .. })
    ));
    let mut long = vec![0x02, 0x00];
    long.extend_from_slice(&[0x41; 254]);
    assert_eq!(Outcome::decode(&long), Err(BindingError::PduLength(254)));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = ChannelMetadata::decode(&bytes);
        if let Ok(r) = TunnelRequest::decode(&bytes) {
            let mut wire = Vec::new();
            r.encode(&mut wire);
            prop_assert_eq!(wire, bytes.clone());
        }
        if let Ok(o) = Outcome::decode(&bytes) {
            if bytes.get(1).is_some_and(|c| *c <= 0x06) {
                let mut wire = Vec::new();
                o.encode(&mut wire);
                prop_assert_eq!(wire, bytes);
            }
        }
    }

    #[test]
    fn requests_round_trip(unit in any::<u8>(), ms in 1u64..=3_600_000, retry in any::<bool>(),
                           pdu in proptest::collection::vec(any::<u8>(), 1..=253)) {
        let mut r = TunnelRequest::new(UnitId(unit), Duration::from_millis(ms), &pdu).unwrap();
        if retry {
            r = r.retried();
        }
        let mut wire = Vec::new();
        r.encode(&mut wire);
        prop_assert_eq!(TunnelRequest::decode(&wire).unwrap(), r);
    }

    #[test]
    fn metadata_round_trips(role in "[!-~]{1,64}", principal in "\\PC{0,60}") {
        let m = ChannelMetadata { role: Role::new(&role).unwrap(), principal: Principal::new(&principal).unwrap() };
        prop_assert_eq!(ChannelMetadata::decode(&m.to_vec()).unwrap(), m);
    }
}
