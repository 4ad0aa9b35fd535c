//! How the rest of the node tells delivery that messages were queued.
//!
//! Delivery runs one worker per peer while that peer has messages due (see
//! [`super::delivery`]). A message queued for a peer whose worker is running
//! only needs that worker told — it claims the message on its next turn — so
//! [`OutboxWake::queued_for`] pokes it directly; otherwise (no worker yet, or
//! the peer not known to the caller) the delivery loop is woken and reads the
//! outbox for the peers with messages due. Under load a peer's worker is
//! nearly always running, so the outbox is not read again for every message.
//!
//! Better still, a worker that found its peer's queue empty and has room
//! offers **places**: a write that queues a message for that peer takes one
//! ([`OutboxWake::place_for`]), inserts the message already claimed for this
//! instance, and hands it to the worker after the commit ([`Place::hand`]).
//! The message then needs no claim of its own — one commit less per message,
//! and no wait for it. A place not used (the write failed, or queued nothing
//! to hand) goes back to the worker when dropped. A worker with places taken
//! or messages handed to it does not retire, so nothing handed is left
//! behind; and should the process die first, the message's claim lapses and
//! it is claimed from the outbox like any other.

use crate::exchange::outbox::{Due, QueueClaim};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// How long (ms) an answer returned in the response to its request waits
/// for its receipt before it is sent on its own.
pub const RESPONSE_GRACE_MS: i64 = 10_000;

/// The worker delivering to one peer, as the rest of the node sees it.
#[derive(Default)]
pub(super) struct PeerWorker {
    /// Set (under the workers' lock) when messages became due.
    pub(super) poked: AtomicBool,
    /// Wakes the worker while it waits for deliveries in flight.
    pub(super) wake: tokio::sync::Notify,
    /// Places offered by the worker (see the module's documentation).
    offered: AtomicUsize,
    /// Places taken by writes that have not handed a message or given the
    /// place back yet.
    taken: AtomicUsize,
    /// Messages handed over, for the worker to send.
    handed: Mutex<Vec<Due>>,
}

impl PeerWorker {
    /// Offers `n` places (replacing the offer before). A place taken while
    /// the worker counted its room can leave one more offered than there is
    /// room: `in_flight_per_peer` holds to within the writes of that instant.
    pub(super) fn offer(&self, n: usize) {
        self.offered.store(n, Ordering::SeqCst);
    }

    /// Places taken and not yet handed back, and messages handed and not
    /// yet taken: the worker's room they hold.
    pub(super) fn held(&self) -> usize {
        self.taken.load(Ordering::SeqCst) + self.lock_handed().len()
    }

    /// The messages handed over since the last call.
    pub(super) fn take_handed(&self) -> Vec<Due> {
        std::mem::take(&mut *self.lock_handed())
    }

    fn lock_handed(&self) -> std::sync::MutexGuard<'_, Vec<Due>> {
        self.handed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A place with a peer's delivery worker, taken for a message about to be
/// queued: claim the message with [`Place::claim`] in the write, and give it
/// to the worker with [`Place::hand`] after the commit. Dropped unused, the
/// place goes back to the worker.
pub struct Place {
    worker: Arc<PeerWorker>,
    claim: QueueClaim,
    used: bool,
}

impl Place {
    /// The claim to queue the message with.
    pub fn claim(&self) -> &QueueClaim {
        &self.claim
    }

    /// Gives the worker the message queued with this place's claim, once
    /// its write is committed.
    pub fn hand(mut self, due: Due) {
        self.worker.lock_handed().push(due);
        self.used = true;
        self.worker.taken.fetch_sub(1, Ordering::SeqCst);
        self.worker.wake.notify_one();
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if !self.used {
            self.worker.taken.fetch_sub(1, Ordering::SeqCst);
            self.worker.offered.fetch_add(1, Ordering::SeqCst);
            self.worker.wake.notify_one();
        }
    }
}

/// Wakes delivery; shared by the API, the automatic answerer and delivery.
#[derive(Default)]
pub struct OutboxWake {
    /// Wakes the delivery loop, which reads the outbox for due peers.
    run: tokio::sync::Notify,
    /// The peers with a worker running.
    workers: Mutex<HashMap<String, Arc<PeerWorker>>>,
    /// Who claims for this process's workers, and for how long (ms): set
    /// when delivery starts; no places before that.
    claimant: OnceLock<(String, i64)>,
}

impl OutboxWake {
    /// Sets the instance name and lease (ms) that places claim with.
    pub(super) fn set_claimant(&self, instance: &str, lease_ms: i64) {
        let _ = self.claimant.set((instance.to_owned(), lease_ms));
    }

    /// A place with `peer`'s worker for a message about to be queued at
    /// `now` (ms), if one is running and has offered room.
    pub fn place_for(&self, peer: &str, now: i64) -> Option<Place> {
        let (instance, lease) = self.claimant.get()?;
        let workers = self.lock();
        let worker = workers.get(peer)?;
        worker
            .offered
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .ok()?;
        worker.taken.fetch_add(1, Ordering::SeqCst);
        Some(Place {
            worker: worker.clone(),
            claim: QueueClaim {
                instance: instance.clone(),
                until: now + lease,
                in_response: false,
            },
            used: false,
        })
    }

    /// The claim for an answer queued at `now` (ms) that goes back in the
    /// response to its request (SPEC.md §15.6): held for
    /// [`RESPONSE_GRACE_MS`], after which the answer is sent on its own
    /// unless its receipt came back meanwhile. `None` before delivery
    /// started.
    pub fn response_claim(&self, now: i64) -> Option<QueueClaim> {
        let (instance, _) = self.claimant.get()?;
        Some(QueueClaim {
            instance: instance.clone(),
            until: now + RESPONSE_GRACE_MS,
            in_response: true,
        })
    }

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

    /// Ends `peer`'s worker unless it was poked since it last looked or
    /// holds places taken or messages handed; under the same lock as the
    /// pokes and the places, so no new work is missed. A poke is left for
    /// the worker's next claim to answer: taken here, it would be lost — the
    /// worker, its queue drained, claims only when poked, and the message
    /// that poked it would wait for the delivery loop's next round.
    pub(super) fn retire(&self, peer: &str, worker: &PeerWorker) -> bool {
        let mut workers = self.lock();
        if worker.poked.load(Ordering::SeqCst) || worker.held() > 0 {
            return false;
        }
        worker.offer(0);
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
        // Poked since it last looked: it may not retire, and the poke stays
        // for its next claim (taken by a refused retirement, the message
        // that poked it waited for the delivery loop's next round).
        assert!(!wake.retire("PAK", &worker));
        assert!(worker.poked.load(Ordering::SeqCst), "the poke is kept");
        assert!(!wake.retire("PAK", &worker));
        // Its claim answers the poke; then it may retire.
        worker.poked.store(false, Ordering::SeqCst);
        assert!(wake.retire("PAK", &worker));
        // Retired: the loop is woken again.
        wake.queued_for("PAK");
        assert!(wake.run.notified().now_or_never_ready());
        // Another peer's worker is not poked for this one.
        let other = wake.poke_or_register("SEN").expect("new worker");
        wake.queued_for("PAK");
        assert!(!other.poked.load(Ordering::SeqCst));
    }

    fn due(seq: i64) -> Due {
        Due {
            seq,
            peer: "PAK".into(),
            message_id: format!("m{seq}"),
            envelope: Vec::new().into(),
            attempts: 0,
        }
    }

    #[test]
    fn places_are_taken_handed_and_given_back_and_hold_the_worker() {
        let wake = OutboxWake::default();
        let worker = wake.poke_or_register("PAK").expect("new worker");
        worker.offer(2);
        // No claimant yet (delivery not started): no places.
        assert!(wake.place_for("PAK", 1_000).is_none());
        wake.set_claimant("node-1", 40_000);
        // No worker for SEN; none offered by a worker that offers nothing.
        assert!(wake.place_for("SEN", 1_000).is_none());
        let first = wake.place_for("PAK", 1_000).expect("a place");
        assert_eq!(first.claim().instance, "node-1");
        assert_eq!(first.claim().until, 41_000);
        let second = wake.place_for("PAK", 1_000).expect("another place");
        assert!(
            wake.place_for("PAK", 1_000).is_none(),
            "only two were offered"
        );
        assert_eq!(worker.held(), 2);
        // Places held: the worker may not retire.
        assert!(!wake.retire("PAK", &worker));
        // One handed over (and the worker told), one given back unused.
        first.hand(due(7));
        assert!(worker.wake.notified().now_or_never_ready());
        drop(second);
        assert_eq!(
            worker.held(),
            1,
            "the handed message until the worker takes it"
        );
        assert!(
            wake.place_for("PAK", 1_000).is_some(),
            "the place given back is offered again"
        );
        assert!(!wake.retire("PAK", &worker));
        assert_eq!(
            worker
                .take_handed()
                .iter()
                .map(|d| d.seq)
                .collect::<Vec<_>>(),
            vec![7]
        );
        assert_eq!(worker.held(), 0);
        // Retired: its offer is withdrawn with it.
        assert!(wake.retire("PAK", &worker));
        assert!(wake.place_for("PAK", 1_000).is_none());
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
