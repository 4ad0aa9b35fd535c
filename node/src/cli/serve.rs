//! `gsp serve`: run the node — the local API for officers, and, when the
//! node has an identity (`gsp certs init`) and a directory, the federation
//! listener, the delivery workers, automatic answers and the directory
//! refresh.

use super::Context;
use crate::data::query::bulk::LookupCaches;
use crate::exchange::auto;
use crate::exchange::outbox;
use crate::federation::delivery::Delivery;
use crate::federation::instance::InstanceSlot;
use crate::federation::peer_limits::PeerLimits;
use crate::federation::server::{self as fed_server, FederationState};
use crate::federation::{Federation, NodeIdentity, Peers, workers};
use crate::web::{AppState, bind};
use clap::Args;
use std::sync::Arc;

/// Arguments of `gsp serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Override [api] listen, e.g. 127.0.0.1:0 for any free port.
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// Override [federation] listen, e.g. 127.0.0.1:0 for any free port.
    #[arg(long, value_name = "ADDR")]
    federation_listen: Option<std::net::SocketAddr>,
}

impl ServeArgs {
    /// Runs until interrupted (Ctrl-C or SIGTERM).
    pub fn run(&self, ctx: &Context) -> anyhow::Result<()> {
        let mut config = (*ctx.config).clone();
        if let Some(l) = self.listen {
            config.api.listen = l;
        }
        if let Some(l) = self.federation_listen {
            config.federation.listen = Some(l);
        }
        let config = Arc::new(config);
        crate::tls::install_default_provider();
        let db = ctx.open_db()?;
        let refresh_every = std::time::Duration::from_secs(config.directory.refresh_secs.max(1));
        let mut state = AppState::new(db, config.clone());
        let refresher = match ctx.config.directory.url {
            Some(_) => Some(super::directory::refresher(ctx, &state.db)?),
            None => None,
        };
        if let Some(r) = &refresher {
            state.directory = r.handle.clone();
        }

        // Federation needs our keys and the directory.
        let keys = NodeIdentity::default_dir(&ctx.data_dir);
        let federation = match (keys.join("identity.json").exists(), &refresher) {
            (true, Some(_)) => {
                let identity = NodeIdentity::load(&keys)
                    .map_err(|e| anyhow::anyhow!("loading this node's keys: {e}"))?;
                let peers: Arc<dyn Peers> = Arc::new(state.directory.clone());
                Some(Arc::new(Federation { identity, peers }))
            }
            (true, None) => {
                tracing::warn!(
                    "no [directory] url configured: federation is off (the node cannot find or verify other Parties)"
                );
                None
            }
            (false, _) => {
                tracing::warn!(keys = %keys.display(), "no node identity (gsp certs init): federation is off");
                None
            }
        };
        state.federation = federation.clone();
        let backend = state.db.backend();
        // Held (locked) until the process ends; see `federation::instance`.
        let (instance, _slot) = instance_name(ctx, &state.db)?;
        // Made here, outside the actix system, so that it is also shut down
        // outside it once the listeners stop.
        let delivery_rt = match &federation {
            Some(_) => Some(delivery_runtime(&config)?),
            None => None,
        };
        let federation = federation.zip(delivery_rt.as_ref().map(|rt| rt.handle().clone()));
        actix_web::rt::System::new().block_on(async move {
            if let Some(r) = refresher {
                actix_web::rt::spawn(r.run(refresh_every));
            }
            let outbox_wake = state.outbox_wake.clone();
            let metrics = state.metrics.clone();
            let db = state.db.clone();
            let (api, addr) = bind(state)?;
            tracing::info!(%addr, %backend, "local API listening");
            // Lines on stdout that scripts and tests can wait for.
            println!("gsp: local API on http://{addr}");
            let mut servers = vec![api];
            if let Some((fed, delivery_on)) = federation {
                let arrivals = Arc::new(tokio::sync::Notify::new());
                if config.federation.listen.is_some() {
                    let fstate = FederationState {
                        db: db.clone(),
                        config: config.clone(),
                        federation: fed.clone(),
                        arrivals: arrivals.clone(),
                        outbox: outbox_wake.clone(),
                        lookups: Arc::new(LookupCaches::new(auto::LOOKUP_CACHE_AGE)),
                        metrics: metrics.clone(),
                        limits: PeerLimits::new(&config.federation),
                    };
                    let (server, faddr) = fed_server::bind(fstate).map_err(std::io::Error::other)?;
                    tracing::info!(addr = %faddr, party = %fed.identity.party, "federation listening (mutual TLS 1.3)");
                    println!("gsp: federation on https://{faddr}");
                    servers.push(server);
                } else {
                    tracing::warn!("no [federation] listen address: this node sends but cannot receive");
                }
                let delivery = Delivery::new(db.clone(), config.clone(), fed.clone(), instance, metrics.clone(), outbox_wake.clone());
                delivery_on.spawn(delivery.run());
                actix_web::rt::spawn(workers::housekeeping(db.clone()));
                actix_web::rt::spawn(workers::automatic_answers(db, config.clone(), fed, arrivals, outbox_wake, metrics));
            }
            futures_util::future::try_join_all(servers).await.map(|_| ())
        })?;
        if let Some(rt) = delivery_rt {
            // Deliveries under way are let go: their messages stay claimed
            // in the outbox until their leases run out, or until this
            // instance starts again and releases its own claims.
            rt.shutdown_background();
        }
        Ok(())
    }
}

/// The runtime the delivery workers run on: `[exchange] delivery_threads`
/// worker threads (one per CPU core when 0), beside the listeners' workers.
///
/// Sending a message, checking its receipt and opening the answer that comes
/// back in the response (SPEC §15.6) are the requesting node's share of an
/// exchange; on the actix system's single thread they were all serialised,
/// which left a core idle while a busy node's outbox drained (BENCHMARKS.md,
/// twenty-second session).
fn delivery_runtime(config: &crate::config::Config) -> std::io::Result<tokio::runtime::Runtime> {
    let threads = match config.exchange.delivery_threads {
        0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        n => n,
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .max_blocking_threads(config.federation.blocking_threads.max(1))
        .thread_name("gsp-delivery")
        .enable_all()
        .build()
}

/// This instance's name in the outbox's claims, kept in the data folder
/// (`instance-N.id`) from one run to the next, and the slot that holds it
/// (keep it for as long as the process serves). When the name is an earlier
/// run's, the claims that run left on pending messages are released now:
/// its attempts died with it, and the messages are due again at once
/// instead of when their leases run out. A data folder that cannot hold a
/// slot (read-only, say) is named in a warning and the instance gets a name
/// for this run only: its claims, should it crash, lapse with their leases.
fn instance_name(
    ctx: &Context,
    db: &crate::storage::Database,
) -> anyhow::Result<(String, Option<InstanceSlot>)> {
    let slot = match InstanceSlot::acquire(&ctx.data_dir) {
        Ok(slot) => slot,
        Err(e) => {
            let name = format!(
                "{}-run-{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            );
            tracing::warn!(error = %e, instance = %name, "cannot keep this instance's name in the data folder; after a crash its outbox claims lapse with their leases");
            return Ok((name, None));
        }
    };
    if slot.reused() {
        let mut conn = db.conn()?;
        let released = outbox::release_claims(&mut conn, slot.name())?;
        if released > 0 {
            tracing::info!(
                instance = slot.name(),
                count = released,
                "released the outbox claims of this instance's previous run; those messages are due now"
            );
        }
    }
    tracing::info!(instance = slot.name(), file = %slot.path().display(), "outbox instance name");
    Ok((slot.name().to_owned(), Some(slot)))
}
