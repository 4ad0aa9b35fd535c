//! When each answer of a `gsp bench exchange` step became readable on the
//! requesting node, for the latency an officer sees.
//!
//! The nodes stamp a message they take in before the commit that records
//! it, so a latency read from their stamps leaves out the requesting
//! node's last commit (a few milliseconds under load). This watcher reads
//! KEN's database on a thread of its own every [`EVERY`], as any reader
//! would, and notes the moment each answer first appears there — after its
//! commit. The moment can be late by up to one interval, never early.
//!
//! It reads only the answers after the last one it saw (by `seq`): the
//! SQLite group-commit writer assigns `seq` and commits in the same order,
//! so an answer committed later never has a smaller `seq`. The bench's
//! nodes run on SQLite; the count of answers seen says whether one was
//! missed.

use crate::exchange::model::{Direction, MessageKind};
use crate::storage::Database;
use crate::storage::schema::messages;
use diesel::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often the watcher reads: a reading costs tens of microseconds of
/// the two cores the nodes are measured on.
pub(super) const EVERY: Duration = Duration::from_millis(1);

/// A running watcher; [`Watcher::finish`] stops it and gives what it saw.
pub(super) struct Watcher {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<anyhow::Result<HashMap<String, Instant>>>,
}

impl Watcher {
    /// Starts watching `db` for answers kept after message `after`,
    /// reading every `every`.
    pub(super) fn start(db: Database, after: i64, every: Duration) -> anyhow::Result<Watcher> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("bench-answer-watch".into())
            .spawn(move || watch(&db, after, every, &stopped))?;
        Ok(Watcher { stop, thread })
    }

    /// Stops the watcher after one last reading; returns, per case, when
    /// its answer was first seen.
    pub(super) fn finish(self) -> anyhow::Result<HashMap<String, Instant>> {
        self.stop.store(true, Ordering::Release);
        self.thread.thread().unpark();
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the answer watcher panicked"))?
    }
}

fn watch(
    db: &Database,
    after: i64,
    every: Duration,
    stop: &AtomicBool,
) -> anyhow::Result<HashMap<String, Instant>> {
    let mut conn = db.conn()?;
    let mut seen = HashMap::new();
    let mut last = after;
    loop {
        // Read before the rows, so a stop asked meanwhile still gets one
        // full reading after it.
        let stopping = stop.load(Ordering::Acquire);
        let rows: Vec<(i64, String)> = messages::table
            .filter(messages::seq.gt(last))
            .filter(messages::kind.eq(MessageKind::Answer.to_i16()))
            .filter(messages::direction.eq(Direction::In.to_i16()))
            .select((messages::seq, messages::case_id))
            .load(&mut *conn)?;
        let now = Instant::now();
        for (seq, case) in rows {
            last = last.max(seq);
            seen.entry(case).or_insert(now);
        }
        if stopping {
            return Ok(seen);
        }
        // Woken early by `finish`.
        std::thread::park_timeout(every);
    }
}

/// Latencies in ms from when each request was sent (`sent`, by case) to
/// when its answer was seen; sorted. Cases whose answer was not seen are
/// left out (compare the length with `sent`'s).
pub(super) fn latencies_ms(
    sent: &HashMap<String, Instant>,
    seen: &HashMap<String, Instant>,
) -> Vec<i64> {
    let mut out: Vec<i64> = sent
        .iter()
        .filter_map(|(case, at)| {
            let answered = seen.get(case)?;
            let ms = answered.saturating_duration_since(*at).as_millis();
            Some(i64::try_from(ms).unwrap_or(i64::MAX))
        })
        .collect();
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::storage::testing::TestDb;

    /// Message `seq` of case `case`: an answer taken in (`answer`) or
    /// a request sent.
    fn message(db: &Database, seq: i64, case: &str, answer: bool) {
        let mut conn = db.conn().unwrap();
        crate::storage::testing::insert_bare_case(&mut conn, case).unwrap();
        let (kind, direction) = if answer { (1, 1) } else { (0, 0) };
        let m = crate::storage::testing::BareMessage {
            from: "PAK",
            to: "KEN",
            kind,
            direction,
            state: 3,
            ..crate::storage::testing::BareMessage::new(seq, case)
        };
        crate::storage::testing::insert_bare_message(&mut conn, &m).unwrap();
    }

    /// Waits until the watcher has had time for a few readings.
    fn readings() {
        std::thread::sleep(EVERY * 20);
    }

    #[test]
    fn answers_are_timed_when_they_become_readable_and_only_after_the_mark() {
        let db_file = TestDb::new(crate::storage::Backend::Sqlite).unwrap();
        let settings = crate::config::Config::default().database;
        let db = Database::open(&db_file.url, &settings).unwrap();
        // Before the mark: an answer the watcher must not report.
        message(&db, 1, "old", true);
        let sent_at = Instant::now();
        let watcher = Watcher::start(db.clone(), 1, EVERY).unwrap();
        message(&db, 2, "a", false);
        readings();
        let before_answer = Instant::now();
        message(&db, 3, "a", true);
        readings();
        message(&db, 4, "b", true);
        // Seen again (a second answer to the same case): the first counts.
        readings();
        message(&db, 5, "a", true);
        let seen = watcher.finish().unwrap();

        let mut keys: Vec<&str> = seen.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["a", "b"]);
        // Timed after it was written, not when the watch began.
        assert!(seen["a"] >= before_answer);
        assert!(seen["b"] > seen["a"]);

        let sent = HashMap::from([
            ("a".to_owned(), sent_at),
            ("b".to_owned(), sent_at),
            ("lost".to_owned(), sent_at),
        ]);
        let lat = latencies_ms(&sent, &seen);
        // The unanswered case is left out; the rest sorted.
        assert_eq!(lat.len(), 2);
        assert!(lat[0] <= lat[1]);
        let a = i64::try_from(seen["a"].duration_since(sent_at).as_millis()).unwrap();
        assert_eq!(lat[0], a);
    }

    #[test]
    fn a_watcher_stops_when_asked_and_reads_once_more() {
        let db_file = TestDb::new(crate::storage::Backend::Sqlite).unwrap();
        let settings = crate::config::Config::default().database;
        let db = Database::open(&db_file.url, &settings).unwrap();
        // An hour between readings: only the first one and the one after
        // the stop happen.
        let watcher = Watcher::start(db.clone(), 0, Duration::from_secs(3600)).unwrap();
        readings();
        // Written after the first reading, before the stop.
        message(&db, 7, "c", true);
        // Returns now, not after the hour (bounded so that a watcher that
        // ignores the stop fails the test instead of hanging it).
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(watcher.finish().unwrap()));
        let seen = rx
            .recv_timeout(Duration::from_secs(300))
            .expect("the watcher did not stop when asked");
        assert!(seen.contains_key("c"));
    }
}
