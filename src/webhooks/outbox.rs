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
//! Owned by the delivery thread. In cluster mode the outbox is a Redis stream of the node's
//! ([`super::outbox_redis`]), which another node adopts when this one dies; `--ephemeral` keeps
//! the outbox in memory: [`Outbox::memory`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::actors::outward::BackendEvent;
use crate::settings::{Destination, EventName};
use crate::store::StoreError;

use super::outbox_redis::RedisOutbox;

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
    pub(super) target: Destination,
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
    backing: Backing,
    health: OutboxHealth,
}

enum Backing {
    Memory,
    File(OutboxFile),
    Redis(RedisOutbox),
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
            backing: Backing::Memory,
            health: OutboxHealth::default(),
        }
    }

    /// Keeps pending events in Redis, in node `node_id`'s stream (cluster mode).
    pub fn redis(
        endpoint: std::sync::Arc<crate::redis_endpoint::RedisEndpoint>,
        prefix: &str,
        node_id: &str,
    ) -> Outbox {
        Outbox {
            backing: Backing::Redis(RedisOutbox::new(endpoint, prefix, node_id)),
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
            backing: Backing::File(OutboxFile {
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

    /// Whether events are kept outside this process (on disk, or in Redis).
    pub fn is_durable(&self) -> bool {
        !matches!(self.backing, Backing::Memory)
    }

    /// Every event kept, in order (a record that does not read back is skipped and logged). A
    /// cluster node starts with a stream of its own, empty: what a node left behind is adopted
    /// by the survivor that purges it ([`Outbox::adopt`]).
    pub(super) fn load(&self) -> Result<Vec<(u64, Stored)>, StoreError> {
        let Backing::File(file) = &self.backing else {
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

    /// Writes `added` and removes `removed` in one durable commit (a file's on a blocking
    /// thread, so the caller's thread goes on meanwhile); gives the outbox back with whether it
    /// was written. On failure nothing of it is written, the failure is logged and kept for
    /// `/healthz`, and the next commit opens the file (or connects) again.
    pub(super) async fn commit(
        self,
        added: Vec<(u64, String)>,
        removed: Vec<u64>,
    ) -> (Outbox, bool) {
        let Outbox { backing, health } = self;
        let (backing, result, place) = match backing {
            Backing::Memory => (Backing::Memory, Ok(()), String::new()),
            Backing::Redis(mut redis) => {
                let result = redis.commit(&added, &removed).await;
                let place = redis.describe();
                (Backing::Redis(redis), result, place)
            }
            Backing::File(mut file) => {
                let place = file.path.display().to_string();
                let committed = tokio::task::spawn_blocking(move || {
                    let result = file.commit(&added, &removed);
                    (file, result)
                })
                .await;
                match committed {
                    Ok((file, result)) => (Backing::File(file), result, place),
                    // The file went with the thread: nothing is kept from now on.
                    Err(err) => (Backing::Memory, Err(err.to_string()), place),
                }
            }
        };
        let written = Outbox::note(&health, result, &place);
        (Outbox { backing, health }, written)
    }

    /// Moves up to `count` pending events of dead node `node_id` into this node's outbox,
    /// numbered from `first_seq`; returns how many moved (fewer than `count`: that was all) and
    /// those that read back, with their numbers, in order. Only a cluster's outbox adopts; the
    /// others have nothing to take.
    pub(super) async fn adopt(
        &mut self,
        node_id: &str,
        first_seq: u64,
        count: usize,
    ) -> Result<(usize, Vec<(u64, Stored)>), String> {
        let Backing::Redis(redis) = &mut self.backing else {
            return Ok((0, Vec::new()));
        };
        let moved = redis.adopt(node_id, first_seq, count).await?;
        let mut events = Vec::with_capacity(moved.len());
        for (seq, json) in (first_seq..).zip(&moved) {
            match serde_json::from_str::<Stored>(json) {
                Ok(stored) => events.push((seq, stored)),
                Err(err) => log::error!(
                    "webhook outbox of node {node_id}: an event does not read back ({err}); \
                     skipped"
                ),
            }
        }
        Ok((moved.len(), events))
    }

    /// Keeps the outcome of a write for `/healthz`, logging each change once.
    fn note(health: &OutboxHealth, result: Result<(), String>, place: &str) -> bool {
        let mut health = health.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(()) => {
                if health.take().is_some() {
                    log::warn!("webhook outbox {place} is written again");
                }
                true
            }
            Err(reason) => {
                let message = format!(
                    "could not write the webhook outbox {place}: {reason}; events are dropped \
                     until it can be written"
                );
                if health.is_none() {
                    log::error!("{message}");
                }
                *health = Some(message);
                false
            }
        }
    }
}

impl OutboxFile {
    fn commit(&mut self, added: &[(u64, String)], removed: &[u64]) -> Result<(), String> {
        let result = self.write(added, removed);
        if result.is_err() {
            self.database = None;
        }
        result
    }

    fn write(&mut self, added: &[(u64, String)], removed: &[u64]) -> Result<(), String> {
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
