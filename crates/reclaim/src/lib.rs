//! Gives memory back to the operating system after a big, temporary user of it has gone.
//!
//! A local model run in-process (llama.cpp on a thread; the gateway runs it in a child process
//! instead, but library users and tests may not) leaves two kinds of memory behind when dropped,
//! and neither goes away by itself:
//! - **heap**: glibc keeps freed memory in its arenas (one per thread that allocated; the model's
//!   worker thread had its own) and only returns the top of each heap. `malloc_trim(0)` returns
//!   every whole free page of every arena.
//! - **code**: the inference code (several MB of llama.cpp/ggml in our own executable) stays
//!   mapped after it last ran, and mapped file pages count in the process's RSS. Dropping the
//!   executable's clean mappings with `MADV_DONTNEED` unmaps them; the pages stay in the kernel's
//!   page cache, so the next call into any of that code is a minor fault, not a disk read.
//!
//! This is the only crate of the workspace that uses `unsafe`; each use says why it is sound.
//! On anything but Linux with glibc, [`release_unused_memory`] does nothing and says so.

use std::fmt;

/// What [`release_unused_memory`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Released {
    /// Whether glibc's arenas were trimmed (false off glibc).
    pub heap_trimmed: bool,
    /// Bytes of the executable's clean mappings that were dropped (resident or not).
    pub code_bytes_dropped: u64,
}

impl fmt::Display for Released {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "heap {}, {} KiB of code mappings dropped",
            if self.heap_trimmed {
                "trimmed"
            } else {
                "not trimmed (not glibc)"
            },
            self.code_bytes_dropped / 1024
        )
    }
}

/// Returns free heap pages to the OS and drops the executable's clean file-backed mappings from
/// this process's page tables. Cheap (a few hundred µs); call it after freeing something big.
pub fn release_unused_memory() -> Released {
    Released {
        heap_trimmed: trim_heap(),
        code_bytes_dropped: drop_clean_code_pages(),
    }
}

/// Returns glibc's free heap pages (every arena) to the OS; false where that is not glibc.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn trim_heap() -> bool {
    // SAFETY: malloc_trim only walks glibc's own arenas under their locks; it takes no pointers
    // from us and is documented as safe to call at any time from any thread.
    unsafe { libc::malloc_trim(0) };
    true
}

/// Returns glibc's free heap pages (every arena) to the OS; false where that is not glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim_heap() -> bool {
    false
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn drop_clean_code_pages() -> u64 {
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return 0;
    };
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let mut dropped = 0;
    for mapping in clean_read_only_mappings(&smaps, &exe.to_string_lossy()) {
        // SAFETY: `mapping` is a private, read-only (never writable) mapping of our executable
        // file with no dirty or anonymous pages, i.e. every page equals the file's bytes. For such
        // a mapping MADV_DONTNEED only removes the page-table entries: the next access faults the
        // identical page back in from the page cache. No Rust object lives in it (it is code and
        // constants), so no reference can observe a change. The relocated (RELRO) and writable
        // segments are dirty or writable and are never selected.
        let result = unsafe {
            rustix::mm::madvise(
                mapping.start as *mut std::ffi::c_void,
                mapping.len(),
                rustix::mm::Advice::LinuxDontNeed,
            )
        };
        if result.is_ok() {
            dropped += mapping.len() as u64;
        }
    }
    dropped
}

#[cfg(not(target_os = "linux"))]
fn drop_clean_code_pages() -> u64 {
    0
}

/// One line of `/proc/self/smaps` with the fields this crate needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
}

impl Mapping {
    fn len(&self) -> usize {
        self.end - self.start
    }
}

/// The mappings of `exe` that are private, never writable, and have no dirty or anonymous pages.
fn clean_read_only_mappings(smaps: &str, exe: &str) -> Vec<Mapping> {
    let mut found = Vec::new();
    let mut current: Option<(Mapping, bool)> = None; // (mapping, still clean)
    let finish = |entry: Option<(Mapping, bool)>, found: &mut Vec<Mapping>| {
        if let Some((mapping, true)) = entry {
            found.push(mapping);
        }
    };
    for line in smaps.lines() {
        if let Some(header) = parse_header(line) {
            finish(current.take(), &mut found);
            let (range, perms, path) = header;
            // Readable, not writable, private (a shared mapping's pages are not ours to drop).
            let selected = path == exe
                && perms.as_bytes()[0] == b'r'
                && perms.as_bytes()[1] == b'-'
                && perms.as_bytes()[3] == b'p';
            if selected {
                current = Some((range, true));
            }
            continue;
        }
        if let Some((_, clean)) = current.as_mut() {
            let mut fields = line.split_whitespace();
            let key = fields.next().unwrap_or("");
            let kb: u64 = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            // A page we changed (copy-on-write) is anonymous, or swap once swapped out.
            // ("Private_Dirty" is no guide: it also counts page-cache pages not yet written back,
            // e.g. of a binary the linker has just written.)
            if matches!(key, "Anonymous:" | "Swap:") && kb != 0 {
                *clean = false;
            }
        }
    }
    finish(current.take(), &mut found);
    found
}

/// Parses a mapping header line: `start-end perms offset dev inode [path]`.
fn parse_header(line: &str) -> Option<(Mapping, &str, &str)> {
    let mut fields = line.splitn(6, ' ');
    let range = fields.next()?;
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = fields.next()?;
    if perms.len() != 4 {
        return None;
    }
    let _offset = fields.next()?;
    let _dev = fields.next()?;
    let _inode = fields.next()?;
    let path = fields.next().unwrap_or("").trim_start();
    Some((Mapping { start, end }, perms, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXE: &str = "/usr/bin/openclaw";

    fn entry(range: &str, perms: &str, path: &str, anon_kb: u64, flags: &str) -> String {
        format!(
            "{range} {perms} 00000000 fe:00 123                        {path}\n\
             Size:                 64 kB\nRss:                  16 kB\n\
             Private_Clean:        16 kB\nPrivate_Dirty:        16 kB\n\
             Anonymous:             {anon_kb} kB\nVmFlags: {flags}\n"
        )
    }

    #[test]
    fn picks_only_the_executables_clean_read_only_private_mappings() {
        let smaps = [
            entry("1000-2000", "r--p", EXE, 0, "rd mr mw me"),
            entry("2000-5000", "r-xp", EXE, 0, "rd ex mr me"),
            // RELRO after relocation: read-only now, but its pages are our copies.
            entry("5000-6000", "r--p", EXE, 8, "rd mr me ac"),
            entry("6000-7000", "rw-p", EXE, 4, "rd wr mr mw me ac"),
            entry(
                "7000-8000",
                "r-xp",
                "/usr/lib/x86_64-linux-gnu/libc.so.6",
                0,
                "rd ex mr me",
            ),
            entry("8000-9000", "r--s", EXE, 0, "rd mr me"),
            entry("9000-a000", "rw-p", "", 4, "rd wr mr mw me ac"),
        ]
        .concat();
        let found = clean_read_only_mappings(&smaps, EXE);
        assert_eq!(
            found,
            vec![
                Mapping {
                    start: 0x1000,
                    end: 0x2000
                },
                Mapping {
                    start: 0x2000,
                    end: 0x5000
                },
            ]
        );
    }

    #[test]
    fn a_path_with_spaces_is_matched_whole() {
        let exe = "/opt/my apps/openclaw";
        let smaps = entry("2000-5000", "r-xp", exe, 0, "rd ex mr me");
        assert_eq!(clean_read_only_mappings(&smaps, exe).len(), 1);
        assert!(clean_read_only_mappings(&smaps, "/opt/my").is_empty());
    }

    #[test]
    fn malformed_lines_are_skipped() {
        assert!(parse_header("not a mapping").is_none());
        assert!(parse_header("zz-10 r-xp 0 0 0 /x").is_none());
        assert!(clean_read_only_mappings("garbage\n\n", EXE).is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn releasing_in_this_process_keeps_it_running() {
        // Drop our own test binary's code pages and keep executing: every page faults back in.
        let released = release_unused_memory();
        assert!(released.code_bytes_dropped > 0, "{released}");
        let v: Vec<u64> = (0..1000).map(|i| i * 3).collect();
        assert_eq!(v.iter().sum::<u64>(), 1_498_500);
        #[cfg(target_env = "gnu")]
        assert!(released.heap_trimmed);
    }
}
