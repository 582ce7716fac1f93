//! What the code cache remembers of Wasm files by path: the digest their code is kept
//! under, while the file is unchanged. A warm `wedge run app.wasm` then maps the cached
//! code without reading or hashing the Wasm (for a 20 MB app, most of what wedge itself
//! adds to a run).
//!
//! An entry lives in `<cache>/files/<hash of the path>` and holds the file's stamp
//! (device, inode, size, modification and status-change times in nanoseconds), its
//! kind and the hex sha256 of the bytes that were compiled. It is used only while the
//! file's stamp is the same. Any write to a file moves its status-change time (ctime),
//! which no unprivileged process can set back. Timestamps are coarse (a clock tick), so,
//! as git does for its index, an entry is only written for a file whose ctime is
//! [`SETTLED`] in the past and which did not change while it was read: a change after
//! that lands on a later tick and shows.

use crate::AppKind;
use crate::cache::CodeCache;
use sha2::{Digest, Sha256};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long ago a file must have last changed for its digest to be remembered.
const SETTLED: Duration = Duration::from_secs(2);

/// What identifies a file's content without reading it: its device, inode, size, and
/// modification and status-change times (any write moves the latter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileStamp {
    /// The stamp of the file at `path`.
    pub fn of(path: &Path) -> std::io::Result<FileStamp> {
        let meta = std::fs::metadata(path)?;
        let ns = |secs: i64, nanos: i64| i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        Ok(FileStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        })
    }

    /// Whether the file last changed at least [`SETTLED`] before `now`.
    fn settled(&self, now: SystemTime) -> bool {
        let Ok(now) = now.duration_since(SystemTime::UNIX_EPOCH) else {
            return false;
        };
        self.ctime_ns + SETTLED.as_nanos() as i128 <= now.as_nanos() as i128
    }

    fn line(&self, kind: AppKind, sha256: &str) -> String {
        let kind = match kind {
            AppKind::Module => "module",
            AppKind::Component => "component",
        };
        format!(
            "wedge-file 1 {} {} {} {} {} {kind} {sha256}\n",
            self.dev, self.ino, self.size, self.mtime_ns, self.ctime_ns
        )
    }
}

/// The digest and kind of a file the cache has seen, as its code is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Known {
    pub(crate) kind: AppKind,
    pub(crate) sha256: String,
}

impl CodeCache {
    /// Where the entry for the file at `path` (made absolute) lives.
    fn known_entry(&self, path: &Path) -> Option<PathBuf> {
        let path = std::path::absolute(path).ok()?;
        let key = hex::encode(&Sha256::digest(path.as_os_str().as_encoded_bytes())[..16]);
        Some(self.dir().join("files").join(key))
    }

    /// What was remembered of the file at `path`, if its stamp is still `stamp`.
    pub(crate) fn known(&self, path: &Path, stamp: &FileStamp) -> Option<Known> {
        let text = std::fs::read_to_string(self.known_entry(path)?).ok()?;
        let mut fields = text.trim_end().rsplit(' ');
        let sha256 = fields.next()?;
        let kind = match fields.next()? {
            "module" => AppKind::Module,
            "component" => AppKind::Component,
            _ => return None,
        };
        let well_formed = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
        (well_formed && text == stamp.line(kind, sha256)).then(|| Known {
            kind,
            sha256: sha256.to_string(),
        })
    }

    /// Remembers that the file at `path`, stamped `before` when it was read, compiles
    /// under `known`, if it has settled and is still the same. A cache that cannot be
    /// written only costs a hash next time.
    pub(crate) fn remember(&self, path: &Path, before: &FileStamp, known: &Known) {
        if !before.settled(SystemTime::now()) || FileStamp::of(path).ok().as_ref() != Some(before) {
            return;
        }
        if let Some(entry) = self.known_entry(path) {
            let line = before.line(known.kind, &known.sha256);
            let _ = self.write_atomically(&entry, &[line.as_bytes()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "4d0c09e72d7d93ea7d9f1d8bcbadaefa9437b832469ff38ef28f75494c3d9b16";

    #[test]
    fn an_entry_serves_only_the_stamp_it_was_written_for() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CodeCache::new(dir.path().join("aot"));
        let app = dir.path().join("app.wasm");
        std::fs::write(&app, b"\0asm\x01\0\0\0").unwrap();
        let stamp = FileStamp::of(&app).unwrap();
        let known = Known {
            kind: AppKind::Component,
            sha256: SHA.into(),
        };
        assert_eq!(cache.known(&app, &stamp), None);

        // Just written: not settled, so not remembered.
        assert!(!stamp.settled(SystemTime::now()));
        cache.remember(&app, &stamp, &known);
        assert_eq!(cache.known(&app, &stamp), None);
        assert!(stamp.settled(SystemTime::now() + SETTLED));

        let entry = cache.known_entry(&app).unwrap();
        let write = |text: &str| cache.write_atomically(&entry, &[text.as_bytes()]).unwrap();
        write(&stamp.line(known.kind, SHA));
        assert_eq!(cache.known(&app, &stamp), Some(known.clone()));

        let mut other = stamp.clone();
        other.ctime_ns += 1;
        assert_eq!(cache.known(&app, &other), None, "a changed file");
        for garbage in [
            "",
            "wedge-file 1",
            &stamp.line(known.kind, &SHA[1..]),
            &stamp.line(known.kind, &SHA.replace('4', "g")),
            &stamp.line(known.kind, SHA).replace("component", "library"),
            &stamp.line(known.kind, SHA).replace(" 1 ", " 2 "),
        ] {
            write(garbage);
            assert_eq!(cache.known(&app, &stamp), None, "{garbage:?}");
        }
    }
}
