//! The Modbus binding's messages (PROTOCOL.md section 12): what an agent
//! reads from the hub (channel metadata, requests) and what a hub reads from
//! an agent (outcomes).

use outpost_tunnel_tokio::binding::{ChannelMetadata, Outcome, TunnelRequest};

/// Target `binding`: byte 0 picks the decoder, the rest is the message.
/// What decodes re-encodes to the same bytes (an unknown outcome code,
/// read as NO_ANSWER, excepted) and maps to a gateway exception.
pub fn binding(data: &[u8]) {
    let Some((&which, message)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            if let Ok(m) = ChannelMetadata::decode(message) {
                assert_eq!(m.to_vec(), message);
            }
        }
        1 => {
            if let Ok(r) = TunnelRequest::decode(message) {
                let mut out = Vec::new();
                r.encode(&mut out);
                assert_eq!(out, message);
                assert_eq!(r.encoded_len(), message.len());
            }
        }
        _ => {
            if let Ok(o) = Outcome::decode(message) {
                let _ = (o.delivery(), o.gateway_exception(), o.name());
                if message[1] <= 0x06 {
                    let mut out = Vec::new();
                    o.encode(&mut out);
                    assert_eq!(out, message);
                    assert_eq!(o.encoded_len(), message.len());
                } else {
                    assert_eq!(o, Outcome::NoAnswer);
                }
            }
        }
    }
}
