//! What the scanner reports.

use outpost_modbus_core::scan::Value;
use outpost_modbus_core::ExceptionCode;

/// How much a reported value can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Quality {
    /// Read from the device just now.
    Good,
    /// Not read when its scan was due (the previous scan of its group was
    /// still under way): the value is the last one read.
    Stale,
    /// The device could not be asked or did not answer (connection,
    /// timeout, an answer that was not one): the value is the last one
    /// read.
    CommFailure,
    /// The device answered with this exception: the value is the last one
    /// read.
    DeviceException(ExceptionCode),
}

/// One reported value of one point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// The group's index, in the order the scanner was given them.
    pub group: usize,
    /// The group's sequence number of this sample: 0 for the group's
    /// first, then one more for each.
    pub seq: u64,
    /// The point's index within its group.
    pub point: usize,
    /// When it was read, as the caller gave it (milliseconds since the
    /// Unix epoch, by the agent's clock).
    pub at_ms: u64,
    /// Its quality.
    pub quality: Quality,
    /// The value: the one read, or the last one read when its quality is
    /// not good (none if it was never read).
    pub value: Option<outpost_modbus_core::scan::Value>,
    /// Part of a full report of its group (a first scan, an integrity
    /// snapshot or one asked for) rather than a change.
    pub snapshot: bool,
}

/// What was last reported of a point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Reported {
    pub(crate) value: Option<Value>,
    pub(crate) quality: Quality,
}
