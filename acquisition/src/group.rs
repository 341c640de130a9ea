//! What a scan group polls, and how often.

use std::time::Duration;

use outpost_modbus_core::scan::{Coalesce, Deadband, Point};
use outpost_modbus_core::UnitId;

use crate::message::{MAX_NAME_LEN, MAX_POINTS};

/// Why a group cannot be published as it is. The configuration's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// A name is empty or longer than [`MAX_NAME_LEN`] bytes.
    #[error("the {what} {name:?} must be 1 to {MAX_NAME_LEN} bytes long")]
    Name {
        /// Which name.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// The group has no point, or more than [`MAX_POINTS`].
    #[error("group {group:?} has {count} points (1 to {MAX_POINTS})")]
    Points {
        /// The group.
        group: String,
        /// Its points.
        count: usize,
    },
    /// Two points of the group have the same name.
    #[error("group {group:?} has two points named {point:?}")]
    DuplicatePoint {
        /// The group.
        group: String,
        /// The name.
        point: String,
    },
}

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
    /// The device its points are read from, by name (empty until set; a
    /// scanner polls one device, the publisher names it in births).
    pub device: String,
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
            device: String::new(),
            unit,
            interval: interval.max(Duration::from_millis(1)),
            integrity: Duration::from_secs(600),
            coalesce: Coalesce::default(),
            points: Vec::new(),
        }
    }

    /// Names the device its points are read from.
    pub fn device(mut self, device: impl Into<String>) -> Self {
        self.device = device.into();
        self
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

    /// Checks what its birth must carry: names of 1 to [`MAX_NAME_LEN`]
    /// bytes (the device's may be empty), 1 to [`MAX_POINTS`] points,
    /// no two of the same name.
    pub fn check(&self) -> Result<(), GroupError> {
        let name = |what, name: &str, empty_ok: bool| {
            if name.len() > MAX_NAME_LEN || (name.is_empty() && !empty_ok) {
                Err(GroupError::Name {
                    what,
                    name: name.to_owned(),
                })
            } else {
                Ok(())
            }
        };
        name("group name", &self.name, false)?;
        name("device name", &self.device, true)?;
        if self.points.is_empty() || self.points.len() > MAX_POINTS {
            return Err(GroupError::Points {
                group: self.name.clone(),
                count: self.points.len(),
            });
        }
        let mut seen = std::collections::HashSet::new();
        for point in &self.points {
            name("point name", &point.name, false)?;
            if !seen.insert(point.name.as_str()) {
                return Err(GroupError::DuplicatePoint {
                    group: self.name.clone(),
                    point: point.name.clone(),
                });
            }
        }
        Ok(())
    }
}
