//! Gives memory back to the operating system once the code and data that needed it are done.
//!
//! Two kinds of memory stay counted in a process's RSS after their last use, and neither goes
//! away by itself:
//! - **heap**: glibc keeps freed memory in its arenas (one per thread that allocated) and only
//!   returns the top of each heap. `malloc_trim(0)` returns every whole free page of every arena.
//! - **mapped code and constants**: every page of the executable and of the shared libraries
//!   (libc, libm, …) that ran once stays mapped, 64 KiB at a time (the kernel maps the pages
//!   around a faulting one). Dropping the clean, read-only, file-backed mappings with
//!   `MADV_DONTNEED` unmaps them; the pages stay in the kernel's page cache, so the next call into
//!   any of that code is a minor fault, not a disk read.
//!
//! Two callers: the gateway once after start-up (configuration parsing, SQLite's open, the CLI
//! and logging set-up never run again; idle RSS 5.4 MB → 2.3 MB), and a local model run
//! in-process when it is released (several MB of llama.cpp's code and heap).
//!
//! This is the only crate of the workspace that uses `unsafe`; each use says why it is sound.
//! On anything but Linux with glibc, [`release_unused_memory`] does nothing and says so.

use std::fmt;

/// What [`release_unused_memory`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Released {
    /// Whether glibc's arenas were trimmed (false off glibc).
    pub heap_trimmed: bool,
    /// Bytes of clean read-only file mappings that were dropped (resident or not).
    pub mapped_bytes_dropped: u64,
}

impl fmt::Display for Released {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "heap {}, {} KiB of file mappings dropped",
            if self.heap_trimmed {
                "trimmed"
            } else {
                "not trimmed (not glibc)"
            },
            self.mapped_bytes_dropped / 1024
        )
    }
}

/// Returns free heap pages to the OS and drops the clean read-only file mappings (code and
/// constants of the executable and its shared libraries) from this process's page tables. Cheap
/// (a few hundred µs); what is still used faults back in at its next use.
pub fn release_unused_memory() -> Released {
    Released {
        heap_trimmed: trim_heap(),
        mapped_bytes_dropped: drop_clean_file_pages(),
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
fn drop_clean_file_pages() -> u64 {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let mut dropped = 0;
    for mapping in clean_read_only_file_mappings(&smaps) {
        // SAFETY: `mapping` is a private, read-only (never writable) mapping of a file with no
        // anonymous (copied-on-write) or swapped pages, i.e. every page equals the file's bytes.
        // For such a mapping MADV_DONTNEED only removes the page-table entries: the next access
        // faults the identical page back in from the page cache (the mapping keeps the file
        // open, even if it was deleted or replaced since). No Rust object lives in it (it is
        // code and constants), so no reference can observe a change. Relocated (RELRO) and
        // writable segments have anonymous pages or are writable and are never selected. The
        // kernel drops such pages by itself under memory pressure; this only does it early.
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
fn drop_clean_file_pages() -> u64 {
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

/// The file mappings that are private, never writable, and have no anonymous or swapped pages.
fn clean_read_only_file_mappings(smaps: &str) -> Vec<Mapping> {
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
            // A file (not [vdso], [stack] or anonymous memory), readable, never writable, private
            // (a shared mapping's pages are not ours to drop), and not a device.
            let selected = path.starts_with('/')
                && !path.starts_with("/dev/")
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
            // I/O or raw-PFN memory (a driver's), or locked in RAM on purpose: leave it.
            if key == "VmFlags:"
                && line
                    .split_whitespace()
                    .any(|f| matches!(f, "io" | "pf" | "lo"))
            {
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
    const LIBC: &str = "/usr/lib/x86_64-linux-gnu/libc.so.6";

    fn entry(range: &str, perms: &str, path: &str, anon_kb: u64, flags: &str) -> String {
        format!(
            "{range} {perms} 00000000 fe:00 123                        {path}\n\
             Size:                 64 kB\nRss:                  16 kB\n\
             Private_Clean:        16 kB\nPrivate_Dirty:        16 kB\n\
             Anonymous:             {anon_kb} kB\nVmFlags: {flags}\n"
        )
    }

    #[test]
    fn picks_only_clean_read_only_private_file_mappings() {
        let smaps = [
            entry("1000-2000", "r--p", EXE, 0, "rd mr mw me"),
            entry("2000-5000", "r-xp", EXE, 0, "rd ex mr me"),
            // RELRO after relocation: read-only now, but its pages are our copies.
            entry("5000-6000", "r--p", EXE, 8, "rd mr me ac"),
            entry("6000-7000", "rw-p", EXE, 4, "rd wr mr mw me ac"),
            entry("7000-8000", "r-xp", LIBC, 0, "rd ex mr me"),
            entry("8000-9000", "r--s", EXE, 0, "rd mr me"),
            entry("9000-a000", "rw-p", "", 4, "rd wr mr mw me ac"),
            entry("a000-b000", "r-xp", "[vdso]", 0, "rd ex mr mw me de"),
            entry("b000-c000", "r--p", "/dev/dri/renderD128", 0, "rd mr me"),
            entry("c000-d000", "r--p", "/opt/driver.bin", 0, "rd mr me io pf"),
            entry("d000-e000", "r-xp", "/opt/pinned.so", 0, "rd ex mr me lo"),
            entry(
                "e000-f000",
                "r-xp",
                "/opt/my apps/lib x.so",
                0,
                "rd ex mr me",
            ),
        ]
        .concat();
        let found = clean_read_only_file_mappings(&smaps);
        let ranges: Vec<_> = found.iter().map(|m| (m.start, m.end)).collect();
        assert_eq!(
            ranges,
            vec![
                (0x1000, 0x2000),
                (0x2000, 0x5000),
                (0x7000, 0x8000),
                (0xe000, 0xf000)
            ]
        );
    }

    #[test]
    fn malformed_lines_are_skipped() {
        assert!(parse_header("not a mapping").is_none());
        assert!(parse_header("zz-10 r-xp 0 0 0 /x").is_none());
        assert!(clean_read_only_file_mappings("garbage\n\n").is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn releasing_in_this_process_keeps_it_running() {
        // Drop our own test binary's and libc's code pages and keep executing: every page
        // faults back in.
        let rss_file_kib = || {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let line = status.lines().find(|l| l.starts_with("RssFile:")).unwrap();
            line.split_whitespace()
                .nth(1)
                .unwrap()
                .parse::<u64>()
                .unwrap()
        };
        let before = rss_file_kib();
        let released = release_unused_memory();
        let after = rss_file_kib();
        assert!(released.mapped_bytes_dropped > 0, "{released}");
        assert!(
            after < before,
            "file-backed RSS {before} KiB -> {after} KiB"
        );
        let v: Vec<u64> = (0..1000).map(|i| i * 3).collect();
        assert_eq!(v.iter().sum::<u64>(), 1_498_500);
        #[cfg(target_env = "gnu")]
        assert!(released.heap_trimmed);
    }
}
