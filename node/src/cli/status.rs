//! `gsp status`: the node's health at a glance — directory copy (checkpoint,
//! freshness, validity left, last refresh), the outbox (pending, on its way
//! and by which instance, failed, cancelled), the database's size on disk
//! (SQLite: file, WAL, index, free pages), open alarms and alarm counters.
//!
//! Exit status: 0 when healthy; 2 when an alarm is open, or when `[directory]`
//! is configured and the node has no valid copy (missing or expired); 1 on
//! an error running the command. `--ack ID` acknowledges an alarm.

use super::Context;
use crate::directory::alarms;
use crate::directory::client::cache;
use crate::directory::client::fetch::hex32;
use clap::Args;
use gsp_certs::format_instant;
use gsp_federation::UnixMillis;
use gsp_federation::keys::VerifyingKey;

/// Arguments of `gsp status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Acknowledge the alarm with this id (it stays in the history).
    #[arg(long, value_name = "ID")]
    ack: Option<i64>,
}

fn human(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

impl StatusArgs {
    /// Prints the status; returns whether the node is healthy.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<bool> {
        let db = ctx.open_db()?;
        let now = UnixMillis::now();
        let mut conn = db.conn()?;
        if let Some(id) = self.ack {
            if !alarms::acknowledge(&mut conn, id, now)? {
                anyhow::bail!("no open alarm with id {id}");
            }
            println!("Alarm {id} acknowledged.");
        }
        let open = alarms::open(&mut conn)?;
        let counts = alarms::counts(&mut conn)?;
        let outbox =
            crate::exchange::outbox::summary(&mut conn, i64::try_from(now.0).unwrap_or(i64::MAX))?;
        let size = db.size_on_disk()?;
        let settings = &ctx.config.directory;
        let mut healthy = open.is_empty();
        let mut dir = serde_json::Value::Null;
        let mut lines = Vec::new();
        if settings.url.is_some() {
            let key = VerifyingKey(hex32(
                "secretariat_key",
                settings.secretariat_key.as_deref(),
            )?);
            let refresh = cache::load_status(&ctx.data_dir);
            match cache::load(&ctx.data_dir, &key) {
                Ok(Some(copy)) => {
                    let c = copy.checkpoint();
                    let usable = copy.usable(now);
                    healthy &= usable.is_ok();
                    let left = copy.snapshot.valid_until.0.saturating_sub(now.0);
                    lines.push(format!(
                        "Directory {}:",
                        settings.url.as_deref().unwrap_or_default()
                    ));
                    lines.push(format!(
                        "  checkpoint: {} entries, root {}, signed {}",
                        c.size,
                        hex::encode(c.root),
                        format_instant(c.time)
                    ));
                    lines.push(format!(
                        "  fetched {} ({} ago); {} Parties in service",
                        format_instant(copy.fetched_at),
                        human(now.0.saturating_sub(copy.fetched_at.0)),
                        copy.active_parties().len()
                    ));
                    match &usable {
                        Ok(()) => lines.push(format!(
                            "  valid until {} ({} left)",
                            format_instant(copy.snapshot.valid_until),
                            human(left)
                        )),
                        Err(why) => lines.push(format!("  EXPIRED: {why}")),
                    }
                    dir = serde_json::json!({
                        "url": settings.url,
                        "tree_size": c.size,
                        "root_hash": hex::encode(c.root),
                        "checkpoint": c.to_base64(),
                        "fetched_at": copy.fetched_at,
                        "valid_until": copy.snapshot.valid_until,
                        "validity_left_ms": left,
                        "usable": usable.is_ok(),
                        "reason": usable.err().map(|e| e.0),
                        "parties_in_service": copy.active_parties().len(),
                    });
                }
                Ok(None) => {
                    healthy = false;
                    lines.push("Directory: NO verified copy yet: federation is refused (run `gsp directory refresh` or `gsp serve`).".into());
                    dir = serde_json::json!({"url": settings.url, "usable": false, "reason": "no verified directory copy"});
                }
                Err(e) => {
                    healthy = false;
                    lines.push(format!("Directory: the stored copy cannot be used: {e}"));
                    dir = serde_json::json!({"url": settings.url, "usable": false, "reason": e.to_string()});
                }
            }
            if let Some(t) = refresh.last_attempt {
                lines.push(format!(
                    "  last refresh attempt {}: {}",
                    format_instant(t),
                    refresh.last_error.clone().unwrap_or_else(|| "ok".into())
                ));
            }
            if let serde_json::Value::Object(m) = &mut dir {
                m.insert(
                    "last_refresh".into(),
                    serde_json::to_value(&refresh).unwrap_or_default(),
                );
            }
        } else {
            lines.push("Directory: not configured ([directory] url unset).".into());
        }
        if self.json {
            println!(
                "{}",
                serde_json::json!({
                    "healthy": healthy,
                    "party": ctx.config.node.party,
                    "directory": dir,
                    "outbox": outbox,
                    "storage": size,
                    "alarms": open,
                    "alarm_counts": counts.iter().map(|(k, n)| (k.clone(), *n)).collect::<std::collections::BTreeMap<_, _>>(),
                })
            );
            return Ok(healthy);
        }
        println!(
            "GSP node {} ({})",
            ctx.config.node.party.as_deref().unwrap_or("party not set"),
            ctx.config.node.name
        );
        for l in lines {
            println!("{l}");
        }
        let on_its_way: Vec<String> = outbox
            .on_its_way
            .iter()
            .map(|(by, n)| format!("{n} by {by}"))
            .collect();
        println!(
            "Outbox: {} pending{}, {} failed, {} cancelled (see `gsp outbox list`)",
            outbox.pending,
            if on_its_way.is_empty() {
                String::new()
            } else {
                format!(" (on their way: {})", on_its_way.join(", "))
            },
            outbox.failed,
            outbox.cancelled
        );
        println!("Storage: {size}");
        if open.is_empty() {
            println!("Alarms: none open.");
        } else {
            println!(
                "ALARMS ({} open; acknowledge with `gsp status --ack ID`):",
                open.len()
            );
            for a in &open {
                println!(
                    "  [{}] {} since {} (x{}): {}",
                    a.id,
                    a.kind,
                    format_instant(UnixMillis(u64::try_from(a.raised_at).unwrap_or(0))),
                    a.occurrences,
                    a.message
                );
            }
        }
        if !counts.is_empty() {
            let c: Vec<String> = counts.iter().map(|(k, n)| format!("{k}={n}")).collect();
            println!("Alarm counters (all time): {}", c.join(", "));
        }
        Ok(healthy)
    }
}
