//! Tests of the profile's machines, in memory, with a simulated clock: each
//! machine alone against a scripted peer, and the hub's and the agent's
//! machines back to back over real tunnel sessions (`pair`).

mod admission;
mod pair;
mod requester;

use outpost_modbus_core::access::{Policy, RoleRules, Span};
use outpost_modbus_core::{FunctionClass, UnitId};

/// The agent's policy in these tests: "operator" reads holding registers
/// 0-99 of unit 1 and writes 0-9.
fn policy() -> Policy {
    let mut operator = RoleRules::default();
    operator.units.insert(UnitId(1));
    operator.functions.insert(FunctionClass::Read);
    operator.functions.insert(FunctionClass::Write);
    operator.holding_registers.read.push(Span::new(0, 99).unwrap());
    operator.holding_registers.write.push(Span::new(0, 9).unwrap());
    Policy::new().with_role("operator", operator)
}
