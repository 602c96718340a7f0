//! Where a single node keeps its registered systems and their settings across restarts: one
//! [redb](https://docs.rs/redb) file, `systems.redb`, under `--data-dir`.
//!
//! redb over SQLite: the data is a handful of keyed records, redb is pure Rust (no C build in
//! every CI run), its commits are durable when they return, it checks its pages on open, and it
//! locks its file so that a second process cannot open it. Each record is the system's
//! [`SystemSettings`] as JSON, so the format reads the same in Redis (cluster mode) and here.
//!
//! Owned by the registry actor, which writes a change before it answers it (see
//! `actors::registry`); `--ephemeral` (and the library's default) keeps nothing on disk.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::settings::SystemSettings;

/// systemId → settings (JSON).
const SYSTEMS: TableDefinition<&str, &str> = TableDefinition::new("systems");

/// The store's file inside the data directory.
pub const STORE_FILE: &str = "systems.redb";

/// Why the store cannot be used; each message names the file.
#[derive(Debug, derive_more::Display)]
pub enum StoreError {
    #[display(
        "the data directory {} is in use by another wshub process (its store {} is locked); give \
         each process its own --data-dir, or --ephemeral",
        _0.display(),
        _1.display()
    )]
    InUse(PathBuf, PathBuf),
    #[display("cannot read the system store {}: {_1}; it was not changed (move it away to start empty, or restore a backup)", _0.display())]
    Unreadable(PathBuf, String),
    #[display("could not write to the system store {}: {_1}", _0.display())]
    Write(PathBuf, String),
}

impl std::error::Error for StoreError {}

/// The systems kept across restarts, or nothing (`--ephemeral`).
pub struct SystemStore {
    file: Option<(PathBuf, Database)>,
}

impl SystemStore {
    /// Keeps nothing: systems live as long as the process.
    pub fn ephemeral() -> SystemStore {
        SystemStore { file: None }
    }

    /// Opens (or creates) the store in `dir`, refusing a store that is locked by another
    /// process or cannot be read, and checking that every record in it reads back.
    pub fn open(dir: &Path) -> Result<SystemStore, StoreError> {
        let path = dir.join(STORE_FILE);
        let unreadable = |reason: String| StoreError::Unreadable(path.clone(), reason);
        std::fs::create_dir_all(dir).map_err(|err| {
            unreadable(format!(
                "cannot create the directory {}: {err}",
                dir.display()
            ))
        })?;
        let database = match Database::create(&path) {
            Ok(database) => database,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StoreError::InUse(dir.to_owned(), path))
            }
            Err(err) => return Err(unreadable(err.to_string())),
        };
        let store = SystemStore {
            file: Some((path.clone(), database)),
        };
        store.load()?;
        Ok(store)
    }

    /// The store's file, if it has one.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|(path, _)| path.as_path())
    }

    /// Every system kept, with its settings.
    pub fn load(&self) -> Result<Vec<(String, SystemSettings)>, StoreError> {
        let Some((path, database)) = &self.file else {
            return Ok(Vec::new());
        };
        let unreadable = |reason: String| StoreError::Unreadable(path.clone(), reason);
        let read = database
            .begin_read()
            .map_err(|err| unreadable(err.to_string()))?;
        let table = match read.open_table(SYSTEMS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(err) => return Err(unreadable(err.to_string())),
        };
        let mut systems = Vec::new();
        for entry in table.iter().map_err(|err| unreadable(err.to_string()))? {
            let (key, value) = entry.map_err(|err| unreadable(err.to_string()))?;
            let settings = serde_json::from_str(value.value()).map_err(|err| {
                unreadable(format!(
                    "the record of system '{}' is not valid: {err}",
                    key.value()
                ))
            })?;
            systems.push((key.value().to_owned(), settings));
        }
        Ok(systems)
    }

    /// Writes a system's settings; durable when this returns.
    pub fn put(&self, system_id: &str, settings: &SystemSettings) -> Result<(), StoreError> {
        let json = serde_json::to_string(settings).unwrap_or_default();
        self.write(|table| table.insert(system_id, json.as_str()).map(drop))
    }

    /// Forgets a system; durable when this returns.
    pub fn remove(&self, system_id: &str) -> Result<(), StoreError> {
        self.write(|table| table.remove(system_id).map(drop))
    }

    fn write(
        &self,
        change: impl FnOnce(&mut redb::Table<&str, &str>) -> Result<(), redb::StorageError>,
    ) -> Result<(), StoreError> {
        let Some((path, database)) = &self.file else {
            return Ok(());
        };
        let failed = |reason: String| StoreError::Write(path.clone(), reason);
        // Durability::Immediate is redb's default: the commit returns once the data is synced.
        let write = database
            .begin_write()
            .map_err(|err| failed(err.to_string()))?;
        {
            let mut table = write
                .open_table(SYSTEMS)
                .map_err(|err| failed(err.to_string()))?;
            change(&mut table).map_err(|err| failed(err.to_string()))?;
        }
        write.commit().map_err(|err| failed(err.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wshub-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn systems_survive_reopening_and_removal_is_kept_too() {
        let dir = scratch_dir("reopen");
        {
            let store = SystemStore::open(&dir).unwrap();
            store.put("a", &SystemSettings::new(1)).unwrap();
            store.put("b", &SystemSettings::new(2)).unwrap();
            store.remove("a").unwrap();
        }
        let store = SystemStore::open(&dir).unwrap();
        let systems = store.load().unwrap();
        assert_eq!(systems, vec![("b".to_owned(), SystemSettings::new(2))]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_store_held_open_is_refused_naming_the_directory() {
        let dir = scratch_dir("locked");
        let _held = SystemStore::open(&dir).unwrap();
        let err = SystemStore::open(&dir).err().expect("refused");
        assert!(matches!(err, StoreError::InUse(..)), "{err}");
        assert!(err.to_string().contains(&dir.display().to_string()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_corrupt_store_is_refused_not_reset() {
        let dir = scratch_dir("corrupt");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(STORE_FILE);
        std::fs::write(&path, vec![0xa5; 8192]).unwrap();
        let err = SystemStore::open(&dir).err().expect("refused");
        assert!(matches!(err, StoreError::Unreadable(..)), "{err}");
        assert!(err.to_string().contains(STORE_FILE));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            vec![0xa5; 8192],
            "left as it was"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ephemeral_keeps_nothing() {
        let store = SystemStore::ephemeral();
        store.put("a", &SystemSettings::new(1)).unwrap();
        assert!(store.load().unwrap().is_empty());
        assert!(store.path().is_none());
    }
}
