//! The background work of a running node besides serving HTTP: answering
//! the requests under the automatic policy that were not answered as they
//! arrived (large ones, codes in an attachment, after a crash), and
//! discarding attachments whose request can no longer arrive.

use super::Federation;
use crate::config::Config;
use crate::data::query::bulk::LookupCache;
use crate::exchange::{auto, orphans};
use crate::storage::Database;
use std::sync::Arc;
use std::time::Duration;

/// Requests drafted and answered together at most.
const BATCH: i64 = 200;

/// Answers automatic-policy requests: woken by `arrivals` (and every two
/// seconds, which also picks up work left by a crash), wakes `outbox` when
/// it queued answers. Requests that cannot be answered from the data are
/// handed to officers.
pub async fn automatic_answers(
    db: Database,
    config: Arc<Config>,
    federation: Arc<Federation>,
    arrivals: Arc<tokio::sync::Notify>,
    outbox: Arc<super::wake::OutboxWake>,
    metrics: Arc<crate::metrics::Metrics>,
) {
    // Where the next pass starts: after the last request of a full pass, so
    // that requests still waiting (for an attachment, say) never hold up the
    // ones behind them; from the oldest again once a pass reaches the end.
    let mut cursor: Option<auto::Cursor> = None;
    loop {
        if cursor.is_none() {
            tokio::select! {
                _ = arrivals.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
        // Draft and seal with a reading connection, then store the answers
        // in one write (one commit for many small answers).
        let (fed, settings, after) = (federation.clone(), config.exchange.clone(), cursor.take());
        let spare = LookupCache::with_spare(db.clone());
        let drafted = db
            .run(move |conn| {
                auto::draft_pending_with(
                    conn,
                    &fed.sealer(),
                    &settings,
                    after.as_ref(),
                    BATCH,
                    spare,
                )
                .map_err(|e| crate::storage::StorageError::Task(e.to_string()))
            })
            .await;
        let answered = match drafted {
            Ok(auto::Pending {
                prepared,
                unanswerable,
                next,
            }) => {
                cursor = next;
                if prepared.is_empty() && unanswerable.is_empty() {
                    Ok(0)
                } else {
                    db.write(move |conn| {
                        auto::hand_to_officers(conn, &unanswerable);
                        Ok::<_, crate::storage::StorageError>(auto::send_drafted(conn, prepared))
                    })
                    .await
                }
            }
            Err(e) => Err(e),
        };
        match answered {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(count = n, "requests answered automatically");
                metrics.automatic_answers(n as u64);
                outbox.queued();
            }
            Err(e) => tracing::error!(error = %e, "automatic answers failed"),
        }
    }
}

/// How often [`housekeeping`] looks for expired placeholders.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(3600);

/// Once at start and then every hour: deletes the placeholder cases whose
/// attachments' request can no longer arrive ([`orphans`]), logging each.
pub async fn housekeeping(db: Database) {
    loop {
        let now = crate::exchange::store::now_ms();
        let due = db
            .run(move |conn| {
                orphans::any_expired(conn, now).map_err(crate::storage::StorageError::from)
            })
            .await;
        let discarded = match due {
            Ok(true) => {
                db.write(move |conn| {
                    orphans::discard_expired(conn, now).map_err(crate::storage::StorageError::from)
                })
                .await
            }
            Ok(false) => Ok(Vec::new()),
            Err(e) => Err(e),
        };
        match discarded {
            Ok(discarded) => {
                for d in discarded {
                    tracing::warn!(
                        case_id = %d.case_id,
                        from = %d.from,
                        attachments = d.attachments,
                        bytes = d.bytes,
                        arrived_at = d.arrived_at,
                        "attachments discarded: their request did not arrive within the message lifetime"
                    );
                }
            }
            Err(e) => tracing::error!(error = %e, "discarding expired attachments failed"),
        }
        tokio::time::sleep(HOUSEKEEPING_EVERY).await;
    }
}
