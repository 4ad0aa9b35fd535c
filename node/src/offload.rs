//! Where the CPU work of one request runs: on the calling thread when it is
//! small, on tokio's blocking pool when it is large.
//!
//! Only for pure CPU work (validating, sealing, opening): work that reads the
//! database stays on the blocking pool, so an HTTP worker never waits for a
//! pooled connection or the disk.
//!
//! Sealing or opening one ordinary message takes a few hundred microseconds.
//! Handing that to the blocking pool and back costs a lock on the pool's
//! queue, a thread wake-up and a second wake-up of the caller; on a machine
//! with two cores the pool's lock was contended often enough that its waiters
//! gave their core away for ~1.4 ms on average (`perf trace`, BENCHMARKS.md,
//! fourteenth session). Work on a body of at most [`INLINE_MAX`] bytes (a
//! request or answer of up to a few hundred codes) therefore runs where it
//! is asked for; anything larger, up to a million codes, still goes to the
//! pool so it cannot hold an HTTP worker for more than about a millisecond.

use std::panic::{AssertUnwindSafe, catch_unwind};

/// The largest body whose work runs on the calling thread.
pub const INLINE_MAX: usize = 16 * 1024;

/// Runs `work` on a body of `size` bytes: here if `size` is at most
/// [`INLINE_MAX`], otherwise on the blocking pool. A panic in `work` is
/// returned as an error (as `spawn_blocking` would), not carried into the
/// caller's thread.
pub async fn cpu<T, F>(size: usize, work: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if size <= INLINE_MAX {
        catch_unwind(AssertUnwindSafe(work)).map_err(|p| panic_message(p.as_ref()))
    } else {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| e.to_string())
    }
}

/// The body size a request declares (`Content-Length`), or `usize::MAX`
/// when it declares none (a chunked body is treated as large).
pub fn declared_size(req: &actix_web::HttpRequest) -> usize {
    req.headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(usize::MAX)
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    let what = p
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    format!("the work panicked: {what}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test]
    async fn small_work_runs_here_and_large_work_elsewhere() {
        let here = std::thread::current().id();
        let small = cpu(10, std::thread::current).await.unwrap();
        assert_eq!(small.id(), here);
        let large = cpu(INLINE_MAX + 1, std::thread::current).await.unwrap();
        assert_ne!(large.id(), here);
    }

    #[tokio::test]
    async fn a_panic_is_an_error_in_both_places() {
        let small = cpu(1, || -> u8 { panic!("boom") }).await;
        assert!(small.unwrap_err().contains("boom"));
        let large = cpu(INLINE_MAX + 1, || -> u8 { panic!("boom") }).await;
        assert!(large.is_err());
    }
}
