//! `gsp trace CODE`: what this node knows about one code.

use super::Context;
use crate::data::query::trace::{Trace, trace};
use clap::Args;

/// Arguments of `gsp trace`.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The code (as printed on the pack, or as an EPC URI).
    code: String,
    /// Print JSON (the same document as GET /api/v1/codes/{code}).
    #[arg(long)]
    json: bool,
}

impl TraceArgs {
    /// Runs the command. Exit status 1 with "not found" when the code is unknown.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<()> {
        let db = ctx.open_db()?;
        let mut conn = db.conn()?;
        let Some(t) = trace(&mut conn, &self.code)? else {
            anyhow::bail!("code {:?} not found in this node's data", self.code);
        };
        if self.json {
            println!("{}", serde_json::to_string_pretty(&t)?);
        } else {
            print!("{}", render(&t));
        }
        Ok(())
    }
}

fn render(t: &Trace) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "{} — {} ({})", t.code, t.level, t.status);
    if let Some(m) = &t.art_8_4_1.manufacture {
        if let Some(p) = &m.product {
            let _ = writeln!(s, "  (g) product:          {} [{}]", p.description, p.id);
            let _ = writeln!(
                s,
                "  (f) intended market:  {}",
                p.intended_market.as_deref().unwrap_or("-")
            );
        }
        if let Some(at) = &m.manufactured_at {
            let _ = writeln!(s, "  (a) manufactured:     {at}");
        }
        if let Some(f) = &m.facility {
            let _ = writeln!(
                s,
                "  (b) facility:         {} [{}], {}",
                f.name,
                f.id,
                f.address.as_deref().unwrap_or("-")
            );
        }
        if let Some(mc) = &m.machine {
            let _ = writeln!(
                s,
                "  (c) machine:          {} {}",
                mc.id,
                mc.model.as_deref().unwrap_or("")
            );
        }
        if let Some(sh) = &m.shift {
            let _ = writeln!(s, "  (d) shift:            {sh}");
        }
    }
    if let Some(fc) = &t.art_8_4_1.e_first_customer {
        let _ = writeln!(s, "  (e) first customer:   {fc}");
    }
    if !t.art_8_4_1.i_subsequent_purchasers.is_empty() {
        let _ = writeln!(
            s,
            "  (i) later purchasers: {}",
            t.art_8_4_1.i_subsequent_purchasers.join(", ")
        );
    }
    for j in &t.art_8_4_1.j_shipments {
        let _ = writeln!(s, "  (j) shipment:         {j}");
    }
    if !t.parents.is_empty() {
        let _ = writeln!(s, "  in:");
        for p in &t.parents {
            let _ = writeln!(
                s,
                "    {} {} since {}",
                p.level,
                p.code,
                p.since.as_deref().unwrap_or("?")
            );
        }
    }
    if t.children.count > 0 {
        let _ = writeln!(s, "  contains {} codes", t.children.count);
    }
    let _ = writeln!(s, "  history:");
    for h in &t.history {
        let _ = writeln!(
            s,
            "    {}  {:<4} {:<14} {}{}",
            h.time,
            h.eu_code.unwrap_or("-"),
            h.kind.as_str(),
            h.facility
                .as_ref()
                .map(|f| f.name.as_str())
                .or(h.biz_location.as_deref())
                .unwrap_or(""),
            h.via
                .as_ref()
                .map(|v| format!(" (via {v})"))
                .unwrap_or_default()
        );
    }
    s
}
