//! The value views: coils and registers read the same whether they were
//! built from native values or decoded from wire bytes.

use outpost_modbus_core::{Bits, Words};
use proptest::collection::vec;
use proptest::prelude::*;

fn pack(values: &[bool]) -> Vec<u8> {
    let mut bytes = vec![0u8; values.len().div_ceil(8)];
    for (i, v) in values.iter().enumerate() {
        if *v {
            bytes[i / 8] |= 1 << (i % 8);
        }
    }
    bytes
}

proptest! {
    /// Both forms of a set of coils hold the same values, in order, and say
    /// so through every accessor.
    #[test]
    fn bits_read_alike_in_both_forms(values in vec(any::<bool>(), 0..40), out_len in 0usize..48) {
        let packed = pack(&values);
        let native = Bits::from_bools(&values);
        let wire = Bits::from_packed(&packed, values.len()).unwrap();
        prop_assert_eq!(native, wire);
        prop_assert_eq!(wire.as_packed(), Some(&packed[..]));
        prop_assert_eq!(native.as_packed(), None);
        for bits in [native, wire] {
            prop_assert_eq!(bits.len(), values.len());
            prop_assert_eq!(bits.is_empty(), values.is_empty());
            prop_assert_eq!(bits.packed_len(), packed.len());
            prop_assert_eq!(bits.get(values.len()), None);
            let mut iter = bits.iter();
            for (i, v) in values.iter().enumerate() {
                prop_assert_eq!(iter.len(), values.len() - i);
                prop_assert_eq!(iter.size_hint(), (values.len() - i, Some(values.len() - i)));
                prop_assert_eq!(bits.get(i), Some(*v));
                prop_assert_eq!(iter.next(), Some(*v));
            }
            prop_assert_eq!(iter.len(), 0);
            prop_assert_eq!(iter.next(), None);
            let mut out = vec![!values.first().copied().unwrap_or(false); out_len];
            let n = bits.copy_to(&mut out);
            prop_assert_eq!(n, values.len().min(out_len));
            prop_assert_eq!(&out[..n], &values[..n]);
        }
    }

    /// Coils differ when a value or the count differs.
    #[test]
    fn bits_differ_by_value_and_by_count(values in vec(any::<bool>(), 1..40), flip in any::<prop::sample::Index>()) {
        let mut other = values.clone();
        let i = flip.index(values.len());
        other[i] = !other[i];
        prop_assert_ne!(Bits::from_bools(&values), Bits::from_bools(&other));
        prop_assert_ne!(Bits::from_bools(&values), Bits::from_bools(&values[..values.len() - 1]));
        // The same packed bytes with one value fewer are another set.
        let packed = pack(&values);
        prop_assert_ne!(
            Bits::from_packed(&packed, values.len()).unwrap(),
            Bits::from_packed(&packed, values.len() - 1).unwrap()
        );
    }

    /// Both forms of a set of registers hold the same values, in order, and
    /// say so through every accessor.
    #[test]
    fn words_read_alike_in_both_forms(values in vec(any::<u16>(), 0..40), out_len in 0usize..48) {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
        let native = Words::from_slice(&values);
        let wire = Words::from_be_bytes(&bytes).unwrap();
        prop_assert_eq!(native, wire);
        prop_assert_eq!(wire.as_be_bytes(), Some(&bytes[..]));
        prop_assert_eq!(native.as_be_bytes(), None);
        for words in [native, wire] {
            prop_assert_eq!(words.len(), values.len());
            prop_assert_eq!(words.is_empty(), values.is_empty());
            prop_assert_eq!(words.get(values.len()), None);
            let mut iter = words.iter();
            for (i, v) in values.iter().enumerate() {
                prop_assert_eq!(iter.size_hint(), (values.len() - i, Some(values.len() - i)));
                prop_assert_eq!(words.get(i), Some(*v));
                prop_assert_eq!(iter.next(), Some(*v));
            }
            prop_assert_eq!(iter.size_hint(), (0, Some(0)));
            let mut out = vec![0xAAAA; out_len];
            let n = words.copy_to(&mut out);
            prop_assert_eq!(n, values.len().min(out_len));
            prop_assert_eq!(&out[..n], &values[..n]);
            prop_assert!(out[n..].iter().all(|v| *v == 0xAAAA));
        }
    }

    /// Registers differ when a value or the count differs.
    #[test]
    fn words_differ_by_value_and_by_count(values in vec(any::<u16>(), 1..40), at in any::<prop::sample::Index>()) {
        let mut other = values.clone();
        let i = at.index(values.len());
        other[i] ^= 1;
        prop_assert_ne!(Words::from_slice(&values), Words::from_slice(&other));
        prop_assert_ne!(Words::from_slice(&values), Words::from_slice(&values[..values.len() - 1]));
    }
}

#[test]
fn a_response_gives_its_bits_or_its_registers() {
    use outpost_modbus_core::Response;
    let values = [true, false, true];
    let bits = Bits::from_bools(&values);
    let words = [1u16, 2];
    let registers = Words::from_slice(&words);
    assert_eq!(Response::ReadCoils(bits).bits(), Some(bits));
    assert_eq!(Response::ReadDiscreteInputs(bits).bits(), Some(bits));
    assert_eq!(Response::ReadHoldingRegisters(registers).bits(), None);
    assert_eq!(Response::ReadCoils(bits).registers(), None);
    for r in [
        Response::ReadHoldingRegisters(registers),
        Response::ReadInputRegisters(registers),
        Response::ReadWriteMultipleRegisters(registers),
        Response::ReadFifoQueue(registers),
    ] {
        assert_eq!(r.registers(), Some(registers));
    }
}

#[test]
fn identification_objects_compare_by_their_objects() {
    use outpost_modbus_core::{DeviceObject, DeviceObjects, Response};
    let vendor = [
        DeviceObject { id: 0, value: b"Acme" },
        DeviceObject { id: 1, value: b"P-1" },
    ];
    let other = [
        DeviceObject { id: 0, value: b"Acme" },
        DeviceObject { id: 1, value: b"P-2" },
    ];
    let objects = DeviceObjects::from_slice(&vendor);
    assert!(!objects.is_empty());
    assert_eq!(objects.len(), 2);
    assert!(DeviceObjects::from_slice(&[]).is_empty());
    assert_ne!(objects, DeviceObjects::from_slice(&other));
    assert_ne!(objects, DeviceObjects::from_slice(&vendor[..1]));
    // Decoded from the wire, the same objects compare equal.
    let wire = [
        0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0x02, 0x00, 0x04, b'A', b'c', b'm', b'e', 0x01, 0x03, b'P', b'-', b'1',
    ];
    let Ok(Response::ReadDeviceIdentification(d)) = Response::decode(&wire) else {
        panic!("not decoded");
    };
    assert_eq!(d.objects, objects);
    assert!(!d.objects.is_empty());
}
