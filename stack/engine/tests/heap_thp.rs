//! `disable_heap_huge_pages` (what `Engine::run` does unless `Config::heap_huge_pages`):
//! afterwards the process's flag reads back set, and the kernel reports transparent huge
//! pages off for it.

#[test]
fn the_heap_gets_no_transparent_huge_pages() {
    sluice_engine::runner::disable_heap_huge_pages().expect("prctl(PR_SET_THP_DISABLE)");
    // SAFETY: prctl with integer arguments only; it reads a flag of this process.
    let flag = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
    assert_eq!(flag, 1);
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    if let Some(line) = status.lines().find(|l| l.starts_with("THP_enabled:")) {
        assert!(line.ends_with('0'), "{line}");
    }
    // Memory faulted in from now on comes in small pages: touch 8 MiB and look.
    let huge_kb = || -> u64 {
        std::fs::read_to_string("/proc/self/smaps_rollup")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("AnonHugePages:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    // Even memory that asks for them (as mimalloc does with MADV_HUGEPAGE), which without
    // the flag gets them wherever the kernel offers them (`enabled` = always or madvise).
    let len = 8usize << 20;
    // SAFETY: a fresh private anonymous mapping, unmapped below; nothing else uses it.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    let before = huge_kb();
    // SAFETY: p..p+len is the mapping made above.
    unsafe {
        libc::madvise(p, len, libc::MADV_HUGEPAGE);
        std::ptr::write_bytes(p.cast::<u8>(), 1, len);
    }
    let after = huge_kb();
    // SAFETY: the mapping made above, no longer used.
    unsafe { libc::munmap(p, len) };
    assert_eq!(after, before, "no new huge pages");
}
