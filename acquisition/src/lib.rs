//! Sans-IO data acquisition from Modbus devices: the agent-side state
//! machine that polls scan groups and reports by exception.
//!
//! A [`Scanner`] holds scan groups ([`GroupSpec`]: a unit, an interval, and
//! points with their encodings and deadbands). It plans each group's reads
//! once (the fewest requests within the Modbus quantity limits, see
//! [`outpost_modbus_core::scan`]), says which read to send next within the
//! device's in-flight limit ([`Scanner::poll_read`]) and when to call back
//! ([`Scanner::poll_timeout`]), takes the answers ([`Scanner::handle_answer`])
//! and gives out the samples worth reporting ([`Scanner::poll_sample`]): a
//! value that moved past its deadband or changed quality, and every point
//! of a group on its first scan, at least once per integrity interval, and
//! when a snapshot is asked for. Each sample carries its source timestamp,
//! a [`Quality`] and a per-group sequence number. Time comes in as
//! arguments; nothing here does IO.
//!
//! Samples travel to the hub as [`message`]s over a channel the agent
//! opens. The agent's [`Publisher`] keeps them, bounded in bytes, until
//! the hub acknowledges them: each group's birth (its points) goes first
//! on every connection, then every sample not acknowledged, in order. The
//! hub's [`Subscriber`] keeps the latest sample of every point,
//! acknowledges what arrived, drops what comes twice, and asks for a
//! rebirth when a birth comes unasked (a new session) or the sequence
//! skips (samples were lost).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use outpost_acquisition::{Answer, GroupSpec, PointSpec, Quality, Scanner};
//! use outpost_modbus_core::access::Table;
//! use outpost_modbus_core::scan::{Deadband, Encoding, Point, Value};
//! use outpost_modbus_core::UnitId;
//!
//! let start = Instant::now();
//! let group = GroupSpec::new("boiler", UnitId(1), Duration::from_secs(1))
//!     .point(PointSpec::new("temperature", Point::new(Table::InputRegisters, 0, Encoding::I16)?).deadband(Deadband::new(2.0)))
//!     .point(PointSpec::new("pressure", Point::new(Table::InputRegisters, 1, Encoding::U16)?));
//! let mut scanner = Scanner::new(vec![group], 1, start);
//!
//! // Due now: one read of input registers 0..=1.
//! let read = scanner.poll_read(start, 1_700_000_000_000).unwrap();
//! assert_eq!((read.table, read.start, read.quantity), (Table::InputRegisters, 0, 2));
//! scanner.handle_answer(1_700_000_000_000, read.token, Answer::Registers(&[215, 1013]));
//! // The first scan reports every point.
//! let sample = scanner.poll_sample().unwrap();
//! assert_eq!((sample.point, sample.seq, sample.quality, sample.value), (0, 0, Quality::Good, Some(Value::I16(215))));
//! assert_eq!(scanner.poll_sample().unwrap().value, Some(Value::U16(1013)));
//!
//! // A second later: the temperature moved less than its deadband.
//! let later = start + Duration::from_secs(1);
//! let read = scanner.poll_read(later, 1_700_000_001_000).unwrap();
//! scanner.handle_answer(1_700_000_001_000, read.token, Answer::Registers(&[216, 1014]));
//! let sample = scanner.poll_sample().unwrap();
//! assert_eq!((sample.point, sample.seq, sample.value), (1, 2, Some(Value::U16(1014))));
//! assert!(scanner.poll_sample().is_none());
//! # Ok::<(), outpost_modbus_core::scan::PointError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cache;
mod group;
pub mod message;
mod publisher;
mod sample;
mod scanner;
mod subscriber;

pub use group::{GroupError, GroupSpec, PointSpec};
pub use publisher::{Publisher, DEFAULT_WINDOW};
pub use sample::{Quality, Sample};
pub use scanner::{Answer, ReadOrder, Scanner, Token};
pub use subscriber::{GroupState, Subscriber, Update, DEFAULT_MAX_GROUPS, DEFAULT_MAX_POINTS};
