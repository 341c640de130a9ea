//! An access policy read from TOML, as an agent's configuration file holds it.
#![cfg(feature = "serde")]

use outpost_modbus_core::access::{Access, Denial, Policy, Table};
use outpost_modbus_core::{CoilRange, FunctionClass, FunctionCode, RegisterRange, Request, UnitId};

const POLICY: &str = r#"
[roles.operator]
units = [1, 2]
functions = ["read", "write"]
holding_registers = { read = [[0, 99]], write = [[10, 19]] }
coils = { read = [[0, 15]], write = [[0, 7]] }

[roles.historian]
units = "all"
functions = ["read", "device_identification"]
holding_registers = { read = [[0, 65535]] }
input_registers = { read = [[0, 65535]] }
"#;

#[test]
fn policy_from_toml() {
    let policy: Policy = toml::from_str(POLICY).unwrap();
    assert_eq!(policy.roles().collect::<Vec<_>>(), ["historian", "operator"]);
    let read = Request::ReadHoldingRegisters(RegisterRange::new(0, 100).unwrap());
    assert_eq!(policy.check("operator", UnitId(2), &read), Ok(()));
    assert_eq!(policy.check("historian", UnitId(247), &read), Ok(()));
    assert_eq!(
        policy.check("operator", UnitId(3), &read),
        Err(Denial::Unit { unit: UnitId(3) })
    );
    let write = Request::WriteSingleCoil {
        address: 8,
        value: true,
    };
    assert_eq!(
        policy.check("operator", UnitId(1), &write),
        Err(Denial::Address {
            table: Table::Coils,
            access: Access::Write,
            start: 8,
            quantity: 1
        })
    );
    assert_eq!(
        policy.check("historian", UnitId(1), &write),
        Err(Denial::Function {
            function: FunctionCode::WriteSingleCoil,
            class: FunctionClass::Write
        })
    );
    let coils = Request::ReadCoils(CoilRange::new(0, 1).unwrap());
    assert!(matches!(
        policy.check("historian", UnitId(1), &coils),
        Err(Denial::Address {
            table: Table::Coils,
            ..
        })
    ));
    // It writes back to the same policy.
    let text = toml::to_string(&policy).unwrap();
    assert_eq!(toml::from_str::<Policy>(&text).unwrap(), policy);
}

#[test]
fn bad_policies_are_refused() {
    // A reversed span.
    assert!(toml::from_str::<Policy>("[roles.x]\nholding_registers = { read = [[9, 1]] }").is_err());
    // A misspelt key is an error, not a silently ignored rule.
    assert!(toml::from_str::<Policy>("[roles.x]\nholding_register = { read = [[0, 1]] }").is_err());
    // An unknown class.
    assert!(toml::from_str::<Policy>("[roles.x]\nfunctions = [\"everything\"]").is_err());
    // A unit id out of range.
    assert!(toml::from_str::<Policy>("[roles.x]\nunits = [256]").is_err());
}

/// Rules at the grain of what a request does: each with an allowed and a
/// refused case.
const FINE: &str = r#"
[roles.maintenance]
units = "all"
functions = ["read", "diagnostics"]
fifo_queues = [1246]
custom_functions = [65]
mei_types = [13]

[roles.engineer]
units = [0, "all"]
functions = ["write", "diagnostics", "device_control"]
holding_registers = { write = [[0, 9]] }
"#;

fn diagnostic(sub_function: u16) -> Vec<u8> {
    let [hi, lo] = sub_function.to_be_bytes();
    vec![0x08, hi, lo, 0x00, 0x00]
}

fn check(policy: &Policy, role: &str, unit: u8, pdu: &[u8]) -> Result<(), Denial> {
    policy.check(role, UnitId(unit), &Request::decode(pdu).unwrap())
}

#[test]
fn diagnostics_that_change_the_device_are_device_control() {
    let policy: Policy = toml::from_str(FINE).unwrap();
    // Reading counters and the diagnostic register: Diagnostics.
    for sub in [0x00, 0x02, 0x0B, 0x0E, 0x12] {
        assert_eq!(
            check(&policy, "maintenance", 1, &diagnostic(sub)),
            Ok(()),
            "08/{sub:02X}"
        );
    }
    // Restart, listen-only, clearing counters and overrun, undefined: DeviceControl.
    for sub in [0x01, 0x03, 0x04, 0x0A, 0x14, 0x15] {
        let denial = check(&policy, "maintenance", 1, &diagnostic(sub)).unwrap_err();
        assert_eq!(
            denial,
            Denial::Function {
                function: FunctionCode::Diagnostics,
                class: FunctionClass::DeviceControl
            },
            "08/{sub:02X}"
        );
        assert_eq!(check(&policy, "engineer", 1, &diagnostic(sub)), Ok(()), "08/{sub:02X}");
    }
}

#[test]
fn custom_functions_and_mei_types_are_allowed_by_lists() {
    let policy: Policy = toml::from_str(FINE).unwrap();
    assert_eq!(check(&policy, "maintenance", 1, &[65, 1, 2]), Ok(()));
    assert!(matches!(
        check(&policy, "maintenance", 1, &[66, 1, 2]),
        Err(Denial::Function {
            class: FunctionClass::Custom,
            ..
        })
    ));
    assert_eq!(check(&policy, "maintenance", 1, &[0x2B, 13, 0]), Ok(()));
    assert!(check(&policy, "maintenance", 1, &[0x2B, 14 + 1, 0]).is_err());
    // Read Device Identification (2B/0E) keeps its own class.
    assert!(matches!(
        check(&policy, "maintenance", 1, &[0x2B, 0x0E, 0x01, 0x00]),
        Err(Denial::Function {
            class: FunctionClass::DeviceIdentification,
            ..
        })
    ));
    // The old class that allowed every custom code is refused, saying what to write.
    let error = toml::from_str::<Policy>("[roles.x]\nfunctions = [\"custom\"]").unwrap_err();
    assert!(error.to_string().contains("custom_functions"), "{error}");
}

#[test]
fn a_fifo_read_is_allowed_by_its_pointer_address_only() {
    let policy: Policy = toml::from_str(FINE).unwrap();
    assert_eq!(check(&policy, "maintenance", 1, &[0x18, 0x04, 0xDE]), Ok(()));
    let denial = check(&policy, "maintenance", 1, &[0x18, 0x04, 0xDF]).unwrap_err();
    assert_eq!(denial, Denial::Fifo { address: 0x04DF });
    assert_eq!(
        denial.exception_code(),
        outpost_modbus_core::ExceptionCode::IllegalDataAddress
    );
}

#[test]
fn broadcast_is_allowed_only_when_listed() {
    let policy: Policy = toml::from_str(FINE).unwrap();
    let write = [0x06, 0x00, 0x01, 0x00, 0x07];
    // "all" is 1..=255.
    assert_eq!(
        check(&policy, "maintenance", 0, &[0x03, 0x00, 0x00, 0x00, 0x01]),
        Err(Denial::Unit { unit: UnitId(0) })
    );
    assert_eq!(check(&policy, "maintenance", 255, &diagnostic(0)), Ok(()));
    // Listed beside "all": broadcast allowed.
    assert_eq!(check(&policy, "engineer", 0, &write), Ok(()));
    assert_eq!(check(&policy, "engineer", 200, &write), Ok(()));
    let text = toml::to_string(&policy).unwrap();
    assert_eq!(toml::from_str::<Policy>(&text).unwrap(), policy);
}
