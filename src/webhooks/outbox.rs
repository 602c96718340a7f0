//! The webhook outbox of a single node: every event, once handed to the delivery thread, is
//! written to `events.redb` under `--data-dir` before it counts as queued, and removed once its
//! batch is acknowledged (or given up, or dropped by the queue's bound). After a SIGTERM or a
//! crash the next start delivers what is there, in order, with the same ids and fields.
//!
//! Writes are grouped: the delivery thread commits whatever arrived while the previous commit
//! ran, in one durable transaction, so a burst costs one sync, not one per event; a `kill -9`
//! loses at most the events that arrived during the last commit (see socket.md). A store that
//! cannot be written (full disk, I/O error) is reported (`/healthz`, the log); the events that
//! could not be written are dropped, counted, and the next write opens the file again.
//!
//! Owned by the delivery thread. `--ephemeral` (and cluster mode, for now) keeps the outbox in
//! memory: [`Outbox::memory`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::actors::outward::BackendEvent;
use crate::settings::{EventName, WebhookSettings};
use crate::store::StoreError;

/// Sequence number → a [`Stored`] event (JSON). Sequence numbers only grow, so the table's order
/// is the order events happened in.
const EVENTS: TableDefinition<u64, &str> = TableDefinition::new("events");

/// The outbox's file inside the data directory.
pub const OUTBOX_FILE: &str = "events.redb";

/// One event as kept: what delivering it needs, whatever happened to its system since.
#[derive(Serialize, Deserialize)]
pub(super) struct Stored {
    pub(super) system: String,
    pub(super) registration: u64,
    pub(super) target: WebhookSettings,
    pub(super) name: EventName,
    /// Unix milliseconds when it was stored.
    pub(super) stored_at: u64,
    pub(super) event: Box<RawValue>,
}

impl Stored {
    pub(super) fn event(&self) -> BackendEvent {
        BackendEvent::from_raw(self.name, self.event.clone())
    }
}

/// Why writes fail now, shared with `/healthz`. `None` while they succeed.
pub type OutboxHealth = Arc<Mutex<Option<String>>>;

/// Where pending events are kept.
pub struct Outbox {
    file: Option<OutboxFile>,
    health: OutboxHealth,
}

struct OutboxFile {
    path: PathBuf,
    /// `None` only after a failed write, until the next one opens the file again.
    database: Option<Database>,
}

impl Outbox {
    /// Keeps nothing on disk.
    pub fn memory() -> Outbox {
        Outbox {
            file: None,
            health: OutboxHealth::default(),
        }
    }

    /// Opens (or creates) the outbox in `dir` (which the system store has made, private).
    pub fn open(dir: &Path) -> Result<Outbox, StoreError> {
        let path = dir.join(OUTBOX_FILE);
        if std::fs::metadata(&path).is_ok_and(|meta| meta.len() == 0) {
            return Err(StoreError::Unreadable(
                path,
                "the file is empty (0 bytes), not an outbox".into(),
            ));
        }
        let database = Database::create(&path)
            .map_err(|err| StoreError::Unreadable(path.clone(), err.to_string()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|err| StoreError::Unreadable(path.clone(), err.to_string()))?;
        let outbox = Outbox {
            file: Some(OutboxFile {
                path,
                database: Some(database),
            }),
            health: OutboxHealth::default(),
        };
        Ok(outbox)
    }

    pub fn health(&self) -> OutboxHealth {
        self.health.clone()
    }

    /// Whether events are kept on disk.
    pub fn is_durable(&self) -> bool {
        self.file.is_some()
    }

    /// Every event kept, in order (a record that does not read back is skipped and logged).
    pub(super) fn load(&self) -> Result<Vec<(u64, Stored)>, StoreError> {
        let Some(file) = &self.file else {
            return Ok(Vec::new());
        };
        let unreadable = |reason: String| StoreError::Unreadable(file.path.clone(), reason);
        let Some(database) = &file.database else {
            return Ok(Vec::new());
        };
        let read = database
            .begin_read()
            .map_err(|err| unreadable(err.to_string()))?;
        let table = match read.open_table(EVENTS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(err) => return Err(unreadable(err.to_string())),
        };
        let mut events = Vec::new();
        for entry in table.iter().map_err(|err| unreadable(err.to_string()))? {
            let (key, value) = entry.map_err(|err| unreadable(err.to_string()))?;
            match serde_json::from_str::<Stored>(value.value()) {
                Ok(stored) => events.push((key.value(), stored)),
                Err(err) => log::error!(
                    "webhook outbox {}: event {} does not read back ({err}); skipped",
                    file.path.display(),
                    key.value()
                ),
            }
        }
        Ok(events)
    }

    /// Writes `added` and removes `removed` in one durable commit. On failure nothing of it is
    /// written, the failure is logged and kept for `/healthz`, and the next commit reopens the
    /// file.
    pub(super) fn commit(&mut self, added: &[(u64, String)], removed: &[u64]) -> bool {
        let Some(file) = &mut self.file else {
            return true;
        };
        let result = file.commit(added, removed);
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(()) => {
                if health.take().is_some() {
                    log::warn!("webhook outbox {} is written again", file.path.display());
                }
                true
            }
            Err(reason) => {
                let message = format!(
                    "could not write the webhook outbox {}: {reason}; events are dropped until \
                     it can be written",
                    file.path.display()
                );
                if health.is_none() {
                    log::error!("{message}");
                }
                *health = Some(message);
                file.database = None;
                false
            }
        }
    }
}

impl OutboxFile {
    fn commit(&mut self, added: &[(u64, String)], removed: &[u64]) -> Result<(), String> {
        if self.database.is_none() {
            self.database = Some(Database::create(&self.path).map_err(|err| err.to_string())?);
        }
        let database = self.database.as_ref().ok_or("not open")?;
        let write = database.begin_write().map_err(|err| err.to_string())?;
        {
            let mut table = write.open_table(EVENTS).map_err(|err| err.to_string())?;
            for (seq, json) in added {
                table
                    .insert(seq, json.as_str())
                    .map_err(|err| err.to_string())?;
            }
            for seq in removed {
                table.remove(seq).map_err(|err| err.to_string())?;
            }
        }
        write.commit().map_err(|err| err.to_string())
    }
}
