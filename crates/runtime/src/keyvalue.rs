//! `wasi:keyvalue` (store, atomics, batch) on a SQLite file: one namespace per app, a
//! quota of keys and bytes per namespace, data that outlives the app, the daemon and
//! `kill -9` (WAL, committed before each call returns).

use crate::RuntimeError;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use wasmtime::component::{HasData, Resource, ResourceTable};

#[allow(missing_docs, clippy::all)]
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "wasi:keyvalue/imports",
        imports: { default: trappable },
        with: { "wasi:keyvalue/store.bucket": super::Bucket },
        trappable_error_type: { "wasi:keyvalue/store.error" => super::KvError },
    });
}
use bindings::wasi::keyvalue::{atomics, batch, store};

/// Keys a `list-keys` call returns at most; a cursor gives the rest.
const LIST_PAGE: usize = 256;
/// Longest bucket name a guest may open.
const MAX_BUCKET_NAME: usize = 128;

/// The SQLite file behind `wasi:keyvalue`, shared by every app of a process (a daemon
/// opens it once). Cheap to clone.
#[derive(Clone)]
pub struct KvStore {
    inner: Arc<StoreInner>,
}

struct StoreInner {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for KvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStore")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl KvStore {
    /// Opens (creating it when missing) the store at `path`.
    pub fn open(path: &Path) -> Result<KvStore, RuntimeError> {
        let fail = |e: rusqlite::Error| {
            RuntimeError::Host(format!(
                "cannot open the key-value store `{}`: {e}",
                path.display()
            ))
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                RuntimeError::Host(format!("cannot create `{}`: {e}", dir.display()))
            })?;
        }
        let conn = Connection::open(path).map_err(fail)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS kv (
                 ns TEXT NOT NULL, bucket TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
                 PRIMARY KEY (ns, bucket, key)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS usage (
                 ns TEXT PRIMARY KEY, keys INTEGER NOT NULL, bytes INTEGER NOT NULL) WITHOUT ROWID;",
        )
        .map_err(fail)?;
        Ok(KvStore {
            inner: Arc::new(StoreInner {
                conn: Mutex::new(conn),
                path: path.to_path_buf(),
            }),
        })
    }

    /// Keys and bytes the namespace `ns` holds.
    pub fn usage(&self, ns: &str) -> Result<(u64, u64), RuntimeError> {
        let conn = self.lock();
        read_usage(&conn, ns).map_err(|e| RuntimeError::Host(format!("key-value store: {e}")))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.inner.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in a write transaction, committed when it succeeds.
    fn write<R>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<R, KvError>,
    ) -> Result<R, KvError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let result = f(&tx)?;
        tx.commit()?;
        Ok(result)
    }
}

/// What one app may do with the store: its namespace and quota.
#[derive(Debug, Clone)]
pub struct KeyValue {
    /// The store.
    pub store: KvStore,
    /// The app's namespace.
    pub namespace: String,
    /// Most keys at once.
    pub max_keys: u64,
    /// Most bytes (keys plus values) at once.
    pub max_bytes: u64,
}

/// A failed key-value call, as the guest sees it (`wasi:keyvalue/store.error`).
#[derive(Debug)]
pub enum KvError {
    /// No such bucket (a name too long).
    NoSuchStore,
    /// The app was not granted key-value access.
    AccessDenied,
    /// Anything else: a quota, a value that is not a number, a storage failure.
    Other(String),
}

impl From<rusqlite::Error> for KvError {
    fn from(e: rusqlite::Error) -> Self {
        KvError::Other(format!("storage: {e}"))
    }
}

impl From<wasmtime::component::ResourceTableError> for KvError {
    fn from(e: wasmtime::component::ResourceTableError) -> Self {
        KvError::Other(e.to_string())
    }
}

/// The resource behind a guest's `bucket` handle.
pub struct Bucket {
    name: String,
}

/// The store data the key-value host functions see.
pub(crate) struct KvView<'a> {
    pub(crate) access: Option<&'a KeyValue>,
    pub(crate) table: &'a mut ResourceTable,
}

/// Marks [`KvView`] as the data of the generated `add_to_linker` functions.
pub(crate) struct HasKv;

impl HasData for HasKv {
    type Data<'a> = KvView<'a>;
}

/// Adds `wasi:keyvalue/{store,atomics,batch}` to `linker`; `view` reaches the store
/// data's part.
pub(crate) fn add_to_linker<T: 'static>(
    linker: &mut wasmtime::component::Linker<T>,
    view: fn(&mut T) -> KvView<'_>,
) -> wasmtime::Result<()> {
    store::add_to_linker::<T, HasKv>(linker, view)?;
    atomics::add_to_linker::<T, HasKv>(linker, view)?;
    batch::add_to_linker::<T, HasKv>(linker, view)?;
    Ok(())
}

impl KvView<'_> {
    /// The grant and the bucket's name.
    fn target(&self, bucket: &Resource<Bucket>) -> Result<(&KeyValue, String), KvError> {
        let access = self.access.ok_or(KvError::AccessDenied)?;
        Ok((access, self.table.get(bucket)?.name.clone()))
    }
}

fn read_usage(conn: &Connection, ns: &str) -> rusqlite::Result<(u64, u64)> {
    conn.prepare_cached("SELECT keys, bytes FROM usage WHERE ns = ?1")?
        .query_row([ns], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
        })
        .optional()
        .map(Option::unwrap_or_default)
}

/// Bytes a stored pair counts for in the quota.
fn pair_bytes(key: &str, value_len: u64) -> u64 {
    key.len() as u64 + value_len
}

fn value_len(
    tx: &Transaction<'_>,
    ns: &str,
    bucket: &str,
    key: &str,
) -> rusqlite::Result<Option<u64>> {
    tx.prepare_cached("SELECT length(value) FROM kv WHERE ns = ?1 AND bucket = ?2 AND key = ?3")?
        .query_row((ns, bucket, key), |r| r.get::<_, i64>(0))
        .optional()
        .map(|len| len.map(|n| n as u64))
}

fn write_usage(tx: &Transaction<'_>, ns: &str, keys: u64, bytes: u64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO usage (ns, keys, bytes) VALUES (?1, ?2, ?3)
         ON CONFLICT (ns) DO UPDATE SET keys = excluded.keys, bytes = excluded.bytes",
    )?
    .execute((ns, keys as i64, bytes as i64))?;
    Ok(())
}

/// Stores one pair inside `tx`, keeping the namespace's usage and refusing what would
/// pass its quota.
fn put(
    tx: &Transaction<'_>,
    kv: &KeyValue,
    bucket: &str,
    key: &str,
    value: &[u8],
) -> Result<(), KvError> {
    let ns = kv.namespace.as_str();
    let old = value_len(tx, ns, bucket, key)?;
    let (keys, bytes) = read_usage(tx, ns)?;
    let keys = keys + u64::from(old.is_none());
    let bytes = bytes - old.map_or(0, |n| pair_bytes(key, n)).min(bytes)
        + pair_bytes(key, value.len() as u64);
    if keys > kv.max_keys {
        return Err(KvError::Other(format!(
            "quota exceeded: namespace `{ns}` may hold {} keys",
            kv.max_keys
        )));
    }
    if bytes > kv.max_bytes {
        return Err(KvError::Other(format!(
            "quota exceeded: namespace `{ns}` may hold {} bytes",
            kv.max_bytes
        )));
    }
    tx.prepare_cached(
        "INSERT INTO kv (ns, bucket, key, value) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (ns, bucket, key) DO UPDATE SET value = excluded.value",
    )?
    .execute((ns, bucket, key, value))?;
    write_usage(tx, ns, keys, bytes)?;
    Ok(())
}

/// Removes one pair inside `tx`, keeping the namespace's usage.
fn remove(tx: &Transaction<'_>, kv: &KeyValue, bucket: &str, key: &str) -> Result<(), KvError> {
    let ns = kv.namespace.as_str();
    let Some(old) = value_len(tx, ns, bucket, key)? else {
        return Ok(());
    };
    tx.prepare_cached("DELETE FROM kv WHERE ns = ?1 AND bucket = ?2 AND key = ?3")?
        .execute((ns, bucket, key))?;
    let (keys, bytes) = read_usage(tx, ns)?;
    write_usage(
        tx,
        ns,
        keys.saturating_sub(1),
        bytes.saturating_sub(pair_bytes(key, old)),
    )?;
    Ok(())
}

fn get(kv: &KeyValue, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
    let conn = kv.store.lock();
    Ok(conn
        .prepare_cached("SELECT value FROM kv WHERE ns = ?1 AND bucket = ?2 AND key = ?3")?
        .query_row((&kv.namespace, bucket, key), |r| r.get(0))
        .optional()?)
}

impl store::Host for KvView<'_> {
    fn open(&mut self, identifier: String) -> Result<Resource<Bucket>, KvError> {
        if self.access.is_none() {
            return Err(KvError::AccessDenied);
        }
        if identifier.len() > MAX_BUCKET_NAME {
            return Err(KvError::NoSuchStore);
        }
        Ok(self.table.push(Bucket { name: identifier })?)
    }

    fn convert_error(&mut self, err: KvError) -> wasmtime::Result<store::Error> {
        Ok(match err {
            KvError::NoSuchStore => store::Error::NoSuchStore,
            KvError::AccessDenied => store::Error::AccessDenied,
            KvError::Other(s) => store::Error::Other(s),
        })
    }
}

impl store::HostBucket for KvView<'_> {
    fn get(&mut self, b: Resource<Bucket>, key: String) -> Result<Option<Vec<u8>>, KvError> {
        let (kv, bucket) = self.target(&b)?;
        get(kv, &bucket, &key)
    }

    fn set(&mut self, b: Resource<Bucket>, key: String, value: Vec<u8>) -> Result<(), KvError> {
        let (kv, bucket) = self.target(&b)?;
        kv.store.write(|tx| put(tx, kv, &bucket, &key, &value))
    }

    fn delete(&mut self, b: Resource<Bucket>, key: String) -> Result<(), KvError> {
        let (kv, bucket) = self.target(&b)?;
        kv.store.write(|tx| remove(tx, kv, &bucket, &key))
    }

    fn exists(&mut self, b: Resource<Bucket>, key: String) -> Result<bool, KvError> {
        let (kv, bucket) = self.target(&b)?;
        let conn = kv.store.lock();
        Ok(conn
            .prepare_cached("SELECT 1 FROM kv WHERE ns = ?1 AND bucket = ?2 AND key = ?3")?
            .query_row((&kv.namespace, &bucket, &key), |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn list_keys(
        &mut self,
        b: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> Result<store::KeyResponse, KvError> {
        let (kv, bucket) = self.target(&b)?;
        let offset = cursor.unwrap_or(0);
        let conn = kv.store.lock();
        let keys = conn
            .prepare_cached(
                "SELECT key FROM kv WHERE ns = ?1 AND bucket = ?2 ORDER BY key LIMIT ?3 OFFSET ?4",
            )?
            .query_map(
                (&kv.namespace, &bucket, LIST_PAGE as i64, offset as i64),
                |r| r.get(0),
            )?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        let cursor = (keys.len() == LIST_PAGE).then_some(offset + LIST_PAGE as u64);
        Ok(store::KeyResponse { keys, cursor })
    }

    fn drop(&mut self, b: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(b)?;
        Ok(())
    }
}

impl atomics::Host for KvView<'_> {
    fn increment(&mut self, b: Resource<Bucket>, key: String, delta: u64) -> Result<u64, KvError> {
        let (kv, bucket) = self.target(&b)?;
        kv.store.write(|tx| {
            let current: Option<Vec<u8>> = tx
                .prepare_cached("SELECT value FROM kv WHERE ns = ?1 AND bucket = ?2 AND key = ?3")?
                .query_row((&kv.namespace, &bucket, &key), |r| r.get(0))
                .optional()?;
            // ASCII decimal, as wasmtime-wasi-keyvalue's own store keeps counters.
            let current: u64 = match current {
                None => 0,
                Some(v) => std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| {
                        KvError::Other(format!("the value of `{key}` is not a decimal number"))
                    })?,
            };
            let next = current
                .checked_add(delta)
                .ok_or_else(|| KvError::Other(format!("`{key}` would overflow")))?;
            put(tx, kv, &bucket, &key, next.to_string().as_bytes())?;
            Ok(next)
        })
    }
}

impl batch::Host for KvView<'_> {
    fn get_many(
        &mut self,
        b: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, KvError> {
        let (kv, bucket) = self.target(&b)?;
        keys.into_iter()
            .map(|key| Ok(get(kv, &bucket, &key)?.map(|v| (key, v))))
            .collect()
    }

    fn set_many(
        &mut self,
        b: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), KvError> {
        let (kv, bucket) = self.target(&b)?;
        // All or nothing: one transaction.
        kv.store.write(|tx| {
            key_values
                .iter()
                .try_for_each(|(key, value)| put(tx, kv, &bucket, key, value))
        })
    }

    fn delete_many(&mut self, b: Resource<Bucket>, keys: Vec<String>) -> Result<(), KvError> {
        let (kv, bucket) = self.target(&b)?;
        kv.store
            .write(|tx| keys.iter().try_for_each(|key| remove(tx, kv, &bucket, key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::HostBucket;

    fn grant(dir: &Path, max_keys: u64, max_bytes: u64) -> KeyValue {
        KeyValue {
            store: KvStore::open(&dir.join("kv.db")).unwrap(),
            namespace: "app".into(),
            max_keys,
            max_bytes,
        }
    }

    fn view<'a>(kv: &'a KeyValue, table: &'a mut ResourceTable) -> KvView<'a> {
        KvView {
            access: Some(kv),
            table,
        }
    }

    fn borrow(r: &Resource<Bucket>) -> Resource<Bucket> {
        Resource::new_borrow(r.rep())
    }

    #[test]
    fn quotas_count_keys_and_bytes_through_overwrites_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let kv = grant(dir.path(), 2, 20);
        let mut table = ResourceTable::new();
        let mut view = view(&kv, &mut table);
        let b = store::Host::open(&mut view, String::new()).unwrap();
        view.set(borrow(&b), "a".into(), b"12345".to_vec()).unwrap();
        view.set(borrow(&b), "a".into(), b"123".to_vec()).unwrap();
        view.set(borrow(&b), "b".into(), b"1".to_vec()).unwrap();
        assert_eq!(kv.store.usage("app").unwrap(), (2, 6));
        let err = view.set(borrow(&b), "c".into(), b"1".to_vec()).unwrap_err();
        assert!(matches!(err, KvError::Other(m) if m.contains("2 keys")));
        let err = view.set(borrow(&b), "b".into(), vec![0; 30]).unwrap_err();
        assert!(matches!(err, KvError::Other(m) if m.contains("20 bytes")));
        view.delete(borrow(&b), "a".into()).unwrap();
        view.delete(borrow(&b), "missing".into()).unwrap();
        assert_eq!(kv.store.usage("app").unwrap(), (1, 2));
        assert_eq!(
            atomics::Host::increment(&mut view, borrow(&b), "n".into(), 5).unwrap(),
            5
        );
        assert_eq!(
            atomics::Host::increment(&mut view, borrow(&b), "n".into(), 2).unwrap(),
            7
        );
        view.set(borrow(&b), "b".into(), b"xy".to_vec()).unwrap();
        let err = atomics::Host::increment(&mut view, borrow(&b), "b".into(), 1).unwrap_err();
        assert!(matches!(err, KvError::Other(m) if m.contains("not a decimal")));
        assert_eq!(
            view.get(borrow(&b), "n".into()).unwrap(),
            Some(b"7".to_vec())
        );
    }

    #[test]
    fn batches_are_all_or_nothing_and_data_outlives_the_store_handle() {
        let dir = tempfile::tempdir().unwrap();
        {
            let kv = grant(dir.path(), 3, 1000);
            let mut table = ResourceTable::new();
            let mut view = view(&kv, &mut table);
            let b = store::Host::open(&mut view, "bucket".into()).unwrap();
            let pairs = |n: usize| (0..n).map(|i| (format!("k{i}"), vec![1])).collect();
            assert!(batch::Host::set_many(&mut view, borrow(&b), pairs(4)).is_err());
            assert_eq!(kv.store.usage("app").unwrap(), (0, 0));
            batch::Host::set_many(&mut view, borrow(&b), pairs(3)).unwrap();
        }
        let kv = grant(dir.path(), 3, 1000);
        let mut table = ResourceTable::new();
        let mut view = view(&kv, &mut table);
        let b = store::Host::open(&mut view, "bucket".into()).unwrap();
        let keys = view.list_keys(borrow(&b), None).unwrap();
        assert_eq!(keys.keys, ["k0", "k1", "k2"]);
        assert_eq!(keys.cursor, None);
        let other = store::Host::open(&mut view, "other".into()).unwrap();
        assert!(
            view.list_keys(borrow(&other), None)
                .unwrap()
                .keys
                .is_empty()
        );
    }

    #[test]
    fn without_a_grant_open_is_denied() {
        let mut table = ResourceTable::new();
        let mut view = KvView {
            access: None,
            table: &mut table,
        };
        assert!(matches!(
            store::Host::open(&mut view, String::new()),
            Err(KvError::AccessDenied)
        ));
    }
}
