//! Reading a transcript through a memory map instead of `read()`.
//!
//! On the 2-core VM csm is measured on, copying 1 GiB of transcripts out of
//! the page cache with `read()` took 0.6 s of kernel time, more than parsing
//! it; finding the same lines and usage markers in place through a map took
//! 0.25 s in all. So a file with much to read is mapped, and its lines are
//! handed out as slices of the map.
//!
//! The one hazard of a map is a file truncated while it is mapped: touching a
//! page past the new end raises SIGBUS, which would kill the process. Claude
//! Code only appends to transcripts and deletes whole files (an unlinked file
//! stays mapped intact), but anything else may truncate one. So while a map
//! is in use, a SIGBUS handler ([`guard`]) puts a page of zeros where the
//! missing page was and flags the map; the reader then treats the file like
//! one that failed mid-read and reads it again next time.

use std::fs::File;
use std::io;

/// A read-only private map of `len` bytes of a file from a page-aligned offset.
pub struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
    /// The guard's record of this map.
    slot: usize,
    /// Where the requested range starts inside the map.
    skip: usize,
    /// Bytes at the front of the map already handed back to the kernel.
    released: std::cell::Cell<usize>,
}

impl Mapping {
    /// Maps `file[start..end]`; `None` when the range is empty or the map
    /// could not be guarded (the caller reads the file instead).
    pub fn new(file: &File, start: u64, end: u64) -> io::Result<Option<Mapping>> {
        use std::os::unix::io::AsRawFd;
        if end <= start || !guard::install() {
            return Ok(None);
        }
        let page = page_size();
        let aligned = start - start % page;
        let skip = (start - aligned) as usize;
        let len = usize::try_from(end - aligned)
            .map_err(|_| io::Error::other("file too large to map"))?;
        let offset = libc::off_t::try_from(aligned)
            .map_err(|_| io::Error::other("offset too large to map"))?;
        // SAFETY: a fresh private read-only mapping of an open file; the
        // kernel picks the address. Nothing aliases it mutably.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let Some(slot) = guard::claim(ptr as usize, len) else {
            // SAFETY: unmapping what was just mapped; nothing refers to it.
            unsafe { libc::munmap(ptr, len) };
            return Ok(None);
        };
        // SAFETY: `ptr..ptr+len` is the mapping just made. The advice only
        // tunes read-ahead; its failure changes nothing.
        unsafe { libc::madvise(ptr, len, libc::MADV_SEQUENTIAL) };
        Ok(Some(Mapping {
            ptr,
            len,
            slot,
            skip,
            released: std::cell::Cell::new(0),
        }))
    }

    /// Whether part of the file vanished while mapped (it was truncated), so
    /// [`Self::bytes`] read zeros for it.
    pub fn cut_short(&self) -> bool {
        guard::was_hit(self.slot)
    }

    /// The requested range.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `len` readable bytes for as long as `self`
        // lives, and the range stays in the file as long as the file is not
        // truncated (see the module comment).
        let all = unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) };
        &all[self.skip..]
    }

    /// Drops the pages wholly before `upto` (an offset into [`Self::bytes`])
    /// from this process's memory. They stay in the page cache, and reading
    /// them again would only fault them back in.
    pub fn release(&self, upto: usize) {
        let page = page_size() as usize;
        let end = (self.skip + upto).min(self.len);
        let end = end - end % page;
        let released = self.released.get();
        if end <= released {
            return;
        }
        // SAFETY: the range lies inside the mapping and is page-aligned. For a
        // private read-only file mapping, MADV_DONTNEED only unmaps the pages:
        // the bytes a live slice sees do not change, a later read faults the
        // same file contents back in.
        unsafe {
            libc::madvise(
                self.ptr.cast::<u8>().add(released).cast(),
                end - released,
                libc::MADV_DONTNEED,
            )
        };
        self.released.set(end);
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped (with any zero pages
        // the guard put in it), once.
        unsafe { libc::munmap(self.ptr, self.len) };
        guard::free(self.slot);
    }
}

/// The SIGBUS handler that keeps a truncated mapped file from killing csm.
///
/// Maps in use are recorded in a fixed table of atomics, the only state a
/// signal handler may safely read. A fault inside a recorded map gets a
/// private page of zeros mapped over the missing page, and the map is
/// flagged; any other SIGBUS goes to the handler that was there before (the
/// Rust runtime's, or the default action, which ends the process as usual).
mod guard {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// More maps than csm has threads reading at once; when all are taken,
    /// a file is read with `read()` instead.
    const SLOTS: usize = 64;
    /// A slot being filled in: the handler skips it.
    const FILLING: usize = usize::MAX;

    struct Slot {
        /// Start address of the map, 0 when the slot is free.
        start: AtomicUsize,
        len: AtomicUsize,
        hit: AtomicBool,
    }

    static TABLE: [Slot; SLOTS] = [const {
        Slot {
            start: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            hit: AtomicBool::new(false),
        }
    }; SLOTS];
    static PAGE: AtomicUsize = AtomicUsize::new(4096);
    /// The SIGBUS disposition before csm's, or `None` when installing failed.
    static PREVIOUS: OnceLock<Option<Previous>> = OnceLock::new();

    struct Previous(libc::sigaction);
    // SAFETY: a plain C struct of integers and function addresses, only read.
    unsafe impl Send for Previous {}
    unsafe impl Sync for Previous {}

    /// Installs the handler once per process; false if it cannot be.
    pub fn install() -> bool {
        PREVIOUS
            .get_or_init(|| {
                PAGE.store(super::page_size() as usize, Ordering::Relaxed);
                // SAFETY: sigaction with valid pointers; the new action's mask
                // is initialised with sigemptyset before use.
                unsafe {
                    let mut old: libc::sigaction = std::mem::zeroed();
                    if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) != 0 {
                        return None;
                    }
                    let mut new: libc::sigaction = std::mem::zeroed();
                    new.sa_sigaction = on_sigbus as *const () as usize;
                    new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                    libc::sigemptyset(&mut new.sa_mask);
                    // Recorded before the switch so the handler can always pass on.
                    let previous = Previous(old);
                    if libc::sigaction(libc::SIGBUS, &new, std::ptr::null_mut()) != 0 {
                        return None;
                    }
                    Some(previous)
                }
            })
            .is_some()
    }

    pub fn claim(start: usize, len: usize) -> Option<usize> {
        TABLE.iter().position(|slot| {
            if slot
                .start
                .compare_exchange(0, FILLING, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                return false;
            }
            slot.len.store(len, Ordering::SeqCst);
            slot.hit.store(false, Ordering::SeqCst);
            slot.start.store(start, Ordering::SeqCst);
            true
        })
    }

    pub fn was_hit(slot: usize) -> bool {
        TABLE[slot].hit.load(Ordering::SeqCst)
    }

    pub fn free(slot: usize) {
        TABLE[slot].start.store(0, Ordering::SeqCst);
    }

    extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
        // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
        let addr = unsafe { (*info).si_addr() } as usize;
        let page = PAGE.load(Ordering::Relaxed);
        for slot in &TABLE {
            let start = slot.start.load(Ordering::SeqCst);
            if start == 0 || start == FILLING {
                continue;
            }
            if addr >= start && addr - start < slot.len.load(Ordering::SeqCst) {
                let at = addr - addr % page;
                // SAFETY: replaces one page inside a map this process owns
                // and still uses (its slot is taken) with a private zero page.
                // mmap is a plain system call, safe to make here.
                let done = unsafe {
                    libc::mmap(
                        at as *mut libc::c_void,
                        page,
                        libc::PROT_READ,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                        -1,
                        0,
                    )
                };
                if done != libc::MAP_FAILED {
                    slot.hit.store(true, Ordering::SeqCst);
                    return;
                }
            }
        }
        pass_on(sig, info, ctx);
    }

    /// Hands a SIGBUS that is not csm's to the disposition it replaced.
    fn pass_on(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
        let previous = PREVIOUS.get().and_then(|p| p.as_ref());
        match previous {
            Some(Previous(old))
                if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN =>
            {
                // SAFETY: calling the handler that was installed for this
                // signal, with the arguments its flags say it takes.
                unsafe {
                    if old.sa_flags & libc::SA_SIGINFO != 0 {
                        let handler: extern "C" fn(
                            libc::c_int,
                            *mut libc::siginfo_t,
                            *mut libc::c_void,
                        ) = std::mem::transmute(old.sa_sigaction);
                        handler(sig, info, ctx);
                    } else {
                        let handler: extern "C" fn(libc::c_int) =
                            std::mem::transmute(old.sa_sigaction);
                        handler(sig);
                    }
                }
            }
            _ => {
                // Back to the default action: returning re-runs the faulting
                // access, which now ends the process as it would have.
                // SAFETY: sigaction with a zeroed (SIG_DFL) action.
                unsafe {
                    let mut default: libc::sigaction = std::mem::zeroed();
                    default.sa_sigaction = libc::SIG_DFL;
                    libc::sigemptyset(&mut default.sa_mask);
                    libc::sigaction(libc::SIGBUS, &default, std::ptr::null_mut());
                }
            }
        }
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|n| *n > 0).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn maps_an_unaligned_range_and_survives_release() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        f.write_all(&data).unwrap();
        let file = File::open(f.path()).unwrap();
        let m = Mapping::new(&file, 5000, 90_000).unwrap().unwrap();
        assert_eq!(m.bytes(), &data[5000..90_000]);
        m.release(40_000);
        m.release(10);
        // Released pages read back from the file.
        assert_eq!(m.bytes(), &data[5000..90_000]);
        assert!(Mapping::new(&file, 7, 7).unwrap().is_none());
        assert!(!m.cut_short());
    }

    #[test]
    fn a_file_truncated_while_mapped_reads_as_zeros_and_is_flagged() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let data = vec![b'x'; 64 * 1024];
        f.write_all(&data).unwrap();
        let file = File::open(f.path()).unwrap();
        let m = Mapping::new(&file, 0, data.len() as u64).unwrap().unwrap();
        assert_eq!(m.bytes()[100], b'x');
        f.as_file().set_len(1000).unwrap();
        // Without the guard this read kills the test process with SIGBUS.
        let tail = &m.bytes()[40_000..40_100];
        assert!(tail.iter().all(|b| *b == 0));
        assert!(m.cut_short());
        assert_eq!(m.bytes()[10], b'x');
    }
}
