//! The node's local HTTP API (officers' web application and scripts), served
//! by `gsp serve` on `[api] listen`, 127.0.0.1 by default.
//!
//! One file per endpoint group; errors are JSON with a stable code and a
//! sentence (`error.rs`). Database work runs off the async executor through
//! `Database::run`. Not for: federation traffic between nodes, which has its
//! own mutually authenticated listener.

pub mod auth;
pub mod cases;
pub mod codes;
pub mod error;
pub mod events;
pub mod health;
pub mod metrics;
pub mod session_cache;
pub mod users;
pub mod whois;

use crate::config::Config;
use crate::storage::Database;
use actix_web::{App, HttpServer, web};
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The node's database.
    pub db: Database,
    /// The node's configuration.
    pub config: Arc<Config>,
    /// Identity and directory view, when this node takes part in federation.
    pub federation: Option<Arc<crate::federation::Federation>>,
    /// Wakes the delivery workers when something is queued.
    pub outbox_wake: Arc<crate::federation::wake::OutboxWake>,
    /// Counters served at `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The verified directory copy (empty until one is fetched).
    pub directory: crate::directory::DirectoryHandle,
    /// Sessions recently found live (see [`session_cache`]).
    pub sessions: Arc<session_cache::SessionCache>,
}

impl AppState {
    /// State for a node without federation (data store and officers only).
    pub fn new(db: Database, config: Arc<Config>) -> AppState {
        AppState {
            db,
            config,
            federation: None,
            outbox_wake: Default::default(),
            metrics: Arc::new(crate::metrics::Metrics::default()),
            directory: Default::default(),
            sessions: Default::default(),
        }
    }

    /// Tells delivery that a message was queued for `peer`.
    pub fn wake_outbox_for(&self, peer: gsp_federation::PartyCode) {
        self.outbox_wake.queued_for(peer.as_str());
    }

    /// Tells delivery that messages were queued.
    pub fn wake_outbox(&self) {
        self.outbox_wake.queued();
    }
}

/// Registers the API's routes and body limits on an actix `App`.
pub fn configure(cfg: &mut web::ServiceConfig, state: AppState) {
    let limit = state.config.api.max_body_bytes;
    cfg.app_data(web::Data::new(state))
        .app_data(
            web::JsonConfig::default()
                .limit(limit)
                .error_handler(error::json_error_handler),
        )
        .app_data(web::QueryConfig::default().error_handler(error::query_error_handler))
        .service(health::health)
        .service(metrics::metrics)
        .service(auth::login)
        .service(auth::logout)
        .service(auth::me)
        .service(users::list)
        .service(users::create)
        .service(cases::list)
        .service(cases::compose)
        .service(cases::draft_answer)
        .service(cases::detail)
        .service(cases::answer)
        .service(cases::approve)
        .service(cases::close)
        .service(cases::message_body)
        .service(cases::export)
        .service(codes::get_code)
        .service(codes::lookup)
        .service(events::get_events)
        .service(whois::whois);
}

/// Binds the local API and returns the running server (await it to serve).
pub fn bind(state: AppState) -> std::io::Result<(actix_web::dev::Server, std::net::SocketAddr)> {
    let listen = state.config.api.listen;
    let workers = state.config.api.workers;
    let blocking = state.config.api.blocking_threads.max(1);
    let mut server = HttpServer::new(move || {
        let state = state.clone();
        App::new()
            .wrap(actix_web::middleware::Logger::new("%a \"%r\" %s %b %Dms").log_target("gsp::api"))
            .configure(move |cfg| configure(cfg, state))
    });
    if workers > 0 {
        server = server.workers(workers);
    }
    // tokio's default (512 per worker) let a busy node run ~140 threads
    // that mostly competed for the same cores (BENCHMARKS.md).
    let server = server.worker_max_blocking_threads(blocking).bind(listen)?;
    let addr = server.addrs().first().copied().unwrap_or(listen);
    Ok((server.run(), addr))
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
