//! A device bundle: the apps a device runs, each with its precompiled code, arguments,
//! environment, memory cap, fuel budget, restarts and messaging grants, made on the host and checked on the device before
//! anything runs (a sha256 digest per app's code, and one over the bundle's header).
//!
//! Layout, little-endian, offsets from the bundle's start (which must be 16-aligned in
//! the device's memory, so each app's code is too):
//!
//! ```text
//! "WEDGEMB1"                    magic, 8 bytes
//! u32 header length             bytes from here to the end of the header digest
//! u32 app count
//! per app:
//!   u16 name length, name (UTF-8)
//!   u32 memory cap (bytes), u64 fuel budget, u32 restarts after a failure
//!   u16 argument count, per argument: u16 length, bytes
//!   u16 environment count, per variable: u16 length, `KEY=VALUE`
//!   u16 publish grant count, per grant: u16 length, topic filter
//!   u16 subscribe grant count, per grant: u16 length, topic filter
//!   u32 code offset (16-aligned), u32 code length, [u8; 32] sha256 of the code
//! [u8; 32] sha256 of everything above
//! code blobs, each at its offset
//! ```

use crate::app::{AppSpec, Restart};
use crate::error::MicroError;
use crate::messaging::Grants;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use sha2::{Digest, Sha256};

/// The bundle format's magic and version.
pub const MAGIC: &[u8; 8] = b"WEDGEMB1";

/// One app of a bundle, as the host describes it.
pub struct BundleApp<'a> {
    /// Its name (also its first argument).
    pub name: &'a str,
    /// Code compiled with [`crate::settings::configure`].
    pub code: &'a [u8],
    /// Arguments after the name.
    pub args: &'a [String],
    /// Environment variables, `KEY=VALUE` each.
    pub env: &'a [String],
    /// Bytes its memories and tables may take.
    pub memory: u32,
    /// Its fuel budget per run.
    pub fuel: u64,
    /// How many times it is restarted after a failed run.
    pub restarts: u32,
    /// The topics it may publish to and subscribe to.
    pub grants: &'a Grants,
}

/// Writes a bundle of `apps`; refuses strings and lists too long for its fields (64 KiB
/// each).
pub fn write(apps: &[BundleApp<'_>]) -> Result<Vec<u8>, MicroError> {
    let mut header = Vec::new();
    header.extend_from_slice(&(apps.len() as u32).to_le_bytes());
    // Offsets are known once the header's length is: lay the header out first with
    // placeholder offsets, then fill them in.
    let mut offset_at = Vec::new();
    for app in apps {
        put_str(&mut header, app.name)?;
        header.extend_from_slice(&app.memory.to_le_bytes());
        header.extend_from_slice(&app.fuel.to_le_bytes());
        header.extend_from_slice(&app.restarts.to_le_bytes());
        put_strings(&mut header, app.args)?;
        put_strings(&mut header, app.env)?;
        put_strings(&mut header, &app.grants.publish)?;
        put_strings(&mut header, &app.grants.subscribe)?;
        offset_at.push(header.len());
        header.extend_from_slice(&[0; 8]);
        header.extend_from_slice(&Sha256::digest(app.code));
    }
    let header_end = MAGIC.len() + 4 + header.len() + 32;
    let mut offset = align16(header_end);
    for (app, at) in apps.iter().zip(&offset_at) {
        header[*at..*at + 4].copy_from_slice(&(offset as u32).to_le_bytes());
        header[*at + 4..*at + 8].copy_from_slice(&(app.code.len() as u32).to_le_bytes());
        offset = align16(offset + app.code.len());
    }
    let mut bundle = Vec::with_capacity(offset);
    bundle.extend_from_slice(MAGIC);
    bundle.extend_from_slice(&((4 + header.len() + 32) as u32).to_le_bytes());
    bundle.extend_from_slice(&header);
    let digest = Sha256::digest(&bundle);
    bundle.extend_from_slice(&digest);
    for app in apps {
        bundle.resize(align16(bundle.len()), 0);
        bundle.extend_from_slice(app.code);
    }
    Ok(bundle)
}

fn put_strings(out: &mut Vec<u8>, items: &[String]) -> Result<(), MicroError> {
    put_len(out, items.len(), "a list")?;
    items.iter().try_for_each(|item| put_str(out, item))
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), MicroError> {
    put_len(out, s.len(), s)?;
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_len(out: &mut Vec<u8>, len: usize, what: &str) -> Result<(), MicroError> {
    let len = u16::try_from(len).map_err(|_| {
        let what: String = what.chars().take(40).collect();
        MicroError::Bundle(format!("{what}…: longer than a bundle holds (65,535)"))
    })?;
    out.extend_from_slice(&len.to_le_bytes());
    Ok(())
}

fn align16(n: usize) -> usize {
    n.div_ceil(16) * 16
}

/// Reads and checks the bundle at `bytes`: its header's digest, then each app's code
/// against its digest. Any mismatch, truncation or misalignment refuses the whole
/// bundle: nothing of a tampered bundle runs.
pub fn read(bytes: &'static [u8]) -> Result<Vec<AppSpec>, MicroError> {
    let bad = |what: &str| MicroError::Bundle(what.to_string());
    if bytes.get(..8) != Some(&MAGIC[..]) {
        return Err(bad("no bundle here (bad magic)"));
    }
    if !(bytes.as_ptr() as usize).is_multiple_of(16) {
        return Err(bad("the bundle is not 16-byte aligned in memory"));
    }
    let header_len = Reader { bytes, at: 8 }.u32()? as usize;
    // The header holds at least its length, the app count and its digest.
    let header_end = 8usize
        .checked_add(header_len)
        .filter(|_| header_len >= 4 + 4 + 32)
        .ok_or(bad("bad header length"))?;
    let digest_at = header_end - 32;
    let signed = bytes.get(..digest_at).ok_or(bad("truncated header"))?;
    let digest = bytes
        .get(digest_at..header_end)
        .ok_or(bad("truncated header"))?;
    if Sha256::digest(signed).as_slice() != digest {
        return Err(bad(
            "the header's digest does not match: refusing a tampered bundle",
        ));
    }
    let mut r = Reader {
        bytes: signed,
        at: 12,
    };
    let count = r.u32()?;
    let mut apps = Vec::new();
    for _ in 0..count {
        let name = r.string()?;
        let memory = r.u32()? as usize;
        let fuel = r.u64()?;
        let restarts = r.u32()?;
        let mut args = alloc::vec![name.clone()];
        args.extend(r.strings()?);
        let env = r.strings()?;
        let grants = Grants {
            publish: r.filters()?,
            subscribe: r.filters()?,
        };
        let offset = r.u32()? as usize;
        let len = r.u32()? as usize;
        let digest = r.take(32)?;
        let code = offset
            .checked_add(len)
            .and_then(|end| bytes.get(offset..end))
            .filter(|_| offset.is_multiple_of(16) && offset >= header_end)
            .ok_or_else(|| bad(&format!("{name}: code outside the bundle")))?;
        if Sha256::digest(code).as_slice() != digest {
            return Err(bad(&format!(
                "{name}: its code does not match its digest: refusing a tampered bundle"
            )));
        }
        apps.push(AppSpec {
            name,
            code,
            args,
            env,
            memory,
            fuel,
            restart: match restarts {
                0 => Restart::Never,
                max => Restart::OnFailure { max },
            },
            grants,
        });
    }
    if r.at != digest_at {
        return Err(bad("header length does not match its contents"));
    }
    Ok(apps)
}

/// Reads the header, bounds-checked.
struct Reader {
    bytes: &'static [u8],
    at: usize,
}

impl Reader {
    fn take(&mut self, n: usize) -> Result<&'static [u8], MicroError> {
        let end = self.at.checked_add(n);
        let slice = end.and_then(|end| self.bytes.get(self.at..end));
        let slice = slice.ok_or_else(|| MicroError::Bundle("truncated header".into()))?;
        self.at += n;
        Ok(slice)
    }

    fn u16(&mut self) -> Result<u16, MicroError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, MicroError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, MicroError> {
        let mut v = [0u8; 8];
        v.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(v))
    }

    fn strings(&mut self) -> Result<Vec<String>, MicroError> {
        (0..self.u16()?).map(|_| self.string()).collect()
    }

    /// Topic filters of grants, each checked.
    fn filters(&mut self) -> Result<Vec<String>, MicroError> {
        let filters = self.strings()?;
        for filter in &filters {
            wedge_topic::check(filter, true)
                .map_err(|why| MicroError::Bundle(format!("grant `{filter}`: {why}")))?;
        }
        Ok(filters)
    }

    fn string(&mut self) -> Result<String, MicroError> {
        let len = self.u16()? as usize;
        let bytes = self.take(len)?;
        core::str::from_utf8(bytes)
            .map(ToString::to_string)
            .map_err(|_| MicroError::Bundle("a name or argument is not UTF-8".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// `bytes` copied to a leaked, 16-aligned buffer, as a device holds a bundle.
    fn place(bytes: &[u8]) -> &'static [u8] {
        let words = vec![0u128; bytes.len().div_ceil(16)].leak();
        // SAFETY: the buffer is at least `bytes.len()` bytes, and leaked ('static).
        let buf = unsafe {
            core::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), bytes.len())
        };
        buf.copy_from_slice(bytes);
        buf
    }

    fn grants() -> Grants {
        Grants {
            publish: vec![String::from("sensors/+/temp")],
            subscribe: vec![String::from("commands/#"), String::from("$SYS/x")],
        }
    }

    fn two_apps() -> Vec<u8> {
        let args = [String::from("--verbose")];
        let env = [String::from("MODE=test")];
        let (grants, none) = (grants(), Grants::default());
        write(&[
            BundleApp {
                name: "first",
                code: b"first code",
                args: &args,
                env: &env,
                memory: 65536,
                fuel: 1000,
                restarts: 2,
                grants: &grants,
            },
            BundleApp {
                name: "second",
                code: &[7; 33],
                args: &[],
                env: &[],
                memory: 131072,
                fuel: u64::MAX,
                restarts: 0,
                grants: &none,
            },
        ])
        .unwrap()
    }

    #[test]
    fn a_bundle_reads_back_as_written() {
        let apps = read(place(&two_apps())).unwrap();
        assert_eq!(apps.len(), 2);
        assert_eq!(apps[0].name, "first");
        assert_eq!(apps[0].code, b"first code");
        assert_eq!(apps[0].args, ["first", "--verbose"]);
        assert_eq!(apps[0].env, ["MODE=test"]);
        assert_eq!((apps[0].memory, apps[0].fuel), (65536, 1000));
        assert_eq!(apps[0].restart, Restart::OnFailure { max: 2 });
        assert_eq!(apps[0].grants, grants());
        assert_eq!(apps[1].grants, Grants::default());
        assert_eq!(apps[1].code, [7; 33]);
        assert_eq!(apps[1].restart, Restart::Never);
        // Each app's code is 16-aligned, as wasmtime wants its code.
        assert!(
            apps.iter()
                .all(|app| (app.code.as_ptr() as usize).is_multiple_of(16))
        );
    }

    #[test]
    fn any_changed_byte_refuses_the_bundle() {
        let bytes = two_apps();
        for at in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[at] ^= 0x40;
            // Padding between code blobs is not covered (nothing reads it).
            let Ok(apps) = read(place(&tampered)) else {
                continue;
            };
            let original = read(place(&bytes)).unwrap();
            for (a, b) in apps.iter().zip(&original) {
                assert_eq!(
                    (a.code, &a.name, a.memory, a.fuel),
                    (b.code, &b.name, b.memory, b.fuel),
                    "byte {at}"
                );
                assert_eq!(a.grants, b.grants, "byte {at}");
            }
        }
    }

    #[test]
    fn truncated_and_misplaced_bundles_are_refused() {
        let bytes = two_apps();
        for len in [0, 7, 12, 40, bytes.len() - 1] {
            assert!(
                matches!(read(place(&bytes[..len])), Err(MicroError::Bundle(_))),
                "{len} bytes"
            );
        }
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&bytes);
        let at_one = &place(&shifted)[1..];
        let err = read(at_one).unwrap_err();
        assert!(err.to_string().contains("16-byte aligned"), "{err}");
    }

    #[test]
    fn fields_too_long_for_the_format_are_refused_on_the_host() {
        let long = [String::from_utf8(vec![b'a'; 70_000]).unwrap()];
        let none = Grants::default();
        let app = BundleApp {
            name: "x",
            code: b"c",
            args: &long,
            env: &[],
            memory: 1,
            fuel: 1,
            restarts: 0,
            grants: &none,
        };
        let err = write(&[app]).unwrap_err();
        assert!(
            err.to_string().contains("longer than a bundle holds"),
            "{err}"
        );
    }

    #[test]
    fn malformed_grants_are_refused_on_the_device() {
        let bad = Grants {
            publish: vec![String::from("a/#/b")],
            subscribe: Vec::new(),
        };
        let app = BundleApp {
            name: "x",
            code: b"c",
            args: &[],
            env: &[],
            memory: 1,
            fuel: 1,
            restarts: 0,
            grants: &bad,
        };
        let err = read(place(&write(&[app]).unwrap())).unwrap_err();
        assert!(err.to_string().contains("grant `a/#/b`"), "{err}");
    }
}
