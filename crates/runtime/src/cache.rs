//! The AOT code cache: compiled code on disk, keyed by the Wasm's sha256 and the
//! engine's compatibility hash.
//!
//! An entry is the payload (wasmtime's serialized code, an ELF image), then a trailer:
//! the XXH3-128 checksum of the payload and `MAGIC`. The payload stays at offset 0, so
//! wasmtime maps the file directly instead of copying it (wasmtime ignores the bytes
//! after the ELF image). XXH3 checks a 200 KiB entry in microseconds; the cache
//! directory is trusted (it lives under the data root), so the checksum guards against
//! torn and corrupted files, not against forgery.
//!
//! Entries are written to a temp file and renamed into place, so a reader sees a whole
//! entry or none. They are not fsynced: a cache needs no durability, and an entry a
//! power cut leaves empty or torn fails its checksum. A reader verifies the checksum
//! before wasmtime sees the file: a truncated or corrupted entry is never executed, it
//! is removed and the Wasm recompiled. An entry wasmtime refuses (stale) is replaced
//! the same way.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The last bytes of every cache entry (format version 3).
const MAGIC: &[u8; 8] = b"WEDGEAO3";
/// Checksum plus magic.
const TRAILER_LEN: usize = 16 + MAGIC.len();

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

    /// Opens an entry whose checksum matches, for wasmtime to map. A missing entry is
    /// `None`; a corrupt one is removed and also `None`.
    pub fn open_verified(&self, path: &Path) -> Option<File> {
        let file = File::open(path).ok()?;
        if verify(&file) {
            Some(file)
        } else {
            self.remove(path);
            None
        }
    }

    /// Removes an entry that turned out to be unusable.
    pub fn remove(&self, path: &Path) {
        let _ = std::fs::remove_file(path);
    }

    /// Writes an entry atomically: temp file in the same directory, then rename (no
    /// fsync: the checksum catches what a crash leaves).
    pub fn write(&self, path: &Path, payload: &[u8]) -> std::io::Result<()> {
        self.write_atomically(path, &[payload, &checksum(payload), MAGIC])
    }

    /// The cache's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `parts` one after another as the file at `path`, atomically: a temp file
    /// in the same directory, then rename (no fsync).
    pub(crate) fn write_atomically(&self, path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        for part in parts {
            tmp.write_all(part)?;
        }
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// Checks an entry's trailer against its payload, reading it through a read-only map
/// (no copy, and the pages are the ones wasmtime maps next).
fn verify(file: &File) -> bool {
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return false;
    };
    if len < TRAILER_LEN as u64 {
        return false;
    }
    // SAFETY: a read-only private map of a file that wedge only ever replaces by rename,
    // never rewrites in place; the bytes are only read here.
    let Ok(map) = (unsafe { memmap2::Mmap::map(file) }) else {
        return false;
    };
    let (payload, trailer) = map.split_at(map.len() - TRAILER_LEN);
    trailer[16..] == MAGIC[..] && trailer[..16] == checksum(payload)
}

/// The payload checksum stored in an entry's trailer.
fn checksum(payload: &[u8]) -> [u8; 16] {
    xxhash_rust::xxh3::xxh3_128(payload).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_back(cache: &CodeCache, path: &Path) -> Option<Vec<u8>> {
        cache.open_verified(path).map(|_| {
            let bytes = std::fs::read(path).unwrap();
            bytes[..bytes.len() - TRAILER_LEN].to_vec()
        })
    }

    #[test]
    fn entries_round_trip_and_corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CodeCache::new(dir.path());
        let path = cache.entry_path("engine", "abc");
        assert_eq!(read_back(&cache, &path), None);
        cache.write(&path, b"compiled code").unwrap();
        assert_eq!(
            read_back(&cache, &path).as_deref(),
            Some(&b"compiled code"[..])
        );

        let mut bytes = std::fs::read(&path).unwrap();
        bytes[3] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(
            read_back(&cache, &path),
            None,
            "a flipped bit must not be accepted"
        );
        assert!(!path.exists(), "a corrupt entry is removed");

        cache.write(&path, b"compiled code").unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert_eq!(
            read_back(&cache, &path),
            None,
            "a truncated entry must not be accepted"
        );
        std::fs::write(&path, b"").unwrap();
        assert_eq!(
            read_back(&cache, &path),
            None,
            "an empty entry must not be accepted"
        );
    }
}
