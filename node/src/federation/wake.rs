//! How the rest of the node tells delivery that messages were queued.
//!
//! Delivery runs one worker per peer while that peer has messages due (see
//! [`super::delivery`]). A message queued for a peer whose worker is running
//! only needs that worker told — it claims the message on its next turn — so
//! [`OutboxWake::queued_for`] pokes it directly; otherwise (no worker yet, or
//! the peer not known to the caller) the delivery loop is woken and reads the
//! outbox for the peers with messages due. Under load a peer's worker is
//! nearly always running, so the outbox is not read again for every message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The worker delivering to one peer, as the rest of the node sees it.
#[derive(Default)]
pub(super) struct PeerWorker {
    /// Set (under the workers' lock) when messages became due.
    pub(super) poked: AtomicBool,
    /// Wakes the worker while it waits for deliveries in flight.
    pub(super) wake: tokio::sync::Notify,
}

/// Wakes delivery; shared by the API, the automatic answerer and delivery.
#[derive(Default)]
pub struct OutboxWake {
    /// Wakes the delivery loop, which reads the outbox for due peers.
    run: tokio::sync::Notify,
    /// The peers with a worker running.
    workers: Mutex<HashMap<String, Arc<PeerWorker>>>,
}

impl OutboxWake {
    /// Messages were queued, for peers not named.
    pub fn queued(&self) {
        self.run.notify_one();
    }

    /// Messages were queued for `peer`.
    pub fn queued_for(&self, peer: &str) {
        let workers = self.lock();
        if let Some(worker) = workers.get(peer) {
            worker.poked.store(true, Ordering::SeqCst);
            worker.wake.notify_one();
            return;
        }
        drop(workers);
        self.run.notify_one();
    }

    /// Waits until woken by [`Self::queued`] or [`Self::queued_for`] (a wake
    /// while nobody waits is kept for the next wait).
    pub(super) async fn notified(&self) {
        self.run.notified().await;
    }

    /// Tells `peer`'s running worker that more is due, or registers a new
    /// worker for it and returns it (the caller starts it).
    pub(super) fn poke_or_register(&self, peer: &str) -> Option<Arc<PeerWorker>> {
        let mut workers = self.lock();
        if let Some(worker) = workers.get(peer) {
            worker.poked.store(true, Ordering::SeqCst);
            worker.wake.notify_one();
            return None;
        }
        let worker = Arc::new(PeerWorker::default());
        workers.insert(peer.to_owned(), worker.clone());
        Some(worker)
    }

    /// Ends `peer`'s worker unless it was poked since it last looked; under
    /// the same lock as the pokes, so no new work is missed.
    pub(super) fn retire(&self, peer: &str, worker: &PeerWorker) -> bool {
        let mut workers = self.lock();
        if worker.poked.swap(false, Ordering::SeqCst) {
            return false;
        }
        workers.remove(peer);
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<PeerWorker>>> {
        self.workers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_worker_is_poked_and_a_missing_one_wakes_the_loop() {
        let wake = OutboxWake::default();
        // No worker: the loop is woken (the permit is kept).
        wake.queued_for("PAK");
        assert!(wake.run.notified().now_or_never_ready());
        // A worker registered: poked, the loop not woken.
        let worker = wake.poke_or_register("PAK").expect("new worker");
        wake.queued_for("PAK");
        assert!(worker.poked.load(Ordering::SeqCst));
        assert!(!wake.run.notified().now_or_never_ready());
        // Poked since it last looked: it may not retire; then it may.
        assert!(!wake.retire("PAK", &worker));
        assert!(wake.retire("PAK", &worker));
        // Retired: the loop is woken again.
        wake.queued_for("PAK");
        assert!(wake.run.notified().now_or_never_ready());
        // Another peer's worker is not poked for this one.
        let other = wake.poke_or_register("SEN").expect("new worker");
        wake.queued_for("PAK");
        assert!(!other.poked.load(Ordering::SeqCst));
    }

    /// Polls a future once.
    trait Ready {
        fn now_or_never_ready(self) -> bool;
    }

    impl<F: std::future::Future> Ready for F {
        fn now_or_never_ready(self) -> bool {
            use futures_util::FutureExt as _;
            self.now_or_never().is_some()
        }
    }
}
