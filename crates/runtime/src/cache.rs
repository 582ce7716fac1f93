//! The AOT code cache: compiled code on disk, keyed by the Wasm's sha256 and the
//! engine's compatibility hash.
//!
//! An entry is `MAGIC`, the sha256 of the payload, then the payload (wasmtime's
//! serialized code). Entries are written to a temp file, fsynced and renamed into
//! place, so a reader sees a whole entry or none. A reader checks the checksum before
//! handing the bytes to wasmtime: a truncated or corrupted entry is never executed,
//! it is removed and the Wasm recompiled. An entry wasmtime refuses (stale) is replaced.

use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The first bytes of every cache entry (format version 1).
const MAGIC: &[u8; 8] = b"WEDGEAO1";
const HEADER_LEN: usize = MAGIC.len() + 32;

/// A directory of compiled code, normally `<root>/cache/aot`.
#[derive(Debug, Clone)]
pub struct CodeCache {
    dir: PathBuf,
}

impl CodeCache {
    /// A cache rooted at `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> CodeCache {
        CodeCache { dir: dir.into() }
    }

    /// Where the entry for this Wasm (by sha256) and engine (by compatibility hash) lives.
    pub fn entry_path(&self, engine_hash: &str, wasm_sha256: &str) -> PathBuf {
        self.dir
            .join(engine_hash)
            .join(format!("{wasm_sha256}.cwasm"))
    }

    /// Reads an entry and returns its payload if the checksum matches. A missing entry
    /// is `None`; a corrupt one is removed and also `None`.
    pub fn read(&self, path: &Path) -> Option<Vec<u8>> {
        let mut bytes = std::fs::read(path).ok()?;
        let valid = bytes.len() >= HEADER_LEN
            && &bytes[..MAGIC.len()] == MAGIC
            && Sha256::digest(&bytes[HEADER_LEN..]).as_slice() == &bytes[MAGIC.len()..HEADER_LEN];
        if !valid {
            self.remove(path);
            return None;
        }
        bytes.drain(..HEADER_LEN);
        Some(bytes)
    }

    /// Removes an entry that turned out to be unusable.
    pub fn remove(&self, path: &Path) {
        let _ = std::fs::remove_file(path);
    }

    /// Writes an entry atomically: temp file in the same directory, fsync, rename.
    pub fn write(&self, path: &Path, payload: &[u8]) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(MAGIC)?;
        tmp.write_all(&Sha256::digest(payload))?;
        tmp.write_all(payload)?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CodeCache::new(dir.path());
        let path = cache.entry_path("engine", "abc");
        assert_eq!(cache.read(&path), None);
        cache.write(&path, b"compiled code").unwrap();
        assert_eq!(cache.read(&path).as_deref(), Some(&b"compiled code"[..]));

        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(
            cache.read(&path),
            None,
            "a flipped bit must not be returned"
        );
        assert!(!path.exists(), "a corrupt entry is removed");

        cache.write(&path, b"compiled code").unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert_eq!(
            cache.read(&path),
            None,
            "a truncated entry must not be returned"
        );
    }
}
