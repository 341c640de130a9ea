//! Compact serde forms: a span is `[first, last]`, a unit set a list of
//! ids and the string "all" (1..=255: the broadcast address 0 only when
//! listed), a class set a list of class names.

use super::{FunctionClasses, Span, UnitSet};
use crate::function::FunctionClass;
use crate::types::UnitId;
use alloc::vec::Vec;
use serde::de::{Error, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        [self.first, self.last].serialize(s)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let [first, last] = <[u16; 2]>::deserialize(d)?;
        Span::new(first, last).map_err(D::Error::custom)
    }
}

impl Serialize for UnitSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(|u| u.0))
    }
}

impl<'de> Deserialize<'de> for UnitSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Units(UnitSet::none()))
    }
}

/// Reads a unit set: `"all"`, or a list of ids and `"all"`.
struct Units(UnitSet);

impl<'de> Visitor<'de> for Units {
    type Value = UnitSet;
    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("a list of unit ids 0..=255, \"all\" (1..=255), or both")
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<UnitSet, E> {
        let mut set = self.0;
        match v {
            "all" => {
                for u in UnitSet::all_but_broadcast().iter() {
                    set.insert(u);
                }
                Ok(set)
            }
            other => Err(E::custom(alloc::format!(
                "unknown unit set {other:?}: write \"all\" (units 1 to 255) or list the ids"
            ))),
        }
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<UnitSet, E> {
        let id = u8::try_from(v).map_err(|_| E::custom(alloc::format!("unit id {v} is not in 0..=255")))?;
        let mut set = self.0;
        set.insert(UnitId(id));
        Ok(set)
    }
    fn visit_i64<E: Error>(self, v: i64) -> Result<UnitSet, E> {
        let v = u64::try_from(v).map_err(|_| E::custom(alloc::format!("unit id {v} is not in 0..=255")))?;
        self.visit_u64(v)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UnitSet, A::Error> {
        let mut set = self.0;
        while let Some(item) = seq.next_element::<UnitItem>()? {
            for u in item.0.iter() {
                set.insert(u);
            }
        }
        Ok(set)
    }
}

/// One element of a unit list, read into a set of its own.
struct UnitItem(UnitSet);

impl<'de> Deserialize<'de> for UnitItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Units(UnitSet::none())).map(UnitItem)
    }
}

impl Serialize for FunctionClasses {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for FunctionClasses {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let classes = Vec::<FunctionClass>::deserialize(d)?;
        if classes.contains(&FunctionClass::Custom) {
            return Err(D::Error::custom(
                "the class \"custom\" grants nothing: list user function codes in \
                 custom_functions = [65, 66] and encapsulated interface types in mei_types = [13]",
            ));
        }
        Ok(classes.into_iter().collect())
    }
}
