//! Keeps memory libtorch frees for its next step instead of handing it back to the kernel.
//!
//! A CPU training step allocates and frees the same multi-megabyte activations and gradients
//! every time. With glibc's defaults, large blocks are mmap'ed and unmapped, and a free top of
//! the heap is trimmed, so every step page-faults all of its memory in again: on 2 cores the
//! MobileNetV2 step spent about half its time in the kernel (30 against 60 images/s). The price
//! is that the process keeps its peak memory, which a training run needs again at every step
//! anyway.

/// Blocks up to this size come from the heap, and the heap is trimmed only past it.
const KEEP: i32 = 1 << 30;

/// Tells glibc's malloc to reuse freed memory (see the module docs). Returns whether it took
/// the settings; other C libraries keep their own behaviour and this returns `false`.
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        set(libc::M_MMAP_THRESHOLD) && set(libc::M_TRIM_THRESHOLD)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn set(parameter: libc::c_int) -> bool {
    // SAFETY: mallopt only changes allocator tuning parameters; it takes no pointers and is
    // safe to call at any time, from any thread.
    unsafe { libc::mallopt(parameter, KEEP) == 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_takes_the_settings() {
        assert!(keep_freed_memory());
        // Allocation still works, large blocks included.
        let block = vec![1u8; 64 << 20];
        assert_eq!(
            block.iter().map(|&b| usize::from(b)).sum::<usize>(),
            64 << 20
        );
    }
}
