//! Report by exception: whether a sample differs enough from what was last
//! reported.

use super::point::Value;

/// How far a numeric value must move from the value last reported before
/// it is reported again (0: any change). Bits are reported on every
/// change. Compared with the last value reported, not the last sampled, so
/// a slow drift is reported once it adds up.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Deadband(f64);

impl Deadband {
    /// A deadband of `width` (its magnitude; not a number counts as 0).
    pub fn new(width: f64) -> Self {
        if width.is_nan() {
            Deadband(0.0)
        } else {
            Deadband(width.abs())
        }
    }

    /// Its width.
    pub fn width(&self) -> f64 {
        self.0
    }

    /// Whether `sampled` is to be reported after `reported` was: a change
    /// of type or of bit, a number beyond the deadband, or a float that
    /// became or stopped being NaN.
    pub fn exceeded(&self, reported: Value, sampled: Value) -> bool {
        match (reported, sampled) {
            (Value::Bool(a), Value::Bool(b)) => a != b,
            (a, b) if core::mem::discriminant(&a) != core::mem::discriminant(&b) => true,
            (a, b) => {
                let (a, b) = (a.as_f64(), b.as_f64());
                match (a.is_nan(), b.is_nan()) {
                    (false, false) => (b - a).abs() > self.0,
                    (a_nan, b_nan) => a_nan != b_nan,
                }
            }
        }
    }
}
