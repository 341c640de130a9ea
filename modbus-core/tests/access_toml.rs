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
