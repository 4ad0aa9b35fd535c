//! Bulk lookup: many codes in one call, answering per code the Art. 8.4.1
//! items a `uid-verification` request asks for — (a) date and location of
//! manufacture, (b) facility, (c) machine, (d) shift or time, (f) intended
//! market, (g) product description — or "unknown" / "deactivated".
//!
//! Codes are looked up in chunks with one indexed query each; the few events,
//! products, facilities and machines they point to are loaded once and shared.
//! A large lookup given spare connections ([`LookupCache::with_spare`]) is
//! split into parts of the sorted codes, looked up at the same time on up to
//! [`PARTS`] connections: on a node whose database is not all in the OS file
//! cache, each part waits for the disk while the others work. On SQLite a
//! large lookup reads the code index and the codes' rows in two passes, each
//! in the order of its b-tree ([`rowid_order`]).

use super::lookup::{FacilityInfo, MachineInfo, MasterCache, ProductInfo, events_by_id};
use crate::data::epcis::format_time;
use crate::data::model::{CodeStatus, Level};
use crate::storage::Direct as _;
use crate::storage::schema::codes;
use crate::storage::{Database, DbConnection, PooledConnection};
use diesel::prelude::*;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::hash_map::Entry;
use std::sync::Arc;

mod rowid_order;

/// Codes per database round trip.
const CHUNK: usize = 30_000;

/// Codes from which a lookup with spare connections is split.
pub const SPLIT_MIN: usize = 2 * CHUNK;

/// Parts a large lookup is split into at most (one per connection).
const PARTS: usize = 2;

/// The answer for one code.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CodeVerdict {
    /// The code as asked.
    pub code: String,
    /// `known`, `deactivated` or `unknown`.
    pub status: VerdictStatus,
    /// Packaging level, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// Art. 8.4.1 items for a known code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<Arc<Manufacture>>,
}

/// Status of a code in a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictStatus {
    /// Known and active.
    Known,
    /// Known and deactivated.
    Deactivated,
    /// Not in this node's data.
    Unknown,
}

/// Art. 8.4.1 (a)–(d), (f), (g) for one code.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manufacture {
    /// (a) date of manufacture (the application event's time, RFC 3339).
    pub manufactured_at: Option<String>,
    /// (a), (b) manufacturing facility with its location.
    pub facility: Option<FacilityInfo>,
    /// (c) machine.
    pub machine: Option<MachineInfo>,
    /// (d) production shift.
    pub shift: Option<String>,
    /// (f), (g) product with its intended market and description.
    pub product: Option<ProductInfo>,
}

/// What bulk lookups made shortly after one another can share: the events,
/// master data and Art. 8.4.1 records already loaded. Keep one for a batch of
/// lookups (the automatic answers drafted together), not for longer: it does
/// not see data imported after it was filled.
#[derive(Default)]
pub struct LookupCache {
    master: MasterCache,
    manufacture_of: FxHashMap<(Option<i64>, Option<i64>), Arc<Manufacture>>,
    events: FxHashMap<i64, super::EventRow>,
    /// Where a lookup of [`SPLIT_MIN`] codes or more may take more
    /// connections to look up parts of them at the same time.
    spare: Option<Database>,
    /// Connections the last lookup ran on.
    last_parts: usize,
}

impl LookupCache {
    /// An empty cache whose large lookups take up to [`PARTS`] − 1 more
    /// connections from `db`'s pool, those free within 200 ms (else they run
    /// on fewer).
    pub fn with_spare(db: Database) -> LookupCache {
        LookupCache {
            spare: Some(db),
            ..LookupCache::default()
        }
    }

    /// How many connections the last lookup made with this cache ran on
    /// at once (0 before the first).
    pub fn last_parts(&self) -> usize {
        self.last_parts
    }

    /// Records held (events, master data records, Art. 8.4.1 records).
    pub fn entries(&self) -> usize {
        self.master.entries() + self.manufacture_of.len() + self.events.len()
    }
}

/// Lookup caches shared by lookups made one at a time — the automatic
/// answers made as requests arrive — so that a single-code verification does
/// not load its application event and master data again every time. A
/// lookup takes an idle cache (or a new one) and puts it back after, so no
/// lock is held during a lookup; a cache older than `max_age` or holding
/// more than [`LookupCaches::MAX_ENTRIES`] records is dropped. A code's own row
/// (its status above all) is always read afresh; events and master data
/// imported or changed meanwhile are seen within `max_age`.
pub struct LookupCaches {
    idle: std::sync::Mutex<Vec<(std::time::Instant, LookupCache)>>,
    max_age: std::time::Duration,
}

impl LookupCaches {
    /// Records one cache holds at most before it is dropped. With
    /// [`Self::MAX_IDLE`] this bounds what the caches keep to a few tens of
    /// MB (an event row with its document is up to a few KB).
    pub const MAX_ENTRIES: usize = 5_000;
    /// Idle caches kept at most; lookups beyond that at once use caches
    /// that are dropped after.
    const MAX_IDLE: usize = 4;

    /// Caches dropped after `max_age`.
    pub fn new(max_age: std::time::Duration) -> LookupCaches {
        LookupCaches {
            idle: std::sync::Mutex::new(Vec::new()),
            max_age,
        }
    }

    /// Runs `work` with a cache of its own for the time.
    pub fn with<T>(&self, work: impl FnOnce(&mut LookupCache) -> T) -> T {
        let fresh = |(born, cache): &(std::time::Instant, LookupCache)| {
            born.elapsed() < self.max_age && cache.entries() <= Self::MAX_ENTRIES
        };
        let taken = self.lock().pop().filter(fresh);
        let (born, mut cache) =
            taken.unwrap_or_else(|| (std::time::Instant::now(), LookupCache::default()));
        let out = work(&mut cache);
        let mut idle = self.lock();
        if idle.len() < Self::MAX_IDLE {
            idle.push((born, cache));
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(std::time::Instant, LookupCache)>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Looks up every code in `codes_asked`; answers in the same order.
pub fn bulk_lookup(
    conn: &mut DbConnection,
    codes_asked: &[String],
) -> QueryResult<Vec<CodeVerdict>> {
    bulk_lookup_with(conn, codes_asked, &mut LookupCache::default())
}

/// [`bulk_lookup`] sharing `cache` with other lookups of the same batch.
pub fn bulk_lookup_with<S: AsRef<str> + Sync>(
    conn: &mut DbConnection,
    codes_asked: &[S],
    cache: &mut LookupCache,
) -> QueryResult<Vec<CodeVerdict>> {
    // Look codes up in sorted order: the index pages are then visited in
    // order, each about once, instead of at random (several times faster
    // once the index is larger than the page cache). Answers go back to the
    // order asked.
    let mut order: Vec<usize> = (0..codes_asked.len()).collect();
    order.sort_unstable_by(|&a, &b| codes_asked[a].as_ref().cmp(codes_asked[b].as_ref()));
    // Spare connections for a large lookup, each to look up a part of the
    // sorted codes on a thread of its own with a cache of its own: the
    // parts read disjoint ranges of the code index, and each waits for the
    // disk while the others work.
    let mut spares: Vec<PooledConnection> = match &cache.spare {
        Some(db) if order.len() >= SPLIT_MIN => (1..PARTS)
            .map_while(|_| db.try_conn(std::time::Duration::from_millis(200)))
            .collect(),
        _ => Vec::new(),
    };
    cache.last_parts = spares.len() + 1;
    // The answers in sorted order, the first part's written straight in
    // (one vector of them, put back in the order asked in place: a second
    // one, or one of `Option`s collected at the end, was 30 MB more of peak
    // memory for a million codes).
    let mut answers = Vec::with_capacity(order.len());
    let by_rowid = matches!(conn, DbConnection::Sqlite(_))
        && order.len() >= rowid_order::MIN_CODES
        && u32::try_from(order.len()).is_ok();
    if by_rowid {
        rowid_order::lookup(conn, &mut spares, codes_asked, &order, cache, &mut answers)?;
    } else if spares.is_empty() {
        lookup_sorted(conn, codes_asked, &order, cache, &mut answers)?;
    } else {
        let mut parts = order.chunks(order.len().div_ceil(spares.len() + 1));
        let first = parts.next().unwrap_or_default();
        std::thread::scope(|scope| {
            let others: Vec<_> = parts
                .zip(spares)
                .map(|(part, mut spare)| {
                    scope.spawn(move || {
                        let mut found = Vec::with_capacity(part.len());
                        lookup_sorted(
                            &mut spare,
                            codes_asked,
                            part,
                            &mut LookupCache::default(),
                            &mut found,
                        )
                        .map(|()| found)
                    })
                })
                .collect();
            let mut result = lookup_sorted(conn, codes_asked, first, cache, &mut answers);
            for other in others {
                let more = other
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                if result.is_ok() {
                    result = more.map(|more| answers.extend(more));
                }
            }
            result
        })?;
    }
    // Back to the order asked, in place: the answer at `k` belongs at
    // `order[k]`; each swap puts one answer where it belongs.
    for k in 0..answers.len() {
        while order[k] != k {
            let to = order[k];
            answers.swap(k, to);
            order.swap(k, to);
        }
    }
    Ok(answers)
}

/// Looks up `codes_asked[i]` for each `i` of `positions` (in sorted code
/// order); appends the answers to `answers` in the order of `positions`.
fn lookup_sorted<S: AsRef<str>>(
    conn: &mut DbConnection,
    codes_asked: &[S],
    positions: &[usize],
    cache: &mut LookupCache,
    answers: &mut Vec<CodeVerdict>,
) -> QueryResult<()> {
    for positions in positions.chunks(CHUNK) {
        let chunk: Vec<&str> = positions.iter().map(|&i| codes_asked[i].as_ref()).collect();
        let columns = (
            codes::code,
            (
                codes::level,
                codes::status,
                codes::product_id,
                codes::applied_by,
            ),
        );
        // One code (a single verification, the usual request) by `=`: a
        // statement of fixed shape, which diesel prepares once and keeps;
        // `IN (…)` is prepared again for every lookup.
        let rows: Vec<(String, CodeRow)> = match chunk.as_slice() {
            [one] => codes::table
                .filter(codes::code.eq(*one))
                .select(columns)
                .load_direct(conn)?,
            _ => codes::table
                .filter(codes::code.eq_any(&chunk))
                .select(columns)
                .load_direct(conn)?,
        };
        let found: FxHashMap<String, CodeRow> = rows.into_iter().collect();
        cache.load_events(conn, found.values().filter_map(|r| r.3))?;
        for code in chunk {
            answers.push(cache.verdict(conn, code, found.get(code).copied())?);
        }
    }
    Ok(())
}

/// A code's row: level, status, product id, application event id.
type CodeRow = (i16, i16, Option<i64>, Option<i64>);

impl LookupCache {
    /// Loads the application events among `ids` not held yet.
    fn load_events(
        &mut self,
        conn: &mut DbConnection,
        ids: impl Iterator<Item = i64>,
    ) -> QueryResult<()> {
        let mut missing: Vec<i64> = ids.filter(|e| !self.events.contains_key(e)).collect();
        missing.sort_unstable();
        missing.dedup();
        self.events
            .extend(events_by_id(conn, &missing)?.into_iter().map(|e| (e.id, e)));
        Ok(())
    }

    /// The verdict on `code` from its row (`None`: not in this node's
    /// data), its Art. 8.4.1 record made once per application event and
    /// product and shared. The events must have been loaded
    /// ([`Self::load_events`]).
    fn verdict(
        &mut self,
        conn: &mut DbConnection,
        code: &str,
        row: Option<CodeRow>,
    ) -> QueryResult<CodeVerdict> {
        let Some((level, status, product, applied_by)) = row else {
            return Ok(CodeVerdict {
                code: code.to_owned(),
                status: VerdictStatus::Unknown,
                level: None,
                record: None,
            });
        };
        let record = match self.manufacture_of.entry((applied_by, product)) {
            Entry::Occupied(known) => known.get().clone(),
            Entry::Vacant(slot) => {
                let event = applied_by.and_then(|id| self.events.get(&id));
                let shift = event.and_then(|e| {
                    e.doc()
                        .get("gsp:shift")
                        .and_then(|s| s.as_str())
                        .map(str::to_owned)
                });
                let m = Manufacture {
                    manufactured_at: event.map(|e| format_time(e.event_time, &e.tz_offset)),
                    facility: self
                        .master
                        .facility(conn, event.and_then(|e| e.facility_id))?,
                    machine: self
                        .master
                        .machine(conn, event.and_then(|e| e.machine_id))?,
                    shift,
                    product: self.master.product(conn, product)?,
                };
                slot.insert(Arc::new(m)).clone()
            }
        };
        let deactivated = CodeStatus::from_i16(status) == Some(CodeStatus::Deactivated);
        Ok(CodeVerdict {
            code: code.to_owned(),
            status: if deactivated {
                VerdictStatus::Deactivated
            } else {
                VerdictStatus::Known
            },
            level: Level::from_i16(level),
            record: Some(record),
        })
    }
}
