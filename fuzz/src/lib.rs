//! The bodies of the cargo-fuzz targets in `fuzz_targets/`, one function per
//! target, so the committed corpora replay through the very same code as
//! ordinary tests (`tests/corpus.rs`) without libFuzzer.
//!
//! Every target asserts more than "no panic": decoders must agree with each
//! other and with their encoders, the server's answers must pass the client's
//! checks, and sessions must keep their bookkeeping consistent and end with a
//! CLOSE when the peer misbehaves.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod acquisition;
mod binding;
mod device;
mod modbus;
mod profile;
mod records;
mod security;
mod seeds;
mod spec;
mod tunnel;

/// One function per fuzz target; each takes libFuzzer's raw input.
pub mod targets {
    pub use crate::acquisition::acquisition;
    pub use crate::binding::binding;
    pub use crate::modbus::{
        client, mbap, request_pdu, response_check, response_pdu, roundtrip_modbus, rtu_request, rtu_response, server,
    };
    pub use crate::profile::{admission, device_queue, requester};
    pub use crate::security::role_certificate;
    pub use crate::tunnel::{agent_session, hub_session, roundtrip_tunnel, tunnel_frame};
}

pub use records::write_records;
pub use seeds::write_seeds;

/// A target's body: takes libFuzzer's input, panics on a finding.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz_targets/` and `corpus/` name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("mbap", targets::mbap),
    ("rtu_request", targets::rtu_request),
    ("rtu_response", targets::rtu_response),
    ("request_pdu", targets::request_pdu),
    ("response_pdu", targets::response_pdu),
    ("response_check", targets::response_check),
    ("server", targets::server),
    ("client", targets::client),
    ("tunnel_frame", targets::tunnel_frame),
    ("hub_session", targets::hub_session),
    ("agent_session", targets::agent_session),
    ("roundtrip_modbus", targets::roundtrip_modbus),
    ("roundtrip_tunnel", targets::roundtrip_tunnel),
    ("binding", targets::binding),
    ("requester", targets::requester),
    ("admission", targets::admission),
    ("device_queue", targets::device_queue),
    ("role_certificate", targets::role_certificate),
    ("acquisition", targets::acquisition),
];
