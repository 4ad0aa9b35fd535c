//! The officers of `gsp bench exchange`'s latency step: requests composed
//! through the requesting node's API one by one at random moments (open
//! loop, Poisson arrivals), on a thread of their own.
//!
//! The load generator shares the two cores with the nodes it measures, so
//! what it costs is taken from them. On the bench's two-worker runtime each
//! request crossed threads several times (the timer on one worker, the
//! connection on another, the task that notes the send time on a third); one
//! thread with its own single-threaded runtime does the same work without
//! those wake-ups.

use super::lab::Api;
use rand::{RngExt as _, SeedableRng as _};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sends `total` requests at `rate` per second on average through `api`,
/// each made by `compose` from its number, on a thread of its own; the
/// thread's result is, per case the node created, when its request was sent.
pub(super) fn send<C, CF>(
    rate: f64,
    total: usize,
    api: Api,
    compose: C,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<HashMap<String, Instant>>>>
where
    C: Fn(Arc<Api>, usize) -> CF + Send + 'static,
    CF: Future<Output = anyhow::Result<String>> + Send + 'static,
{
    Ok(std::thread::Builder::new()
        .name("bench-officers".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(open_loop(rate, total, Arc::new(api), compose))
        })?)
}

/// The open loop: exponential gaps from a fixed seed, so that requests come
/// one by one as officers' would (not in bursts on a timer tick), each sent
/// at its time whatever the earlier ones are doing.
async fn open_loop<C, CF>(
    rate: f64,
    total: usize,
    api: Arc<Api>,
    compose: C,
) -> anyhow::Result<HashMap<String, Instant>>
where
    C: Fn(Arc<Api>, usize) -> CF,
    CF: Future<Output = anyhow::Result<String>> + Send + 'static,
{
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    let started = tokio::time::Instant::now();
    let mut at = 0.0f64;
    let mut pending = Vec::with_capacity(total);
    for n in 0..total {
        let u: f64 = rng.random_range(f64::EPSILON..1.0);
        at += -u.ln() / rate;
        tokio::time::sleep_until(started + Duration::from_secs_f64(at)).await;
        let request = compose(api.clone(), n);
        pending.push(tokio::spawn(async move {
            let sent = Instant::now();
            request.await.map(|case| (case, sent))
        }));
    }
    let mut sent = HashMap::with_capacity(total);
    for p in pending {
        let (case, at) = p.await??;
        sent.insert(case, at);
    }
    Ok(sent)
}
