//! What a scan group polls, and how often.

use std::time::Duration;

use outpost_modbus_core::scan::{Coalesce, Deadband, Point};
use outpost_modbus_core::UnitId;

/// A named value to poll, with the deadband its reports keep.
#[derive(Debug, Clone, PartialEq)]
pub struct PointSpec {
    /// Its name (unique within its group, as subscribers see it).
    pub name: String,
    /// Where it is and how it is encoded.
    pub point: Point,
    /// How far a number must move before it is reported again (0: any change).
    pub deadband: Deadband,
}

impl PointSpec {
    /// A point reported on every change.
    pub fn new(name: impl Into<String>, point: Point) -> Self {
        PointSpec {
            name: name.into(),
            point,
            deadband: Deadband::default(),
        }
    }

    /// Sets its deadband.
    pub fn deadband(mut self, deadband: Deadband) -> Self {
        self.deadband = deadband;
        self
    }
}

/// Points of one unit polled together at one interval.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    /// Its name.
    pub name: String,
    /// The unit its points are read from.
    pub unit: UnitId,
    /// How often it is polled (at least 1 ms).
    pub interval: Duration,
    /// Every point is reported at least this often, changed or not (an
    /// integrity snapshot; 10 minutes by default).
    pub integrity: Duration,
    /// How its reads are joined.
    pub coalesce: Coalesce,
    /// Its points.
    pub points: Vec<PointSpec>,
}

impl GroupSpec {
    /// An empty group polled every `interval`.
    pub fn new(name: impl Into<String>, unit: UnitId, interval: Duration) -> Self {
        GroupSpec {
            name: name.into(),
            unit,
            interval: interval.max(Duration::from_millis(1)),
            integrity: Duration::from_secs(600),
            coalesce: Coalesce::default(),
            points: Vec::new(),
        }
    }

    /// Adds a point.
    pub fn point(mut self, point: PointSpec) -> Self {
        self.points.push(point);
        self
    }

    /// Sets how often every point is reported, changed or not.
    pub fn integrity(mut self, every: Duration) -> Self {
        self.integrity = every;
        self
    }

    /// Sets how its reads are joined.
    pub fn coalesce(mut self, coalesce: Coalesce) -> Self {
        self.coalesce = coalesce;
        self
    }
}
