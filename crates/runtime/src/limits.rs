//! The memory limiter every store runs under.

/// Caps the total linear memory and table storage of a store and remembers whether the
/// cap was hit, so a trap that follows a refused `memory.grow` can be reported as what
/// it is. Wasmtime asks it for every memory and table an instance creates (their
/// initial sizes, in the on-demand allocator and the pool alike) and for every growth,
/// so the initial and grown sizes of all of them count against one total.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    max: usize,
    total: usize,
    /// Set when a growth was refused.
    pub(crate) hit: bool,
    /// Where the current total is reported, for a managed run.
    report: Option<crate::Control>,
}

/// Host bytes one table element takes: wasmtime stores a function or GC reference per
/// element, at most a pointer wide.
const TABLE_ELEMENT_BYTES: usize = std::mem::size_of::<usize>();

impl MemoryLimiter {
    /// The limiter of one store under `policy`, reporting to `report` when managed.
    pub(crate) fn new(policy: &crate::Policy, report: Option<crate::Control>) -> MemoryLimiter {
        MemoryLimiter {
            max: usize::try_from(policy.memory).unwrap_or(usize::MAX),
            total: 0,
            hit: false,
            report,
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(current, desired))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(
            current.saturating_mul(TABLE_ELEMENT_BYTES),
            desired.saturating_mul(TABLE_ELEMENT_BYTES),
        ))
    }
}

impl MemoryLimiter {
    /// Accepts one memory or table going from `current` to `desired` bytes when the
    /// store's total stays within the cap.
    fn grow(&mut self, current: usize, desired: usize) -> bool {
        let total = (self.total - current.min(self.total)).saturating_add(desired);
        if total > self.max {
            self.hit = true;
            return false;
        }
        self.total = total;
        if let Some(control) = &self.report {
            control.set_memory(total as u64);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    fn policy(memory: u64) -> crate::Policy {
        crate::Policy {
            memory,
            ..crate::Policy::default()
        }
    }

    #[test]
    fn growth_past_the_cap_is_refused_and_remembered() {
        let mut l = MemoryLimiter::new(&policy(10 << 16), None);
        assert!(l.memory_growing(0, 4 << 16, None).unwrap());
        assert!(l.memory_growing(4 << 16, 10 << 16, None).unwrap());
        assert!(!l.hit);
        assert!(!l.memory_growing(10 << 16, 11 << 16, None).unwrap());
        assert!(l.hit);
    }

    #[test]
    fn tables_count_against_the_same_cap_as_memories() {
        let mut l = MemoryLimiter::new(&policy(1 << 20), None);
        assert!(l.memory_growing(0, 512 << 10, None).unwrap());
        // Elements taking the remaining 512 KiB exactly.
        let elements = (512 << 10) / TABLE_ELEMENT_BYTES;
        assert!(l.table_growing(0, elements, None).unwrap());
        assert!(!l.hit);
        assert!(!l.table_growing(0, 1, None).unwrap());
        assert!(l.hit);
        assert!(!l.table_growing(0, usize::MAX, None).unwrap());
    }
}
