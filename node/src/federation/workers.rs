//! The background work of a running node besides serving HTTP: answering
//! requests under the automatic policy as they arrive.

use super::Federation;
use crate::config::Config;
use crate::exchange::auto;
use crate::storage::Database;
use std::sync::Arc;
use std::time::Duration;

/// Answers automatic-policy requests: woken by `arrivals` (and every two
/// seconds, which also picks up work left by a crash), wakes `outbox` when
/// it queued answers.
pub async fn automatic_answers(
    db: Database,
    config: Arc<Config>,
    federation: Arc<Federation>,
    arrivals: Arc<tokio::sync::Notify>,
    outbox: Arc<tokio::sync::Notify>,
    metrics: Arc<crate::metrics::Metrics>,
) {
    loop {
        tokio::select! {
            _ = arrivals.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        let (fed, settings) = (federation.clone(), config.exchange.clone());
        let answered = db
            .run(move |conn| {
                let sealer = fed.sealer();
                auto::answer_pending(conn, &sealer, &settings)
                    .map_err(|e| crate::storage::StorageError::Task(e.to_string()))
            })
            .await;
        match answered {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(count = n, "requests answered automatically");
                metrics.automatic_answers(n as u64);
                outbox.notify_one();
            }
            Err(e) => tracing::error!(error = %e, "automatic answers failed"),
        }
    }
}
