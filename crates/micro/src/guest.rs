//! An app's linear memory as host functions see it, for every provider (WASI, messaging,
//! the next ones): the app's exported `memory`, read and written within its bounds.
//! Addresses are `u64`, so that a guest's pointer plus an offset never wraps around;
//! what falls outside the memory is [`OutOfBounds`], which each provider answers in its
//! own way (WASI with `EFAULT`, the canonical ABI with a trap).

use crate::app::AppState;
use core::fmt;
use wasmtime::{Caller, Extern};

/// An access outside the app's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutOfBounds {
    /// Where the access began.
    pub at: u64,
    /// How many bytes it wanted.
    pub len: u64,
}

impl fmt::Display for OutOfBounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes at {} are out of the app's memory",
            self.len, self.at
        )
    }
}

impl core::error::Error for OutOfBounds {}

/// The app's memory, for the length of one host call.
pub(crate) struct Guest<'a>(&'a mut [u8]);

impl Guest<'_> {
    /// The `len` bytes at `at`.
    pub(crate) fn bytes(&mut self, at: u64, len: u64) -> Result<&mut [u8], OutOfBounds> {
        let range = usize::try_from(at)
            .ok()
            .zip(usize::try_from(len).ok())
            .and_then(|(start, len)| Some(start..start.checked_add(len)?));
        range
            .and_then(|range| self.0.get_mut(range))
            .ok_or(OutOfBounds { at, len })
    }

    /// The little-endian `u32` at `at`.
    pub(crate) fn u32(&mut self, at: u64) -> Result<u32, OutOfBounds> {
        let mut word = [0u8; 4];
        word.copy_from_slice(self.bytes(at, 4)?);
        Ok(u32::from_le_bytes(word))
    }

    /// The little-endian `u64` at `at`.
    pub(crate) fn u64(&mut self, at: u64) -> Result<u64, OutOfBounds> {
        let mut word = [0u8; 8];
        word.copy_from_slice(self.bytes(at, 8)?);
        Ok(u64::from_le_bytes(word))
    }

    /// Writes `value` at `at`.
    pub(crate) fn put(&mut self, at: u64, value: &[u8]) -> Result<(), OutOfBounds> {
        self.bytes(at, value.len() as u64)?.copy_from_slice(value);
        Ok(())
    }
}

/// Runs `f` on the calling app's memory and its state; `None` if the app exports no
/// memory.
pub(crate) fn with<R>(
    caller: &mut Caller<'_, AppState>,
    f: impl FnOnce(&mut Guest<'_>, &mut AppState) -> R,
) -> Option<R> {
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return None;
    };
    let (bytes, state) = memory.data_and_store_mut(caller);
    Some(f(&mut Guest(bytes), state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accesses_stay_within_the_memory() {
        let mut memory = [0u8; 16];
        let mut guest = Guest(&mut memory);
        guest.put(12, &7u32.to_le_bytes()).unwrap();
        assert_eq!(guest.u32(12), Ok(7));
        assert_eq!(guest.u32(13), Err(OutOfBounds { at: 13, len: 4 }));
        assert_eq!(guest.u64(8).map(|v| v >> 32), Ok(7));
        assert!(guest.bytes(16, 0).is_ok());
        assert!(guest.bytes(17, 0).is_err());
        // A pointer near the top of the address space, plus a length: no wrapping.
        assert!(guest.bytes(u64::from(u32::MAX), 8).is_err());
        assert!(guest.bytes(u64::MAX, 2).is_err());
        assert!(guest.put(u64::MAX - 1, &[1, 2, 3]).is_err());
    }
}
