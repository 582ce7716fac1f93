//! The memory limiter every store runs under.

/// Caps the total linear memory of a store and remembers whether the cap was hit, so a
/// trap that follows a refused `memory.grow` can be reported as what it is.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    max: usize,
    total: usize,
    /// Set when a growth was refused.
    pub(crate) hit: bool,
    /// Where the current total is reported, for a managed run.
    report: Option<crate::Control>,
}

/// Table elements allowed per table: far above real programs, far below host exhaustion.
const MAX_TABLE_ELEMENTS: usize = 10_000_000;

impl MemoryLimiter {
    pub(crate) fn new(max_bytes: u64, report: Option<crate::Control>) -> MemoryLimiter {
        MemoryLimiter {
            max: usize::try_from(max_bytes).unwrap_or(usize::MAX),
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
        let total = self.total - current.min(self.total) + desired;
        if total > self.max {
            self.hit = true;
            return Ok(false);
        }
        self.total = total;
        if let Some(control) = &self.report {
            control.set_memory(total as u64);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn growth_past_the_cap_is_refused_and_remembered() {
        let mut l = MemoryLimiter::new(10 << 16, None);
        assert!(l.memory_growing(0, 4 << 16, None).unwrap());
        assert!(l.memory_growing(4 << 16, 10 << 16, None).unwrap());
        assert!(!l.hit);
        assert!(!l.memory_growing(10 << 16, 11 << 16, None).unwrap());
        assert!(l.hit);
    }
}
