//! Each calling Party's share of the federation listener (SPEC.md §15.2,
//! `rate_limited`).
//!
//! Every caller is pinned in the directory, but one Party's node —
//! misconfigured, compromised, or simply far busier than the others — must
//! not take the whole listener: its requests would hold every HTTP worker,
//! blocking thread and database connection, and its bodies (up to 64 MiB
//! each) the memory. So every request to a federation endpoint counts
//! against its Party's share, checked as soon as the client certificate has
//! named the Party and before any body is read:
//!
//! - requests in flight at once (`[federation] peer_max_in_flight`);
//! - bytes of request bodies in flight at once (`peer_max_in_flight_bytes`;
//!   a body without a declared length counts as the endpoint's largest). A
//!   request is always let in when none of the Party's is in flight, so one
//!   body larger than the share still gets through, alone;
//! - optionally, a sustained rate (`peer_requests_per_second`, a token
//!   bucket holding one second's worth).
//!
//! A request over its Party's share is refused with HTTP 429 `rate_limited`
//! and `Retry-After`, before anything is read or stored; a sender retries
//! it with its back-off, not before that wait (SPEC.md §15.2, §15.4). Other
//! Parties are not affected.

use crate::config::FederationSettings;
use gsp_federation::PartyCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// What one Party is using now.
#[derive(Debug)]
struct Share {
    /// Requests admitted and not yet finished.
    in_flight: usize,
    /// Their declared body bytes.
    bytes: usize,
    /// Requests the token bucket allows now (when a rate is set).
    tokens: f64,
    /// When `tokens` was last topped up.
    topped_up: Instant,
}

/// Why a request was refused: the sentence for the error body. The caller
/// may try again a second later (`Retry-After: 1`): a request in flight
/// usually ends sooner, and the bucket gains a request at least every second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// Seconds a refused caller is asked to wait.
pub const RETRY_AFTER_SECS: u64 = 1;

/// The limits of every calling Party on one listener.
#[derive(Debug)]
pub struct PeerLimits {
    max_in_flight: usize,
    max_bytes: usize,
    /// Requests per second; 0: no rate limit.
    rate: u32,
    shares: Mutex<HashMap<PartyCode, Share>>,
}

/// A request admitted against its Party's share; gives the share back when
/// dropped, however the handler ends.
#[derive(Debug)]
#[must_use = "the request counts against its Party only while the permit lives"]
pub struct Permit {
    limits: Arc<PeerLimits>,
    party: PartyCode,
    bytes: usize,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut shares = self.limits.lock();
        if let Some(s) = shares.get_mut(&self.party) {
            s.in_flight = s.in_flight.saturating_sub(1);
            s.bytes = s.bytes.saturating_sub(self.bytes);
        }
    }
}

impl PeerLimits {
    /// The limits configured in `[federation]`.
    pub fn new(settings: &FederationSettings) -> Arc<PeerLimits> {
        PeerLimits::with(
            settings.peer_max_in_flight,
            settings.peer_max_in_flight_bytes,
            settings.peer_requests_per_second,
        )
    }

    /// Limits of `max_in_flight` requests and `max_bytes` body bytes at once
    /// per Party, and `rate` requests per second (0: none).
    pub fn with(max_in_flight: usize, max_bytes: usize, rate: u32) -> Arc<PeerLimits> {
        Arc::new(PeerLimits {
            max_in_flight: max_in_flight.max(1),
            max_bytes,
            rate,
            shares: Mutex::new(HashMap::new()),
        })
    }

    /// The shares; a panic elsewhere while holding the lock left only
    /// counters behind, which stay usable.
    fn lock(&self) -> MutexGuard<'_, HashMap<PartyCode, Share>> {
        self.shares.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a request of `party` with a body of `bytes` at `now`, or says
    /// why not. Nothing is counted for a refused request.
    pub fn admit(
        self: &Arc<Self>,
        party: PartyCode,
        bytes: usize,
        now: Instant,
    ) -> Result<Permit, Refusal> {
        let mut shares = self.lock();
        let share = shares.entry(party).or_insert_with(|| Share {
            in_flight: 0,
            bytes: 0,
            tokens: f64::from(self.rate),
            topped_up: now,
        });
        if share.in_flight >= self.max_in_flight {
            return Err(Refusal(format!(
                "{} has {} requests in progress here, this node's limit per Party",
                party.as_str(),
                share.in_flight
            )));
        }
        if share.in_flight > 0 && share.bytes.saturating_add(bytes) > self.max_bytes {
            return Err(Refusal(format!(
                "{} has {} bytes of requests in progress here; {bytes} more would pass this node's limit per Party of {}",
                party.as_str(),
                share.bytes,
                self.max_bytes
            )));
        }
        if self.rate > 0 {
            let rate = f64::from(self.rate);
            let elapsed = now.saturating_duration_since(share.topped_up);
            share.tokens = (share.tokens + elapsed.as_secs_f64() * rate).min(rate);
            share.topped_up = now;
            if share.tokens < 1.0 {
                return Err(Refusal(format!(
                    "{} sent more than this node's limit of {} requests per second per Party",
                    party.as_str(),
                    self.rate
                )));
            }
            share.tokens -= 1.0;
        }
        share.in_flight += 1;
        share.bytes = share.bytes.saturating_add(bytes);
        Ok(Permit {
            limits: Arc::clone(self),
            party,
            bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::time::Duration;

    fn party(code: &str) -> PartyCode {
        PartyCode::parse(code).unwrap()
    }

    #[test]
    fn requests_in_flight_are_limited_per_party_and_given_back() {
        let limits = PeerLimits::with(2, usize::MAX, 0);
        let now = Instant::now();
        let a = limits.admit(party("KEN"), 10, now).unwrap();
        let _b = limits.admit(party("KEN"), 10, now).unwrap();
        let refused = limits.admit(party("KEN"), 10, now).unwrap_err();
        assert!(refused.0.contains("KEN has 2 requests"), "{refused:?}");
        // Another Party has its own share.
        let _c = limits.admit(party("PAK"), 10, now).unwrap();
        drop(a);
        let _d = limits.admit(party("KEN"), 10, now).unwrap();
    }

    #[test]
    fn body_bytes_in_flight_are_limited_but_one_request_always_fits() {
        let limits = PeerLimits::with(100, 1000, 0);
        let now = Instant::now();
        // Larger than the share, but alone: let in.
        let big = limits.admit(party("KEN"), 5000, now).unwrap();
        let refused = limits.admit(party("KEN"), 1, now).unwrap_err();
        assert!(refused.0.contains("5000 bytes"), "{refused:?}");
        drop(big);
        let a = limits.admit(party("KEN"), 600, now).unwrap();
        assert!(limits.admit(party("KEN"), 600, now).is_err());
        let _b = limits.admit(party("KEN"), 400, now).unwrap();
        drop(a);
        let _c = limits.admit(party("KEN"), 600, now).unwrap();
    }

    #[test]
    fn the_rate_allows_a_second_s_worth_then_refills() {
        let limits = PeerLimits::with(1000, usize::MAX, 4);
        let t0 = Instant::now();
        for _ in 0..4 {
            drop(limits.admit(party("KEN"), 0, t0).unwrap());
        }
        let refused = limits.admit(party("KEN"), 0, t0).unwrap_err();
        assert!(refused.0.contains("4 requests per second"), "{refused:?}");
        // A refused request took no token: a quarter second later one is back.
        drop(
            limits
                .admit(party("KEN"), 0, t0 + Duration::from_millis(250))
                .unwrap(),
        );
        assert!(
            limits
                .admit(party("KEN"), 0, t0 + Duration::from_millis(260))
                .is_err()
        );
        // The bucket holds one second's worth, however long the pause.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..4 {
            drop(limits.admit(party("KEN"), 0, later).unwrap());
        }
        assert!(limits.admit(party("KEN"), 0, later).is_err());
        // Other Parties are not affected.
        drop(limits.admit(party("PAK"), 0, t0).unwrap());
    }
}
