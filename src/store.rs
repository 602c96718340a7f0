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

use std::cell::RefCell;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
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
    file: Option<StoreFile>,
}

/// The open store file.
struct StoreFile {
    path: PathBuf,
    /// `None` only between closing it after a failed write and opening it again.
    database: RefCell<Option<Database>>,
    /// Why the last write failed, until one succeeds. redb refuses every write after an I/O
    /// error until the file is opened again, so the next write reopens it first: a disk that
    /// was full and has room again is written to without a restart.
    failing: RefCell<Option<String>>,
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
        // It holds webhook secrets: only the server's user may read it.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|err| {
                unreadable(format!(
                    "cannot create the directory {}: {err}",
                    dir.display()
                ))
            })?;
        // redb takes an empty file for a new store: a store truncated to nothing (a full disk,
        // a bad copy) would silently start empty.
        if std::fs::metadata(&path).is_ok_and(|meta| meta.len() == 0) {
            return Err(unreadable(
                "the file is empty (0 bytes), not a store".into(),
            ));
        }
        let database = open_database(dir, &path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|err| unreadable(format!("cannot make it private: {err}")))?;
        let store = SystemStore {
            file: Some(StoreFile {
                path: path.clone(),
                database: RefCell::new(Some(database)),
                failing: RefCell::new(None),
            }),
        };
        store.load()?;
        Ok(store)
    }

    /// The store's file, if it has one.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|file| file.path.as_path())
    }

    /// Why writes are failing now, if they are (for `/healthz`).
    pub fn failing(&self) -> Option<String> {
        self.file.as_ref()?.failing.borrow().clone()
    }

    /// Every system kept, with its settings.
    pub fn load(&self) -> Result<Vec<(String, SystemSettings)>, StoreError> {
        let Some(file) = &self.file else {
            return Ok(Vec::new());
        };
        let unreadable = |reason: String| StoreError::Unreadable(file.path.clone(), reason);
        let database = file.database.borrow();
        let database = database
            .as_ref()
            .ok_or_else(|| unreadable("it could not be opened again".into()))?;
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
        let Some(file) = &self.file else {
            return Ok(());
        };
        let result = file.write(change);
        *file.failing.borrow_mut() = result.as_ref().err().map(ToString::to_string);
        if let Err(err) = &result {
            log::error!("{err}");
        }
        result
    }
}

/// Opens (or creates) the redb file, telling a lock held by another process apart.
fn open_database(dir: &Path, path: &Path) -> Result<Database, StoreError> {
    match Database::create(path) {
        Ok(database) => Ok(database),
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
            Err(StoreError::InUse(dir.to_owned(), path.to_owned()))
        }
        Err(err) => Err(StoreError::Unreadable(path.to_owned(), err.to_string())),
    }
}

impl StoreFile {
    fn write(
        &self,
        change: impl FnOnce(&mut redb::Table<&str, &str>) -> Result<(), redb::StorageError>,
    ) -> Result<(), StoreError> {
        let failed = |reason: String| StoreError::Write(self.path.clone(), reason);
        let mut database = self.database.borrow_mut();
        if self.failing.borrow().is_some() {
            // Closed first: the file is locked while open.
            *database = None;
            let dir = self.path.parent().unwrap_or(Path::new("."));
            *database =
                Some(open_database(dir, &self.path).map_err(|err| failed(err.to_string()))?);
        }
        let database = database
            .as_ref()
            .ok_or_else(|| failed("it could not be opened again".into()))?;
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
    fn an_empty_file_is_refused_not_taken_for_a_new_store() {
        let dir = scratch_dir("empty");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(STORE_FILE), b"").unwrap();
        let err = SystemStore::open(&dir).err().expect("refused");
        assert!(err.to_string().contains("empty"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_directory_and_the_file_are_private() {
        let dir = scratch_dir("private").join("data");
        let _store = SystemStore::open(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(STORE_FILE)), 0o600);
        let _ = std::fs::remove_dir_all(dir.parent().unwrap());
    }

    #[test]
    fn ephemeral_keeps_nothing() {
        let store = SystemStore::ephemeral();
        store.put("a", &SystemSettings::new(1)).unwrap();
        assert!(store.load().unwrap().is_empty());
        assert!(store.path().is_none());
    }
}
