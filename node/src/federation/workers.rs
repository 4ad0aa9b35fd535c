//! The background work of a running node besides serving HTTP: answering
//! requests under the automatic policy as they arrive.

use super::Federation;
use crate::config::Config;
use crate::exchange::auto;
use crate::storage::Database;
use std::sync::Arc;
use std::time::Duration;

/// Requests drafted and answered together at most.
const BATCH: i64 = 200;

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
        // Draft and seal with a reading connection, then store the answers
        // in one write (one commit for many small answers).
        let (fed, settings) = (federation.clone(), config.exchange.clone());
        let drafted = db
            .run(move |conn| {
                auto::draft_pending(conn, &fed.sealer(), &settings, BATCH)
                    .map_err(|e| crate::storage::StorageError::Task(e.to_string()))
            })
            .await;
        let answered = match drafted {
            Ok(d) if d.is_empty() => Ok(0),
            Ok(d) => {
                let more = d.len() as i64 >= BATCH;
                let sent = db
                    .write(move |conn| {
                        Ok::<_, crate::storage::StorageError>(auto::send_drafted(conn, d))
                    })
                    .await;
                if more {
                    // A full batch: there may be more waiting right now.
                    arrivals.notify_one();
                }
                sent
            }
            Err(e) => Err(e),
        };
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
