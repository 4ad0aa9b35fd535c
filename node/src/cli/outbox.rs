//! `gsp outbox …`: what is waiting to be delivered, and the operator's
//! levers: retry now, cancel.

use super::Context;
use crate::exchange::outbox;
use crate::exchange::store::now_ms;
use anyhow::Context as _;
use clap::{Args, Subcommand};

/// Arguments of `gsp outbox`.
#[derive(Debug, Args)]
pub struct OutboxArgs {
    #[command(subcommand)]
    command: OutboxCommand,
}

#[derive(Debug, Subcommand)]
enum OutboxCommand {
    /// Messages not yet delivered (pending, failed, cancelled); --all adds delivered ones.
    List {
        /// Include delivered messages.
        #[arg(long)]
        all: bool,
        /// At most this many rows.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make a pending or failed message due now (a running `gsp serve` picks
    /// it up); with --case, every such message of a case (a request and its
    /// attachments).
    Retry {
        /// The outbox row (first column of `gsp outbox list`).
        #[arg(required_unless_present = "case", conflicts_with = "case")]
        seq: Option<i64>,
        /// Retry every pending or failed message of this case instead.
        #[arg(long, value_name = "CASE_ID")]
        case: Option<String>,
    },
    /// Cancel a message that has not been delivered (one already on its way
    /// is recorded as delivered if the peer accepts it).
    Cancel {
        /// The outbox row.
        seq: i64,
    },
}

impl OutboxArgs {
    /// Runs the command.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<()> {
        let db = ctx.open_db()?;
        let mut conn = db.conn()?;
        match &self.command {
            OutboxCommand::List { all, limit, json } => {
                let rows = outbox::list(&mut conn, *all, (*limit).clamp(1, 100_000))?;
                if *json {
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                    return Ok(());
                }
                if rows.is_empty() {
                    println!("the outbox is empty");
                }
                let now = now_ms();
                for r in rows {
                    // A pending message under a live claim may be on its way.
                    let on_its_way = match (&r.state, &r.claimed_by, r.claimed_until) {
                        (crate::exchange::model::OutboxState::Pending, Some(by), Some(until))
                            if until > now =>
                        {
                            format!(
                                "  on its way ({by}, claim until {})",
                                crate::data::epcis::format_time(until, "+00:00")
                            )
                        }
                        _ => String::new(),
                    };
                    println!(
                        "{:>8}  {:<4} {:<10} attempts {:<3} next {}  expires {}  case {}  {}{on_its_way}",
                        r.seq,
                        r.peer,
                        r.state.as_str(),
                        r.attempts,
                        crate::data::epcis::format_time(r.next_attempt_at, "+00:00"),
                        crate::data::epcis::format_time(r.expires_at, "+00:00"),
                        r.case_id,
                        r.last_error.unwrap_or_default()
                    );
                }
            }
            OutboxCommand::Retry {
                case: Some(case), ..
            } => {
                let seqs = outbox::retry_case(&mut conn, &ctx.config.exchange, case, now_ms())?;
                if seqs.is_empty() {
                    anyhow::bail!("no pending or failed message of case {case} in the outbox");
                }
                let list: Vec<String> = seqs.iter().map(i64::to_string).collect();
                println!(
                    "{} message(s) of case {case} due now: {}",
                    seqs.len(),
                    list.join(", ")
                );
            }
            OutboxCommand::Retry { seq, .. } => {
                let seq = seq.context("give a message (SEQ) or --case")?;
                if outbox::retry_now(&mut conn, &ctx.config.exchange, seq, now_ms())? {
                    println!("message {seq} is due now");
                } else {
                    anyhow::bail!("no pending or failed message {seq} in the outbox");
                }
            }
            OutboxCommand::Cancel { seq } => {
                if outbox::cancel(&mut conn, *seq, now_ms())? {
                    println!(
                        "message {seq} cancelled; its case is failed (if a delivery of it is on its way and the peer accepts it, it is recorded as delivered, with the receipt, and the case goes on)"
                    );
                } else {
                    anyhow::bail!("no undelivered message {seq} in the outbox");
                }
            }
        }
        Ok(())
    }
}
