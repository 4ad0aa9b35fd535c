//! `gsp serve`: run the node.

use super::Context;
use crate::web::{AppState, bind};
use clap::Args;

/// Arguments of `gsp serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Override [api] listen, e.g. 127.0.0.1:0 for any free port.
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
}

impl ServeArgs {
    /// Runs until interrupted (Ctrl-C or SIGTERM).
    pub fn run(&self, ctx: &Context) -> anyhow::Result<()> {
        let mut config = (*ctx.config).clone();
        if let Some(l) = self.listen {
            config.api.listen = l;
        }
        let db = ctx.open_db()?;
        let refresh_every = std::time::Duration::from_secs(config.directory.refresh_secs.max(1));
        let mut state = AppState::new(db, std::sync::Arc::new(config));
        let refresher = match ctx.config.directory.url {
            Some(_) => Some(super::directory::refresher(ctx, &state.db)?),
            None => None,
        };
        if let Some(r) = &refresher {
            state.directory = r.handle.clone();
        }
        let backend = state.db.backend();
        actix_web::rt::System::new().block_on(async move {
            if let Some(r) = refresher {
                actix_web::rt::spawn(r.run(refresh_every));
            }
            let (server, addr) = bind(state)?;
            tracing::info!(%addr, %backend, "local API listening");
            // One line on stdout that scripts and tests can wait for.
            println!("gsp: local API on http://{addr}");
            server.await
        })?;
        Ok(())
    }
}
