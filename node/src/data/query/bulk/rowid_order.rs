//! A large bulk lookup on SQLite in two passes, each reading one b-tree in
//! its own order.
//!
//! A code's row is found through the unique index on `codes.code` (which
//! holds the row's id) and then the table itself, keyed by id. The codes'
//! ids follow the order of import, not of the codes, so looking codes up in
//! code order walks the index in order but jumps about the table: on a node
//! of ten million packs nearly every code's row is on a page not read for
//! the code before, copied again from the file cache. So the first pass
//! reads only the index (the query is covered by it) for the codes' ids,
//! in code order; the second reads the rows in id order, where codes on the
//! same table page come one after the other. Measured with `gsp bench trace
//! --lookup 1000000` on a ten-million-pack node (warm file cache, one
//! connection): 5.2–6.0 s in one pass, 3.1–3.4 s in two (BENCHMARKS.md).

use super::{CHUNK, CodeRow, CodeVerdict, LookupCache};
use crate::storage::Direct as _;
use crate::storage::schema::codes;
use crate::storage::{DbConnection, PooledConnection};
use diesel::prelude::*;

/// Codes from which a lookup on SQLite is made in two passes; fewer are
/// looked up in one statement per [`CHUNK`].
pub(super) const MIN_CODES: usize = 10_000;

/// `product` or `applied_by` of a code that has none (row ids are never
/// negative in this schema).
const NONE: i64 = i64::MIN;

/// `status` of a code found in the first pass whose row was gone by the
/// second (answered as unknown).
const GONE: i16 = i16::MIN;

/// A code found: its position among the sorted codes asked and its row.
/// 32 bytes, one per code found: a million-code lookup holds 32 MB of them
/// while it runs.
#[derive(Debug, Clone, Copy, Default)]
struct Found {
    id: i64,
    product: i64,
    applied_by: i64,
    position: u32,
    level: i16,
    status: i16,
}

/// Looks up `codes_asked[order[k]]` for every `k` (`order` sorts the codes,
/// and has at most `u32::MAX` of them); appends the answers to `answers` in
/// the order of `order`. Each pass is split over `conn` and the `spares`, one
/// thread each.
pub(super) fn lookup<S: AsRef<str> + Sync>(
    conn: &mut DbConnection,
    spares: &mut [PooledConnection],
    codes_asked: &[S],
    order: &[usize],
    cache: &mut LookupCache,
    answers: &mut Vec<CodeVerdict>,
) -> QueryResult<()> {
    let code = |k: usize| codes_asked[order[k]].as_ref();
    let parts = spares.len() + 1;

    // Pass 1: the ids of the codes, from the code index alone, each part
    // writing into its own stretch of `found`, then closed up.
    let mut found = vec![Found::default(); order.len()];
    let per = order.len().div_ceil(parts).max(1);
    let stretches: Vec<(usize, &mut [Found])> = found
        .chunks_mut(per)
        .enumerate()
        .map(|(p, s)| (p * per, s))
        .collect();
    let counts = in_parts(conn, spares, stretches, |c, (first, stretch)| {
        ids_of(c, &code, first, stretch)
    })?;
    let mut len = 0;
    for (p, n) in counts.into_iter().enumerate() {
        found.copy_within(p * per..p * per + n, len);
        len += n;
    }
    found.truncate(len);

    // Pass 2: their rows, in id order.
    if !found.is_empty() {
        found.sort_unstable_by_key(|f| f.id);
        let per = found.len().div_ceil(parts);
        in_parts(conn, spares, found.chunks_mut(per).collect(), rows_of)?;
        found.sort_unstable_by_key(|f| f.position);
    }

    let present = |v: i64| (v != NONE).then_some(v);
    cache.load_events(conn, found.iter().filter_map(|f| present(f.applied_by)))?;
    let mut found = found.iter().peekable();
    for k in 0..order.len() {
        let row: Option<CodeRow> = match found.next_if(|f| f.position as usize == k) {
            Some(f) if f.status != GONE => {
                Some((f.level, f.status, present(f.product), present(f.applied_by)))
            }
            _ => None,
        };
        answers.push(cache.verdict(conn, code(k), row)?);
    }
    Ok(())
}

/// Pass 1 over the sorted codes `first..first + stretch.len()`: an entry in
/// `stretch` (from its start) for each code in the data, with its id and
/// position; returns how many.
fn ids_of<'a>(
    conn: &mut DbConnection,
    code: &impl Fn(usize) -> &'a str,
    first: usize,
    stretch: &mut [Found],
) -> QueryResult<usize> {
    let end = first + stretch.len();
    let mut n = 0;
    for start in (first..end).step_by(CHUNK) {
        let chunk: Vec<&str> = (start..(start + CHUNK).min(end)).map(code).collect();
        // Covered by the unique index on `code`, which holds the row id.
        let mut rows: Vec<(String, i64)> = codes::table
            .filter(codes::code.eq_any(&chunk))
            .select((codes::code, codes::id))
            .load_direct(conn)?;
        // In index order already; sorting a sorted vector is one pass.
        rows.sort_unstable();
        let mut rows = rows.iter().peekable();
        for (k, asked) in (start..).zip(&chunk) {
            while rows.next_if(|(c, _)| c.as_str() < *asked).is_some() {}
            if let Some((_, id)) = rows.peek().filter(|(c, _)| c == asked) {
                // A code asked twice is found twice, once per position.
                stretch[n] = Found {
                    id: *id,
                    position: k as u32,
                    ..Found::default()
                };
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Pass 2: fills in the rows of `found` (sorted by id).
fn rows_of(conn: &mut DbConnection, found: &mut [Found]) -> QueryResult<()> {
    for part in found.chunks_mut(CHUNK) {
        let mut ids: Vec<i64> = part.iter().map(|f| f.id).collect();
        ids.dedup();
        let mut rows: Vec<(i64, CodeRow)> = codes::table
            .filter(codes::id.eq_any(&ids))
            .select((
                codes::id,
                (
                    codes::level,
                    codes::status,
                    codes::product_id,
                    codes::applied_by,
                ),
            ))
            .load_direct(conn)?;
        rows.sort_unstable_by_key(|r| r.0);
        let mut rows = rows.iter().peekable();
        for f in part {
            while rows.next_if(|r| r.0 < f.id).is_some() {}
            match rows.peek() {
                Some(&&(id, (level, status, product, applied_by))) if id == f.id => {
                    f.level = level;
                    f.status = status;
                    f.product = product.unwrap_or(NONE);
                    f.applied_by = applied_by.unwrap_or(NONE);
                }
                _ => f.status = GONE,
            }
        }
    }
    Ok(())
}

/// Runs `work` on each of `parts` at once, the first on `conn` on this
/// thread and each other on a spare connection on a thread of its own;
/// the results in the order of `parts`, or the first error. At most one
/// part more than there are spares.
fn in_parts<P: Send, T: Send>(
    conn: &mut DbConnection,
    spares: &mut [PooledConnection],
    parts: Vec<P>,
    work: impl Fn(&mut DbConnection, P) -> QueryResult<T> + Sync,
) -> QueryResult<Vec<T>> {
    debug_assert!(parts.len() <= spares.len() + 1);
    let mut parts = parts.into_iter();
    let Some(first) = parts.next() else {
        return Ok(Vec::new());
    };
    let work = &work;
    std::thread::scope(|scope| {
        let others: Vec<_> = parts
            .zip(spares.iter_mut())
            .map(|(part, spare)| scope.spawn(move || work(spare, part)))
            .collect();
        let mut out = vec![work(conn, first)];
        for other in others {
            out.push(
                other
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        out.into_iter().collect()
    })
}
