//! Keeping wedged's resident memory to what it runs. Its code and constants (the binary
//! and the shared libraries) are file mappings; on each page it touches, Linux maps a
//! run of 64 KiB around it (fault-around) and reads further ahead from storage, so an
//! idle daemon would hold several MiB of code it never runs. On a device that memory
//! counts (docs/edge.md): wedged asks for its read-only file mappings to be mapped page
//! by page instead.

/// Advises the kernel (`MADV_RANDOM`) to map this process's read-only file mappings
/// page by page, without fault-around or readahead. Pages mapped already stay; nothing
/// else changes (a hint only). Best effort: a failure costs only memory.
pub fn map_code_on_demand() {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for (start, len) in maps.lines().filter_map(read_only_file_mapping) {
        // SAFETY: `MADV_RANDOM` changes no memory contents or protections, only the
        // kernel's paging policy for a range the process has mapped.
        unsafe {
            libc::madvise(start as *mut libc::c_void, len, libc::MADV_RANDOM);
        }
    }
}

/// The start and length of a line of `/proc/self/maps` that maps a file read-only
/// (code or constants), e.g. `55d0c0a00000-55d0c0e00000 r-xp 00000000 fd:01 1234 /usr/bin/wedged`.
fn read_only_file_mapping(line: &str) -> Option<(usize, usize)> {
    let mut fields = line.split_whitespace();
    let range = fields.next()?;
    let perms = fields.next()?;
    let path = fields.nth(3)?;
    if !path.starts_with('/') || perms.contains('w') {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    Some((start, end.checked_sub(start)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_read_only_file_mappings_are_advised() {
        assert_eq!(
            read_only_file_mapping("7f00-7f10 r-xp 00000000 fd:01 1234 /usr/lib/libc.so.6"),
            Some((0x7f00, 0x10))
        );
        assert_eq!(
            read_only_file_mapping("7f00-7f10 r--p 00001000 fd:01 1234 /usr/bin/wedged"),
            Some((0x7f00, 0x10))
        );
        assert_eq!(
            read_only_file_mapping("7f00-7f10 rw-p 00001000 fd:01 1234 /usr/bin/wedged"),
            None
        );
        assert_eq!(
            read_only_file_mapping("7f00-7f10 rw-p 00000000 00:00 0 [heap]"),
            None
        );
        assert_eq!(
            read_only_file_mapping("7f00-7f10 r-xp 00000000 00:00 0 [vdso]"),
            None
        );
        assert_eq!(
            read_only_file_mapping("7f00-7f10 rw-p 00000000 00:00 0"),
            None
        );
    }

    #[test]
    fn this_process_code_is_then_mapped_page_by_page() {
        map_code_on_demand();
        // The mapping holding this very code carries the kernel's "random reads" flag.
        let code = map_code_on_demand as *const () as usize;
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        let mut flags = None;
        for line in smaps.lines() {
            let header = !line.split_whitespace().next().unwrap_or("").ends_with(':');
            if header {
                inside = read_only_file_mapping(line)
                    .is_some_and(|(start, len)| (start..start + len).contains(&code));
            } else if inside && line.starts_with("VmFlags:") {
                flags = Some(line.to_string());
                break;
            }
        }
        let flags = flags.expect("the code's mapping is a read-only file mapping");
        assert!(flags.split_whitespace().any(|f| f == "rr"), "{flags}");
    }
}
