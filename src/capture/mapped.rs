//! Capture files (pcap and pcapng) read through a read-only memory map (Linux): the records are
//! parsed where the page cache holds them, without the copy into a buffer that `read` makes
//! (about a tenth of `detect`'s time on a warm pcap, a quarter on pcapng).
//!
//! The map covers the file as it was when reading began. Pages are made resident a window at a
//! time ahead of the reader (`MADV_POPULATE_READ`, window edges on 2 MB so the page cache's
//! large folios map whole) and given back behind it (`MADV_DONTNEED`), so the process keeps at
//! most about two windows of the file mapped whatever its size. Anything unusual leaves the map
//! for plain reads at the same offset (`super::pcap::Window` does that): a file that is not a
//! regular file or is small, a failed map, a failed populate (a file that shrank, an old
//! kernel), and bytes appended after the map was made (read at the end, as `read` would).
//!
//! The one hazard of a map is a file that shrinks between a populate and the reading of those
//! pages: the access raises SIGBUS. A handler installed with the first map turns that into the
//! CLI's one-line error naming the file and the offset, exit code 2; a SIGBUS at any other
//! address goes to the handler that was there before. A file rewritten in place while it is
//! read gives a mix of old and new bytes, as `read` would; the parsers check every length
//! against the slice they hold, never against a byte read twice.
#![allow(unsafe_code)]

/// How a stream maps its file: the bytes made resident ahead of the reader at a time, the
/// alignment of window edges, and the smallest file worth a map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MapPlan {
    /// Bytes made resident ahead of the reader at a time (at least the record asked for).
    pub(crate) window: usize,
    /// Window edges and the bytes given back are multiples of this (a power of two).
    pub(crate) align: usize,
    /// Files shorter than this are read, not mapped.
    pub(crate) min_len: u64,
}

/// Asks the CPU to bring the cache line of `bytes[at]` in (nothing when `at` is past the end):
/// a hint for bytes the reader will take shortly. It reads nothing and cannot fault.
#[inline(always)]
pub(super) fn prefetch(bytes: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(b) = bytes.get(at) {
        // SAFETY: `_mm_prefetch` is a hint (PREFETCHT0): it dereferences nothing and raises no
        // fault whatever the address; SSE, which it needs, is in every x86_64 CPU. The address
        // is in `bytes` anyway.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                (b as *const u8).cast(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (bytes, at);
}

/// The plan `detect` and every other command use: 8 MB windows on 2 MB edges, files of 1 MB
/// or more.
pub(crate) const DEFAULT_PLAN: MapPlan = MapPlan {
    window: 8 << 20,
    align: 2 << 20,
    min_len: 1 << 20,
};

#[cfg(target_os = "linux")]
pub(super) use linux::Mapped;

#[cfg(not(target_os = "linux"))]
pub(super) use other::Mapped;

#[cfg(target_os = "linux")]
mod linux {
    use super::{guard, MapPlan};
    use std::fs::File;
    use std::path::Path;

    /// A file's read-only map with the window made resident so far.
    pub(in crate::capture) struct Mapped {
        map: memmap2::Mmap,
        plan: MapPlan,
        /// Bytes before this offset were given back.
        dropped: usize,
        /// The guard's slot naming this map.
        slot: usize,
    }

    impl std::fmt::Debug for Mapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Mapped")
                .field("len", &self.map.len())
                .field("plan", &self.plan)
                .field("dropped", &self.dropped)
                .finish_non_exhaustive()
        }
    }

    impl Mapped {
        /// Maps `file` (named `path` in the error a shrinking file gives), or `None` when it
        /// should be read instead: not a regular file, shorter than the plan's minimum, no free
        /// guard slot, or the map failed. Nothing is made resident yet.
        pub(in crate::capture) fn open(file: &File, path: &Path, plan: MapPlan) -> Option<Mapped> {
            let meta = file.metadata().ok()?;
            if !meta.is_file() || meta.len() == 0 || meta.len() < plan.min_len {
                return None;
            }
            let len = usize::try_from(meta.len()).ok()?;
            if !plan.align.is_power_of_two() {
                return None;
            }
            let slot = guard::claim(path)?;
            // SAFETY: a read-only shared map of a regular file. The bytes are only read, through
            // the `&[u8]` the map derefs to, and every parser checks lengths against that slice.
            // Another process can change them while they are mapped: rewritten bytes are read
            // as `read` would have read them, and a file cut short raises SIGBUS on access,
            // which the guard (armed below, before any access) turns into an error exit.
            let map = match unsafe { memmap2::MmapOptions::new().len(len).map(file) } {
                Ok(map) => map,
                Err(_) => {
                    guard::release(slot);
                    return None;
                }
            };
            guard::arm(slot, map.as_ptr() as usize, map.len());
            Some(Mapped {
                map,
                plan,
                dropped: 0,
                slot,
            })
        }

        /// The whole file as mapped (only `..end` of what [`Mapped::extend`] returned is
        /// resident).
        #[inline(always)]
        pub(in crate::capture) fn bytes(&self) -> &[u8] {
            &self.map
        }

        /// Makes the bytes from `end` on resident: at least `want` of them, at most to the end
        /// of the map, else a window's worth to the next aligned edge. Gives back the aligned
        /// bytes wholly before `consumed` (the reader holds nothing before it). The new end, or
        /// `None` when the populate failed (the file shrank, or the kernel has no
        /// `MADV_POPULATE_READ`): the caller reads from `end` on instead.
        pub(in crate::capture) fn extend(
            &mut self,
            end: usize,
            want: usize,
            consumed: usize,
        ) -> Option<usize> {
            let len = self.map.len();
            let mask = self.plan.align - 1;
            let target = end
                .saturating_add(want.max(self.plan.window))
                .saturating_add(mask)
                & !mask;
            let target = target.min(len).max(end);
            if target > end {
                self.map
                    .advise_range(memmap2::Advice::PopulateRead, end, target - end)
                    .ok()?;
            }
            let behind = consumed.min(end) & !mask;
            if behind > self.dropped {
                // SAFETY: MADV_DONTNEED on a shared file map only removes this process's page
                // table entries for the range; a later access maps the same file bytes again.
                // The reader holds no borrow into it (it passed `consumed`, and this takes
                // `&mut self`).
                let _ = unsafe {
                    self.map.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        self.dropped,
                        behind - self.dropped,
                    )
                };
                self.dropped = behind;
            }
            Some(target)
        }
    }

    impl Drop for Mapped {
        fn drop(&mut self) {
            // Disarm before the map goes (the field drops after this body).
            guard::release(self.slot);
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod other {
    use super::MapPlan;
    use std::fs::File;
    use std::path::Path;

    /// No map on this platform: every file is read.
    #[derive(Debug)]
    pub(in crate::capture) enum Mapped {}

    impl Mapped {
        pub(in crate::capture) fn open(_: &File, _: &Path, _: MapPlan) -> Option<Mapped> {
            None
        }

        pub(in crate::capture) fn bytes(&self) -> &[u8] {
            match *self {}
        }

        pub(in crate::capture) fn extend(&mut self, _: usize, _: usize, _: usize) -> Option<usize> {
            match *self {}
        }
    }
}

/// The SIGBUS guard: a fixed table of the live maps (address, length, file name) that the
/// signal handler reads with atomics only, and the handler itself, which writes one line and
/// exits with code 2 when the faulting address is in a map of the table.
#[cfg(target_os = "linux")]
mod guard {
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
    use std::sync::OnceLock;

    /// Maps live at once (a run reads its files one after the other; the rest are read).
    const SLOTS: usize = 8;
    /// Bytes of a file name kept for the message (longer names are cut).
    const NAME: usize = 512;

    struct Slot {
        used: AtomicBool,
        base: AtomicUsize,
        /// 0 while the slot is not armed.
        len: AtomicUsize,
        name_len: AtomicUsize,
        name: [AtomicU8; NAME],
    }

    impl Slot {
        const fn new() -> Slot {
            Slot {
                used: AtomicBool::new(false),
                base: AtomicUsize::new(0),
                len: AtomicUsize::new(0),
                name_len: AtomicUsize::new(0),
                name: [const { AtomicU8::new(0) }; NAME],
            }
        }
    }

    static TABLE: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];

    /// The SIGBUS action before ours (`None` when ours could not be installed).
    static PREVIOUS: OnceLock<Option<Previous>> = OnceLock::new();

    /// A `sigaction` kept for the handler to put back.
    struct Previous(libc::sigaction);

    // SAFETY: a plain C struct of integers, a signal mask and a function address, read only.
    unsafe impl Sync for Previous {}
    unsafe impl Send for Previous {}

    /// Installs the handler once; false when it could not be (then nothing is mapped).
    fn installed() -> bool {
        PREVIOUS
            .get_or_init(|| {
                // SAFETY: `sigaction` with a zeroed struct filled in; the handler only uses
                // async-signal-safe calls (`write`, `_exit`, `sigaction`) and atomics.
                unsafe {
                    let mut new: libc::sigaction = std::mem::zeroed();
                    new.sa_sigaction = on_sigbus as *const () as usize;
                    new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                    libc::sigemptyset(&mut new.sa_mask);
                    let mut old: libc::sigaction = std::mem::zeroed();
                    (libc::sigaction(libc::SIGBUS, &new, &mut old) == 0).then_some(Previous(old))
                }
            })
            .is_some()
    }

    /// A free slot, named after `path`, not armed yet; `None` when every slot is in use or the
    /// handler is not installed.
    pub(super) fn claim(path: &Path) -> Option<usize> {
        if !installed() {
            return None;
        }
        let i = TABLE.iter().position(|s| {
            s.used
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })?;
        let slot = TABLE.get(i)?;
        let name = path.as_os_str().as_encoded_bytes();
        let n = name.len().min(NAME);
        for (dst, &b) in slot.name.iter().zip(name) {
            dst.store(b, Ordering::Relaxed);
        }
        slot.name_len.store(n, Ordering::Relaxed);
        Some(i)
    }

    /// Arms slot `i` for the map at `base`, `len` bytes long.
    pub(super) fn arm(i: usize, base: usize, len: usize) {
        if let Some(slot) = TABLE.get(i) {
            slot.base.store(base, Ordering::Relaxed);
            slot.len.store(len, Ordering::Release);
        }
    }

    /// Disarms and frees slot `i` (before its map goes).
    pub(super) fn release(i: usize) {
        if let Some(slot) = TABLE.get(i) {
            slot.len.store(0, Ordering::Release);
            slot.used.store(false, Ordering::Release);
        }
    }

    /// Writes `bytes` to standard error (best effort: nothing else can be done here).
    fn say(bytes: &[u8]) {
        // SAFETY: `write` is async-signal-safe; the pointer and length come from a live slice.
        let _ = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
    }

    /// The decimal digits of `n`, in `buf`.
    fn digits(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
        let mut at = buf.len();
        loop {
            at -= 1;
            if let Some(d) = buf.get_mut(at) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || at == 0 {
                break;
            }
        }
        buf.get(at..).unwrap_or_default()
    }

    extern "C" fn on_sigbus(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
        let addr = if info.is_null() {
            0
        } else {
            // SAFETY: the kernel passes a valid siginfo with SA_SIGINFO.
            unsafe { (*info).si_addr() as usize }
        };
        for slot in &TABLE {
            let len = slot.len.load(Ordering::Acquire);
            let base = slot.base.load(Ordering::Relaxed);
            if len == 0 || addr.wrapping_sub(base) >= len {
                continue;
            }
            let mut name = [0u8; NAME];
            let n = slot.name_len.load(Ordering::Relaxed).min(NAME);
            for (dst, src) in name.iter_mut().zip(&slot.name).take(n) {
                *dst = src.load(Ordering::Relaxed);
            }
            let mut buf = [0u8; 20];
            say(b"otwatch: error: ");
            say(name.get(..n).unwrap_or_default());
            say(b": the file shrank while it was being read (at byte ");
            say(digits(addr - base, &mut buf));
            say(b")\n");
            // SAFETY: `_exit` is async-signal-safe and ends the process at once.
            unsafe { libc::_exit(2) };
        }
        // Not one of ours: put back the action that was there before and return, so the
        // access faults again and goes to it.
        if let Some(Some(Previous(old))) = PREVIOUS.get() {
            // SAFETY: restores a struct `sigaction` returned earlier.
            unsafe { libc::sigaction(libc::SIGBUS, old, std::ptr::null_mut()) };
        }
    }
}
