use super::*;
use crate::data::{Bits, Words};
use crate::types::{CoilRange, CoilWrite, ReadWriteRegisters, RegisterRange, RegisterWrite};

fn operator() -> Policy {
    let mut r = RoleRules::default();
    r.units.insert(UnitId(1));
    r.functions.insert(FunctionClass::Read);
    r.functions.insert(FunctionClass::Write);
    r.holding_registers.read.push(Span::new(0, 99).unwrap());
    r.holding_registers.write.push(Span::new(10, 19).unwrap());
    r.coils.read.push(Span::new(0, 15).unwrap());
    Policy::new().with_role("operator", r)
}

#[test]
fn empty_policy_denies() {
    let p = Policy::new();
    let req = Request::ReadCoils(CoilRange::new(0, 1).unwrap());
    assert_eq!(
        p.check("x", UnitId(1), &req),
        Err(Denial::UnknownRole { role: "x".into() })
    );
    let p = Policy::new().with_role("x", RoleRules::default());
    assert_eq!(p.check("x", UnitId(1), &req), Err(Denial::Unit { unit: UnitId(1) }));
}

#[test]
fn reads_and_writes_by_span() {
    let p = operator();
    let u = UnitId(1);
    let ok = Request::ReadHoldingRegisters(RegisterRange::new(0, 100).unwrap());
    assert_eq!(p.check("operator", u, &ok), Ok(()));
    let w = Request::WriteSingleRegister { address: 19, value: 1 };
    assert_eq!(p.check("operator", u, &w), Ok(()));
    let w = Request::WriteSingleRegister { address: 20, value: 1 };
    let denial = p.check("operator", u, &w).unwrap_err();
    assert_eq!(denial.exception_code(), ExceptionCode::IllegalDataAddress);
    let values = [1u16, 2];
    let w = Request::WriteMultipleRegisters(RegisterWrite::new(19, Words::from_slice(&values)).unwrap());
    assert_eq!(
        p.check("operator", u, &w),
        Err(Denial::Address {
            table: Table::HoldingRegisters,
            access: Access::Write,
            start: 19,
            quantity: 2
        })
    );
    // Coils may be read but not written.
    let c = Request::WriteMultipleCoils(CoilWrite::new(0, Bits::from_bools(&[true])).unwrap());
    assert!(matches!(p.check("operator", u, &c), Err(Denial::Address { .. })));
    // Read/write needs both spans.
    let rw = Request::ReadWriteMultipleRegisters(ReadWriteRegisters {
        read: RegisterRange::new(0, 5).unwrap(),
        write: RegisterWrite::new(50, Words::from_slice(&values)).unwrap(),
    });
    assert!(matches!(
        p.check("operator", u, &rw),
        Err(Denial::Address {
            access: Access::Write,
            ..
        })
    ));
    // Diagnostics are a class of their own.
    let d = Request::ReportServerId;
    let denial = p.check("operator", u, &d).unwrap_err();
    assert_eq!(
        denial,
        Denial::Function {
            function: FunctionCode::ReportServerId,
            class: FunctionClass::Diagnostics
        }
    );
    assert_eq!(denial.exception_code(), ExceptionCode::IllegalFunction);
}

#[test]
fn span_edges() {
    let s = Span::new(65530, 65535).unwrap();
    assert!(s.covers(65530, 6));
    assert!(!s.covers(65529, 2));
    assert!(Span::ALL.covers(0, 2000));
    assert!(Span::new(5, 4).is_err());
}

#[test]
fn spans_report_their_bounds() {
    let s = Span::new(40, 1234).unwrap();
    assert_eq!((s.first(), s.last()), (40, 1234));
    assert_eq!((Span::ALL.first(), Span::ALL.last()), (0, 0xFFFF));
    let one = Span::new(7, 7).unwrap();
    assert_eq!((one.first(), one.last()), (7, 7));
}

#[test]
fn unit_sets_collect_what_they_are_given() {
    let set: UnitSet = [UnitId(0), UnitId(5), UnitId(64), UnitId(255)].into_iter().collect();
    assert_eq!(
        set.iter().collect::<Vec<_>>(),
        [UnitId(0), UnitId(5), UnitId(64), UnitId(255)]
    );
    assert!(!set.contains(UnitId(1)));
    let classes: FunctionClasses = [FunctionClass::Write, FunctionClass::Custom].into_iter().collect();
    assert_eq!(
        classes.iter().collect::<Vec<_>>(),
        [FunctionClass::Write, FunctionClass::Custom]
    );
}

#[test]
fn roles_are_looked_up_replaced_and_removed() {
    let mut p = operator();
    let rules = p.role("operator").expect("the role is there").clone();
    assert!(rules.units.contains(UnitId(1)));
    assert!(rules.functions.contains(FunctionClass::Write));
    assert_eq!(p.role("viewer"), None);

    let mut viewer = RoleRules::default();
    viewer.units.insert(UnitId(9));
    p.insert("viewer", viewer.clone());
    assert_eq!(p.role("viewer"), Some(&viewer));
    assert_eq!(p.roles().collect::<Vec<_>>(), ["operator", "viewer"]);

    assert_eq!(p.remove("operator"), Some(rules));
    assert_eq!(p.remove("operator"), None);
    assert_eq!(p.role("operator"), None);
    let req = Request::ReadHoldingRegisters(RegisterRange::new(0, 1).unwrap());
    assert_eq!(
        p.check("operator", UnitId(1), &req),
        Err(Denial::UnknownRole {
            role: "operator".into()
        })
    );
}
