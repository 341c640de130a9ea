//! The agent's samples on disk (feature `spool`): a copy of the
//! publisher's buffer in a redb database, so that an agent restarted
//! while the hub was away sends what it had taken before. The publisher
//! stays the authority on what is kept; this file writes down what it
//! decided: samples before they can be sent, what the hub acknowledged,
//! what a full buffer dropped, and the epoch of the sequence numbers.

use std::path::{Path, PathBuf};

use outpost_acquisition::message::{Message, Samples};
use outpost_acquisition::{Publisher, Sample};

use super::acquire::Restored;
use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, TableDefinition};
use tracing::{info, warn};

/// `epoch` and `groups` (the births the samples belong to).
const META: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("meta");
/// Per group: the last sequence number the hub acknowledged.
const ACKED: TableDefinition<'static, u16, u64> = TableDefinition::new("acked");
/// (group, sequence number) -> the sample, as a one-sample message.
const SAMPLES: TableDefinition<'static, (u16, u64), &[u8]> = TableDefinition::new("samples");

/// Why the spool could not be used.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
#[error("spool {path}: {error}")]
pub struct SpoolError {
    path: PathBuf,
    error: String,
    in_use: bool,
}

impl SpoolError {
    /// Whether another open spool holds the file: another agent (in this
    /// process or another) configured with the same path, or an agent of
    /// this process dropped a moment ago whose last write is still under
    /// way ([`RunningAgent::stop`](super::RunningAgent::stop) returns only
    /// once its spool is closed).
    pub fn is_in_use(&self) -> bool {
        self.in_use
    }
}

/// Resolves once a spool's database is closed and its file free for
/// another agent.
pub(crate) type Closed = tokio::sync::oneshot::Receiver<()>;

/// The spool, open.
#[derive(Debug)]
pub(crate) struct Spool {
    db: Database,
    path: PathBuf,
    /// Dropped after the database (fields drop in order): tells the
    /// receiver of [`Spool::watch_close`] that the file is free.
    closed: Option<tokio::sync::oneshot::Sender<()>>,
}

/// What one write puts down.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// New samples.
    pub(crate) add: Vec<Sample>,
    /// Per group: acknowledged up to here (samples up to it go).
    pub(crate) acked: Vec<(u16, u64)>,
    /// Per group: samples before this one were dropped (none: all were).
    pub(crate) kept_from: Vec<(u16, Option<u64>)>,
}

impl Changes {
    pub(crate) fn is_empty(&self) -> bool {
        self.add.is_empty() && self.acked.is_empty() && self.kept_from.is_empty()
    }
}

/// The births of `publisher`, as bytes: samples belong to them.
fn fingerprint(publisher: &Publisher) -> Vec<u8> {
    let mut bytes = Vec::new();
    for birth in publisher.births() {
        Message::Birth(birth.clone()).encode(&mut bytes);
    }
    bytes
}

fn encode(sample: &Sample) -> Vec<u8> {
    let mut bytes = Vec::new();
    Message::Samples(Samples {
        group: 0,
        epoch: 0,
        samples: vec![*sample],
    })
    .encode(&mut bytes);
    bytes
}

fn decode(group: u16, bytes: &[u8]) -> Option<Sample> {
    match Message::decode(bytes) {
        Ok(Message::Samples(s)) if s.samples.len() == 1 => {
            let mut sample = s.samples[0];
            sample.group = usize::from(group);
            Some(sample)
        }
        _ => None,
    }
}

impl Spool {
    /// Opens (or makes) the spool at `path` for the groups of `blank` (a
    /// publisher of epoch 0, before anything was pushed): what it holds
    /// for the same groups, or a new epoch (`fresh`) when it is new or
    /// its groups were others (their samples are dropped and logged).
    pub(crate) fn open(path: &Path, blank: &Publisher, fresh: u64) -> Result<(Spool, Restored), SpoolError> {
        let fail = |e: &dyn std::fmt::Display| SpoolError {
            path: path.to_path_buf(),
            error: e.to_string(),
            in_use: false,
        };
        let db = Database::create(path).map_err(|e| SpoolError {
            in_use: matches!(e, redb::DatabaseError::DatabaseAlreadyOpen),
            ..fail(&e)
        })?;
        let spool = Spool {
            db,
            path: path.to_path_buf(),
            closed: None,
        };
        let groups = fingerprint(blank);
        let restored = spool.restore(&groups).map_err(|e| fail(&e))?;
        let restored = match restored {
            Some(restored) => restored,
            None => {
                spool.reset(&groups, fresh).map_err(|e| fail(&e))?;
                Restored {
                    epoch: fresh,
                    acked: Vec::new(),
                    samples: Vec::new(),
                }
            }
        };
        Ok((spool, restored))
    }

    /// What the spool holds for `groups`, if it holds them.
    // redb's error is large; it is rare and at once made a SpoolError.
    #[allow(clippy::result_large_err)]
    fn restore(&self, groups: &[u8]) -> Result<Option<Restored>, redb::Error> {
        let read = self.db.begin_read()?;
        let meta = match read.open_table(META) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let epoch = meta
            .get("epoch")?
            .and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
            .map(u64::from_be_bytes);
        let same = meta.get("groups")?.is_some_and(|v| v.value() == groups);
        let Some(epoch) = epoch else { return Ok(None) };
        let samples_table = read.open_table(SAMPLES)?;
        if !same {
            let dropped = samples_table.len()?;
            if dropped > 0 {
                warn!(path = %self.path.display(), dropped, "the scan groups changed: the spool's samples of the old ones were dropped");
            }
            return Ok(None);
        }
        let acked_table = read.open_table(ACKED)?;
        let mut acked = Vec::new();
        for entry in acked_table.iter()? {
            let (group, upto) = entry?;
            let group = usize::from(group.value());
            if acked.len() <= group {
                acked.resize(group + 1, None);
            }
            acked[group] = Some(upto.value());
        }
        let mut samples = Vec::new();
        let mut unreadable = 0u64;
        for entry in samples_table.iter()? {
            let (key, value) = entry?;
            let (group, _) = key.value();
            match decode(group, value.value()) {
                Some(sample) => samples.push(sample),
                None => unreadable += 1,
            }
        }
        if unreadable > 0 {
            warn!(path = %self.path.display(), unreadable, "samples in the spool could not be read; dropped");
        }
        // Oldest first across groups, as they were taken.
        samples.sort_by_key(|s| (s.at_ms, s.group, s.seq));
        info!(path = %self.path.display(), epoch, samples = samples.len(), "samples kept from the last run");
        Ok(Some(Restored { epoch, acked, samples }))
    }

    /// Starts the spool over for `groups` under `epoch`.
    // redb's error is large; it is rare and at once made a SpoolError.
    #[allow(clippy::result_large_err)]
    fn reset(&self, groups: &[u8], epoch: u64) -> Result<(), redb::Error> {
        let write = self.db.begin_write()?;
        write.delete_table(SAMPLES)?;
        write.delete_table(ACKED)?;
        {
            let mut meta = write.open_table(META)?;
            meta.insert("groups", groups)?;
            meta.insert("epoch", &epoch.to_be_bytes()[..])?;
            write.open_table(SAMPLES)?;
            write.open_table(ACKED)?;
        }
        write.commit()?;
        Ok(())
    }

    /// Puts `changes` down; returns once they are on disk.
    pub(crate) fn write(&self, changes: &Changes) -> Result<(), SpoolError> {
        self.try_write(changes).map_err(|e| SpoolError {
            path: self.path.clone(),
            error: e.to_string(),
            in_use: false,
        })
    }

    /// What resolves once this spool is closed (dropped with its last
    /// reference); a later call replaces the earlier receiver's sender.
    pub(crate) fn watch_close(&mut self) -> Closed {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.closed = Some(tx);
        rx
    }

    // redb's error is large; it is rare and at once made a SpoolError.
    #[allow(clippy::result_large_err)]
    fn try_write(&self, changes: &Changes) -> Result<(), redb::Error> {
        let mut write = self.db.begin_write()?;
        // New samples must be on disk before they are sent; what goes
        // may wait for the next write that puts samples down (if it is
        // lost, the hub drops what comes twice by sequence number).
        write.set_durability(if changes.add.is_empty() {
            Durability::None
        } else {
            Durability::Immediate
        });
        {
            let mut samples = write.open_table(SAMPLES)?;
            let mut acked = write.open_table(ACKED)?;
            for sample in &changes.add {
                let group = u16::try_from(sample.group).unwrap_or(u16::MAX);
                samples.insert((group, sample.seq), &encode(sample)[..])?;
            }
            for &(group, upto) in &changes.acked {
                acked.insert(group, upto)?;
                samples.retain_in((group, 0)..=(group, upto), |_, _| false)?;
            }
            for &(group, kept) in &changes.kept_from {
                match kept {
                    Some(0) => {}
                    Some(first) => samples.retain_in((group, 0)..(group, first), |_, _| false)?,
                    None => samples.retain_in((group, 0)..=(group, u64::MAX), |_, _| false)?,
                }
            }
        }
        write.commit()?;
        Ok(())
    }
}
