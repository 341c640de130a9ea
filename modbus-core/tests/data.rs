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
