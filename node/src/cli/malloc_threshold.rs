//! A fixed malloc mmap threshold, so that large buffers go back to the
//! system when they are freed.
//!
//! glibc serves allocations above its mmap threshold (128 KiB at start) with
//! their own mappings, returned to the system on `free`; but each time such a
//! buffer is freed it raises the threshold to that buffer's size (up to
//! 32 MiB). A node handles envelopes, code lists and result files of tens of
//! MiB, so after the first large exchange those buffers come from the heap
//! arenas of the thread that made them and stay resident after they are
//! freed: measured on a 10-million-pack node answering a 1,000,000-code
//! verification, the peak RSS was 312 MB with glibc's sliding threshold and
//! 286 MB with a fixed one (see BENCHMARKS.md).
//!
//! The threshold can be fixed only before the first allocation, through the
//! environment variable `MALLOC_MMAP_THRESHOLD_` (any value fixes it), so
//! the process re-executes itself once with the variable set — same process
//! id, arguments, standard streams and environment otherwise. An operator who
//! sets the variable (to any value) is left alone, and so is a build for
//! another C library.

/// The variable glibc reads at start.
const VAR: &str = "MALLOC_MMAP_THRESHOLD_";
/// glibc's own starting threshold, kept fixed.
const THRESHOLD: &str = "131072";

/// Re-executes this program with a fixed mmap threshold unless it already has
/// one; returns (and the program carries on as it is) when that is not
/// possible.
pub fn fix() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) || std::env::var_os(VAR).is_some() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt as _;
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut args = std::env::args_os();
        let mut command = std::process::Command::new(exe);
        if let Some(arg0) = args.next() {
            command.arg0(arg0);
        }
        // `exec` returns only if it failed; then run as we are.
        let error = command.args(args).env(VAR, THRESHOLD).exec();
        eprintln!(
            "note: running with glibc's default malloc threshold ({VAR} not applied: {error})"
        );
    }
}
