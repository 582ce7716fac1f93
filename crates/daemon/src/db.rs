//! The daemon's state: one SQLite database (WAL) holding every container's config,
//! state, exit code, restart count and timestamps. Every change is committed before the
//! API answers, so a `kill -9` of the daemon loses nothing it acknowledged.

use crate::DaemonError;
use crate::lifecycle::State;
use crate::types::CreateRequest;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::Mutex;

/// The schema version this daemon writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

/// One container's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 64 hex digits.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// What it was created from.
    pub config: CreateRequest,
    /// Lifecycle state.
    pub state: State,
    /// Exit code of the last run.
    pub exit_code: Option<i32>,
    /// What ended the last run, or why it could not start.
    pub error: Option<String>,
    /// Restarts made by the restart policy.
    pub restart_count: u32,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// RFC 3339 start of the current or last run.
    pub started_at: Option<String>,
    /// RFC 3339 end of the last run.
    pub finished_at: Option<String>,
    /// Whether an operator stopped or killed it (restart policies leave it alone).
    pub stopped_by_operator: bool,
}

/// The open database.
pub struct Db {
    conn: Mutex<Connection>,
}

impl Db {
    /// Opens (creating if needed) the database at `path` in WAL mode.
    pub fn open(path: &Path) -> Result<Db, DaemonError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // In WAL mode NORMAL is durable against a crash of this process (only a power
        // loss can drop the last commits).
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(DaemonError::Internal(format!(
                "state database `{}` has schema version {version}, newer than this wedged ({SCHEMA_VERSION})",
                path.display()
            )));
        }
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS containers (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                config TEXT NOT NULL,
                state TEXT NOT NULL,
                exit_code INTEGER,
                error TEXT,
                restart_count INTEGER NOT NULL DEFAULT 0,
                created_at TEXT NOT NULL,
                started_at TEXT,
                finished_at TEXT,
                stopped_by_operator INTEGER NOT NULL DEFAULT 0
            );
            PRAGMA user_version = 1;",
        )?;
        Ok(Db {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a container; a taken name is [`DaemonError::Conflict`].
    pub fn insert(&self, r: &Record) -> Result<(), DaemonError> {
        let config =
            serde_json::to_string(&r.config).map_err(|e| DaemonError::Internal(e.to_string()))?;
        let result = self.conn().execute(
            "INSERT INTO containers (id, name, config, state, exit_code, error, restart_count,
                created_at, started_at, finished_at, stopped_by_operator)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                r.id,
                r.name,
                config,
                r.state.as_str(),
                r.exit_code,
                r.error,
                r.restart_count,
                r.created_at,
                r.started_at,
                r.finished_at,
                r.stopped_by_operator
            ],
        );
        match result {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(DaemonError::Conflict(format!(
                    "the container name `{}` is already in use",
                    r.name
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Saves a container's state fields.
    pub fn update(&self, r: &Record) -> Result<(), DaemonError> {
        self.conn().execute(
            "UPDATE containers SET state = ?2, exit_code = ?3, error = ?4, restart_count = ?5,
                started_at = ?6, finished_at = ?7, stopped_by_operator = ?8 WHERE id = ?1",
            params![
                r.id,
                r.state.as_str(),
                r.exit_code,
                r.error,
                r.restart_count,
                r.started_at,
                r.finished_at,
                r.stopped_by_operator
            ],
        )?;
        Ok(())
    }

    /// Marks an unreadable row dead, with `error`, leaving its other columns as they
    /// are (for the version that wrote them).
    pub fn mark_dead(&self, id: &str, error: &str) -> Result<(), DaemonError> {
        self.conn().execute(
            "UPDATE containers SET state = 'dead', error = ?2 WHERE id = ?1",
            params![id, error],
        )?;
        Ok(())
    }

    /// Removes a container's row.
    pub fn delete(&self, id: &str) -> Result<(), DaemonError> {
        self.conn()
            .execute("DELETE FROM containers WHERE id = ?1", params![id])?;
        Ok(())
    }

    /// One container by id.
    pub fn get(&self, id: &str) -> Result<Option<Record>, DaemonError> {
        self.conn()
            .query_row(
                &format!("{SELECT} WHERE id = ?1"),
                params![id],
                row_to_record,
            )
            .optional()?
            .transpose()
    }

    /// Every container, oldest first: the rows this daemon can read, and those it
    /// cannot (written by another version, or damaged), with what could be made out.
    pub fn all(&self) -> Result<(Vec<Record>, Vec<Unreadable>), DaemonError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY created_at, rowid"))?;
        let mut rows = stmt.query([])?;
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        while let Some(row) = rows.next()? {
            match row_to_record(row) {
                Ok(Ok(record)) => good.push(record),
                Ok(Err(e)) => bad.push(Unreadable::salvage(row, e.to_string())),
                Err(e) => bad.push(Unreadable::salvage(row, format!("unreadable row: {e}"))),
            }
        }
        Ok((good, bad))
    }
}

/// A row this daemon cannot read, with what could be made out of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    /// The `id` column as text, when it is one.
    pub id: Option<String>,
    /// The `name` column, when it is text.
    pub name: Option<String>,
    /// The config's `image`, when the config is JSON with one.
    pub image: Option<String>,
    /// The `created_at` column, when it is text.
    pub created_at: Option<String>,
    /// Why it cannot be read.
    pub error: String,
}

impl Unreadable {
    fn salvage(row: &rusqlite::Row<'_>, error: String) -> Unreadable {
        let text = |i: usize| match row.get_ref(i) {
            Ok(rusqlite::types::ValueRef::Text(t)) => Some(String::from_utf8_lossy(t).into_owned()),
            _ => None,
        };
        let image = text(2)
            .and_then(|c| serde_json::from_str::<serde_json::Value>(&c).ok())
            .and_then(|c| c.get("image")?.as_str().map(String::from));
        Unreadable {
            id: text(0),
            name: text(1),
            image,
            created_at: text(7),
            error,
        }
    }
}

const SELECT: &str = "SELECT id, name, config, state, exit_code, error, restart_count,
    created_at, started_at, finished_at, stopped_by_operator FROM containers";

/// A row as a record; a row this daemon cannot read (bad JSON, unknown state) is an
/// inner error rather than a failed query.
fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Record, DaemonError>> {
    let id: String = row.get(0)?;
    let config: String = row.get(2)?;
    let state: String = row.get(3)?;
    let corrupt = |what: String| {
        DaemonError::Internal(format!("container `{id}` in the state database: {what}"))
    };
    let config = match serde_json::from_str(&config) {
        Ok(c) => c,
        Err(e) => return Ok(Err(corrupt(format!("unreadable config: {e}")))),
    };
    let Some(state) = State::parse(&state) else {
        return Ok(Err(corrupt(format!("unknown state `{state}`"))));
    };
    Ok(Ok(Record {
        name: row.get(1)?,
        config,
        state,
        exit_code: row.get(4)?,
        error: row.get(5)?,
        restart_count: row.get(6)?,
        created_at: row.get(7)?,
        started_at: row.get(8)?,
        finished_at: row.get(9)?,
        stopped_by_operator: row.get(10)?,
        id,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, name: &str) -> Record {
        Record {
            id: id.into(),
            name: name.into(),
            config: CreateRequest {
                image: "hello.wasm".into(),
                ..CreateRequest::default()
            },
            state: State::Created,
            exit_code: None,
            error: None,
            restart_count: 0,
            created_at: "2026-01-01T00:00:00Z".into(),
            started_at: None,
            finished_at: None,
            stopped_by_operator: false,
        }
    }

    #[test]
    fn round_trip_and_unique_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let db = Db::open(&path).unwrap();
        let mut a = record("a1", "alpha");
        db.insert(&a).unwrap();
        let err = db.insert(&record("b2", "alpha")).unwrap_err();
        assert_eq!(err.status(), 409);
        a.state = State::Exited;
        a.exit_code = Some(3);
        a.restart_count = 2;
        db.update(&a).unwrap();
        drop(db);
        let db = Db::open(&path).unwrap();
        assert_eq!(db.all().unwrap(), (vec![a.clone()], vec![]));
        assert_eq!(db.get("a1").unwrap(), Some(a));
        db.delete("a1").unwrap();
        assert!(db.all().unwrap().0.is_empty());
    }

    #[test]
    fn rows_from_another_version_are_set_apart() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("db")).unwrap();
        db.insert(&record("a1", "alpha")).unwrap();
        db.conn()
            .execute_batch(
                "INSERT INTO containers (id, name, config, state, created_at)
                 VALUES ('b2', 'beta', '{\"image\":\"x.wasm\",\"new_field\":1}', 'created', 'z');
                 INSERT INTO containers (id, name, config, state, created_at)
                 VALUES ('c3', 'gamma', '{}', 'frozen', 'z');
                 INSERT INTO containers (id, name, config, state, exit_code, created_at)
                 VALUES ('d4', 'delta', '{\"image\":\"y\"}', 'exited', 'oops', 'z');",
            )
            .unwrap();
        let (good, bad) = db.all().unwrap();
        assert_eq!(good, vec![record("a1", "alpha")]);
        let ids: Vec<_> = bad.iter().map(|u| u.id.as_deref().unwrap()).collect();
        assert_eq!(ids, ["b2", "c3", "d4"]);
        assert_eq!(bad[0].image.as_deref(), Some("x.wasm"));
        assert!(bad[0].error.contains("new_field"), "{}", bad[0].error);
        assert!(
            bad[1].error.contains("unknown state `frozen`"),
            "{}",
            bad[1].error
        );
        db.mark_dead("c3", "gone").unwrap();
        assert!(db.get("c3").unwrap().is_none_or(|r| r.state == State::Dead));
    }
}
