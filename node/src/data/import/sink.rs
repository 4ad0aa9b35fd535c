//! The import sink: takes [`Record`]s in file order and writes them, batching
//! the code rows that make up almost all of a national data set.
//!
//! Master data and events are resolved as they arrive; facts about codes are
//! buffered and written per batch: ids of codes already known are taken from a
//! bounded cache or one lookup per batch, new codes get ids allocated here and
//! go in with one multi-row INSERT (SQLite) or one binary COPY (PostgreSQL),
//! codes that already existed are updated one by one. Runs inside the caller's
//! write transaction, so a failed file leaves nothing behind.

use super::cache::TwoGenerationCache;
use super::record::{
    CodeRecord, EventRecord, Facility, Location, Machine, Operator, Product, Record,
};
use crate::data::model::{Action, CodeStatus, EpcisType, EventKind, Level, Role};
use crate::on_backend;
use crate::storage::DbConnection;
use crate::storage::schema::{
    aggregation_history, codes, event_codes, events, facilities, machines, operators, products,
};
use diesel::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::HashMap;

/// A problem with one record, found while writing it.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The record contradicts itself, the file or the database.
    #[error("{location}: {message}")]
    Invalid {
        /// Where the record was in the file.
        location: Location,
        /// What is wrong.
        message: String,
    },
    /// The database refused a write.
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    /// Internal: a fast-path batch met an existing code and is redone
    /// carefully. Never leaves the sink.
    #[error("batch retried")]
    Retry,
}

/// What an import wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportStats {
    /// Codes that were new.
    pub codes_new: u64,
    /// Codes that existed and changed.
    pub codes_updated: u64,
    /// Events that were new.
    pub events_new: u64,
    /// Events already present (same eventID or content), left unchanged.
    pub events_existing: u64,
    /// Master-data records (operators, facilities, machines, products) written.
    pub master_data: u64,
}

/// A buffered statement about a code, applied at the next flush.
#[derive(Debug, Clone)]
enum Fact {
    /// Only make sure the code exists (a parent, or a code named in a link).
    Mention,
    /// Applied (commissioned) by an event.
    Applied {
        event: i64,
        product: Option<i64>,
        level: Option<Level>,
    },
    /// Put into `parent` by `event`.
    Aggregate {
        parent: String,
        event: Option<i64>,
        level: Option<Level>,
    },
    /// Taken out of `parent` by `event`.
    Detach { parent: String, event: i64 },
    /// Deactivated by `event`.
    Deactivate { event: i64 },
    /// Named by `event` in `role`.
    Link { event: i64, role: Role },
    /// A CSV code line: level, product, the event that applied it, and its
    /// parent with the event that put it there.
    Line {
        level: Option<Level>,
        product: Option<i64>,
        applied: Option<(i64, Option<i64>)>,
        parent: Option<String>,
        aggregated_by: Option<i64>,
    },
}

impl Fact {
    /// The other code a fact refers to.
    fn parent(&self) -> Option<&str> {
        match self {
            Fact::Aggregate { parent, .. } | Fact::Detach { parent, .. } => Some(parent),
            Fact::Line { parent, .. } => parent.as_deref(),
            _ => None,
        }
    }
}

/// Applies one fact to a code's state; `Err` is the message for the officer.
fn apply_fact(
    code: &str,
    id: i64,
    fact: &Fact,
    state: &mut CodeState,
    ids: &FxHashMap<&str, i64>,
    links: &mut Vec<NewLink>,
    history: &mut Vec<NewHistory>,
) -> Result<(), String> {
    let link = |links: &mut Vec<NewLink>, event: i64, role: Role| {
        links.push(NewLink {
            code_id: id,
            event_id: event,
            role: role.to_i16(),
        })
    };
    let declare =
        |state: &mut CodeState, level: Option<Level>, product: Option<i64>| -> Result<(), String> {
            if let Some(level) = level {
                if state.level == Level::Unknown {
                    state.level = level;
                } else if state.level != level {
                    return Err(format!(
                        "code {code:?} is already recorded as a {}, not a {level}",
                        state.level
                    ));
                }
            }
            if let Some(p) = product {
                match state.product {
                    None => state.product = Some(p),
                    Some(q) if q == p => {}
                    Some(_) => {
                        return Err(format!(
                            "code {code:?} is already recorded with another product"
                        ));
                    }
                }
            }
            Ok(())
        };
    let applied =
        |state: &mut CodeState, links: &mut Vec<NewLink>, event: i64, product: Option<i64>| {
            match state.applied_by {
                None => state.applied_by = Some(event),
                Some(e) if e == event => {}
                Some(_) => link(links, event, Role::Epc),
            }
            if state.product.is_none() {
                state.product = product;
            }
        };
    let aggregate = |state: &mut CodeState,
                     history: &mut Vec<NewHistory>,
                     parent: &str,
                     event: Option<i64>|
     -> Result<(), String> {
        let parent_id = ids.get(parent).copied().unwrap_or(0);
        if parent_id == id {
            return Err(format!("code {code:?} cannot contain itself"));
        }
        if state.parent == Some(parent_id) && (event.is_none() || state.aggregated_by == event) {
            return Ok(());
        }
        if let Some(old_parent) = state.parent {
            let Some(ended_by) = event else {
                return Err(format!(
                    "code {code:?} moves to parent {parent:?} without an aggregation event (aggregated_by)"
                ));
            };
            history.push(NewHistory {
                child_id: id,
                ended_by,
                parent_id: old_parent,
                aggregated_by: state.aggregated_by,
            });
        }
        state.parent = Some(parent_id);
        state.aggregated_by = event;
        Ok(())
    };
    match fact {
        Fact::Mention => {}
        Fact::Applied {
            event,
            product,
            level,
        } => {
            declare(state, *level, None)?;
            applied(state, links, *event, *product)
        }
        Fact::Aggregate {
            parent,
            event,
            level,
        } => {
            declare(state, *level, None)?;
            aggregate(state, history, parent, *event)?
        }
        Fact::Line {
            level,
            product,
            applied: app,
            parent,
            aggregated_by,
        } => {
            declare(state, *level, *product)?;
            if let Some((event, event_product)) = app {
                applied(state, links, *event, product.or(*event_product));
            }
            if let Some(p) = parent {
                aggregate(state, history, p, *aggregated_by)?;
            }
        }
        Fact::Detach { parent, event } => {
            let parent_id = ids.get(parent.as_str()).copied().unwrap_or(0);
            if state.parent == Some(parent_id) {
                history.push(NewHistory {
                    child_id: id,
                    ended_by: *event,
                    parent_id,
                    aggregated_by: state.aggregated_by,
                });
                state.parent = None;
                state.aggregated_by = None;
            }
            link(links, *event, Role::Child);
        }
        Fact::Deactivate { event } => {
            state.status = CodeStatus::Deactivated;
            link(links, *event, Role::Epc);
        }
        Fact::Link { event, role } => link(links, *event, *role),
    }
    Ok(())
}

/// A code's row as the flush works on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CodeState {
    level: Level,
    status: CodeStatus,
    product: Option<i64>,
    applied_by: Option<i64>,
    parent: Option<i64>,
    aggregated_by: Option<i64>,
}

impl CodeState {
    const NEW: CodeState = CodeState {
        level: Level::Unknown,
        status: CodeStatus::Active,
        product: None,
        applied_by: None,
        parent: None,
        aggregated_by: None,
    };
}

#[derive(Insertable)]
#[diesel(table_name = codes)]
#[diesel(treat_none_as_default_value = false)]
struct NewCode<'a> {
    id: i64,
    product_id: Option<i64>,
    applied_by: Option<i64>,
    parent_id: Option<i64>,
    aggregated_by: Option<i64>,
    level: i16,
    status: i16,
    code: &'a str,
}

#[derive(Insertable, Clone)]
#[diesel(table_name = events)]
#[diesel(treat_none_as_default_value = false)]
struct NewEvent {
    id: i64,
    event_key: String,
    kind: i16,
    epcis_type: i16,
    action: Option<i16>,
    event_time: i64,
    tz_offset: String,
    biz_step: Option<String>,
    disposition: Option<String>,
    read_point: Option<String>,
    biz_location: Option<String>,
    facility_id: Option<i64>,
    machine_id: Option<i64>,
    parent_code_id: Option<i64>,
    product_id: Option<i64>,
    import_id: Option<i64>,
    doc: String,
}

#[derive(Insertable)]
#[diesel(table_name = event_codes)]
#[diesel(treat_none_as_default_value = false)]
struct NewLink {
    code_id: i64,
    event_id: i64,
    role: i16,
}

#[derive(Insertable)]
#[diesel(table_name = aggregation_history)]
#[diesel(treat_none_as_default_value = false)]
struct NewHistory {
    child_id: i64,
    ended_by: i64,
    parent_id: i64,
    aggregated_by: Option<i64>,
}

/// What the sink remembers of an event it has seen.
#[derive(Debug, Clone, Copy)]
struct EventRef {
    id: i64,
    product: Option<i64>,
}

/// Ids handed out by the importer itself, so rows can reference each other
/// before they are written. SQLite: counting up from the highest id, under the
/// write lock the import holds. PostgreSQL: blocks taken from the sequence.
#[derive(Debug, Default)]
struct IdBlock {
    next: i64,
    end: i64,
}

const PG_ID_BLOCK: i64 = 8192;

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

impl IdBlock {
    fn take(&mut self, conn: &mut DbConnection, table: &'static str) -> QueryResult<i64> {
        if self.next >= self.end {
            match conn {
                DbConnection::Sqlite(c) => {
                    let row: IdRow = diesel::sql_query(format!(
                        "SELECT COALESCE(MAX(id), 0) AS id FROM {table}"
                    ))
                    .get_result(c)?;
                    self.next = self.next.max(row.id + 1);
                    self.end = i64::MAX;
                }
                DbConnection::Postgresql(c) => {
                    let rows: Vec<IdRow> = diesel::sql_query(format!(
                        "SELECT nextval(pg_get_serial_sequence('{table}', 'id')) AS id FROM generate_series(1, {PG_ID_BLOCK})"
                    ))
                    .load(c)?;
                    // Under concurrency the block may not be contiguous; use
                    // contiguous runs only, and ask again when one ends.
                    let first = rows.first().map(|r| r.id).unwrap_or(1);
                    let mut end = first;
                    for r in &rows {
                        if r.id == end {
                            end += 1;
                        } else {
                            break;
                        }
                    }
                    self.next = first;
                    self.end = end;
                }
            }
        }
        let id = self.next;
        self.next += 1;
        Ok(id)
    }
}

/// Ids of master-data records by their external identifier.
#[derive(Debug, Default)]
struct MasterIds {
    operators: HashMap<String, i64>,
    facilities: HashMap<String, i64>,
    machines: HashMap<String, i64>,
    products: HashMap<String, i64>,
    products_by_gtin: HashMap<String, Option<i64>>,
}

/// The sink itself. Create it inside a write transaction, push records in
/// file order, then call [`Sink::finish`].
pub struct Sink<'c> {
    conn: &'c mut DbConnection,
    batch_size: usize,
    code_ids: IdBlock,
    event_ids: IdBlock,
    code_cache: TwoGenerationCache<i64>,
    event_cache: TwoGenerationCache<EventRef>,
    master: MasterIds,
    /// Events and code lines of the current batch, as read.
    pending: Vec<(Record, Location)>,
    /// Roughly how many code facts `pending` will make.
    pending_weight: usize,
    /// Whether the batch being processed looks every unknown up in the
    /// database (careful) or assumes it is new (fast path).
    careful: bool,
    /// Event keys cached while processing a fast-path batch (undone on retry).
    cached_this_attempt: Vec<String>,
    /// Facts of the batch being processed: (code, fact, index into `origins`).
    facts: Vec<(String, Fact, u32)>,
    /// Buffered new events with their parent code, written at flush.
    new_events: Vec<(NewEvent, Option<String>)>,
    origins: Vec<Location>,
    stats: ImportStats,
    /// Batches to wait before trying the fast path again after a miss.
    optimistic_rest: u32,
    /// The `imports` row this import writes under.
    import_id: i64,
    /// The document's JSON-LD context terms.
    context: serde_json::Map<String, serde_json::Value>,
}

impl<'c> Sink<'c> {
    /// A sink writing through `conn`, flushing every `batch_size` code facts
    /// and remembering up to `cache_size` codes' ids.
    pub fn new(
        conn: &'c mut DbConnection,
        import_id: i64,
        batch_size: usize,
        cache_size: usize,
    ) -> Sink<'c> {
        Sink {
            conn,
            batch_size: batch_size.max(1),
            code_ids: IdBlock::default(),
            event_ids: IdBlock::default(),
            code_cache: TwoGenerationCache::new(cache_size.max(1024)),
            event_cache: TwoGenerationCache::new(65_536),
            master: MasterIds::default(),
            pending: Vec::new(),
            pending_weight: 0,
            careful: false,
            cached_this_attempt: Vec::new(),
            facts: Vec::new(),
            new_events: Vec::new(),
            origins: Vec::new(),
            stats: ImportStats::default(),
            optimistic_rest: 0,
            import_id,
            context: serde_json::Map::new(),
        }
    }

    /// Writes one record read at `location`.
    pub fn push(&mut self, record: Record, location: Location) -> Result<(), SinkError> {
        match record {
            Record::Operator(o) => self.operator(o, &location),
            Record::Facility(f) => self.facility(f, &location),
            Record::Machine(m) => self.machine(m, &location),
            Record::Product(p) => self.product(p, &location),
            Record::Event(e) => {
                self.pending_weight += 1 + e.codes.len() + usize::from(e.parent.is_some());
                self.pending.push((Record::Event(e), location));
                self.flush_if_full()
            }
            Record::Code(c) => {
                self.pending_weight += 1;
                self.pending.push((Record::Code(c), location));
                self.flush_if_full()
            }
            Record::Context(terms) => {
                self.context = terms;
                Ok(())
            }
        }
    }

    fn flush_if_full(&mut self) -> Result<(), SinkError> {
        if self.pending_weight >= self.batch_size {
            self.flush()?;
        }
        Ok(())
    }

    /// Flushes what is buffered and returns what was written and the
    /// document's context terms.
    pub fn finish(
        mut self,
    ) -> Result<(ImportStats, serde_json::Map<String, serde_json::Value>), SinkError> {
        self.flush()?;
        Ok((self.stats, self.context))
    }

    // ---- master data -------------------------------------------------------

    fn operator(&mut self, o: Operator, _loc: &Location) -> Result<(), SinkError> {
        use operators::dsl as t;
        let extra = o
            .extra
            .as_ref()
            .map(|m| serde_json::Value::Object(m.clone()).to_string());
        let values = (
            t::ext_id.eq(&o.ext_id),
            t::name.eq(&o.name),
            t::country.eq(&o.country),
            t::address.eq(&o.address),
            t::roles.eq(&o.roles),
            t::licence.eq(&o.licence),
            t::tax_id.eq(&o.tax_id),
            t::extra.eq(&extra),
        );
        let id: i64 = on_backend!(&mut *self.conn, |c| diesel::insert_into(t::operators)
            .values(values)
            .on_conflict(t::ext_id)
            .do_update()
            .set(values)
            .returning(t::id)
            .get_result(c))?;
        self.master.operators.insert(o.ext_id, id);
        self.stats.master_data += 1;
        Ok(())
    }

    fn facility(&mut self, f: Facility, loc: &Location) -> Result<(), SinkError> {
        use facilities::dsl as t;
        let operator_id = self.resolve_operator(f.operator.as_deref(), loc)?;
        let extra = f
            .extra
            .as_ref()
            .map(|m| serde_json::Value::Object(m.clone()).to_string());
        let values = (
            t::ext_id.eq(&f.ext_id),
            t::operator_id.eq(operator_id),
            t::name.eq(&f.name),
            t::kind.eq(&f.kind),
            t::country.eq(&f.country),
            t::address.eq(&f.address),
            t::extra.eq(&extra),
        );
        let id: i64 = on_backend!(&mut *self.conn, |c| diesel::insert_into(t::facilities)
            .values(values)
            .on_conflict(t::ext_id)
            .do_update()
            .set(values)
            .returning(t::id)
            .get_result(c))?;
        self.master.facilities.insert(f.ext_id, id);
        self.stats.master_data += 1;
        Ok(())
    }

    fn machine(&mut self, m: Machine, loc: &Location) -> Result<(), SinkError> {
        use machines::dsl as t;
        let facility_id = self.resolve_facility(m.facility.as_deref(), loc)?;
        let extra = m
            .extra
            .as_ref()
            .map(|x| serde_json::Value::Object(x.clone()).to_string());
        let values = (
            t::ext_id.eq(&m.ext_id),
            t::facility_id.eq(facility_id),
            t::model.eq(&m.model),
            t::capacity_per_min.eq(m.capacity_per_min),
            t::extra.eq(&extra),
        );
        let id: i64 = on_backend!(&mut *self.conn, |c| diesel::insert_into(t::machines)
            .values(values)
            .on_conflict(t::ext_id)
            .do_update()
            .set(values)
            .returning(t::id)
            .get_result(c))?;
        self.master.machines.insert(m.ext_id, id);
        self.stats.master_data += 1;
        Ok(())
    }

    fn product(&mut self, p: Product, loc: &Location) -> Result<(), SinkError> {
        use products::dsl as t;
        let operator_id = self.resolve_operator(p.operator.as_deref(), loc)?;
        let extra = p
            .extra
            .as_ref()
            .map(|x| serde_json::Value::Object(x.clone()).to_string());
        let values = (
            t::ext_id.eq(&p.ext_id),
            t::operator_id.eq(operator_id),
            t::description.eq(&p.description),
            t::brand.eq(&p.brand),
            t::gtin.eq(&p.gtin),
            t::intended_market.eq(&p.intended_market),
            t::category.eq(&p.category),
            t::extra.eq(&extra),
        );
        let id: i64 = on_backend!(&mut *self.conn, |c| diesel::insert_into(t::products)
            .values(values)
            .on_conflict(t::ext_id)
            .do_update()
            .set(values)
            .returning(t::id)
            .get_result(c))?;
        if let Some(gtin) = &p.gtin {
            self.master.products_by_gtin.insert(gtin.clone(), Some(id));
        }
        self.master.products.insert(p.ext_id, id);
        self.stats.master_data += 1;
        Ok(())
    }

    fn resolve_operator(
        &mut self,
        ext: Option<&str>,
        loc: &Location,
    ) -> Result<Option<i64>, SinkError> {
        let Some(ext) = ext else { return Ok(None) };
        if let Some(id) = self.master.operators.get(ext) {
            return Ok(Some(*id));
        }
        use operators::dsl as t;
        let found: Option<i64> = t::operators
            .filter(t::ext_id.eq(ext))
            .select(t::id)
            .first(&mut *self.conn)
            .optional()?;
        let id = found.ok_or_else(|| {
            invalid(
                loc,
                format!(
                    "economic operator {ext:?} is not defined (add an operator record before it)"
                ),
            )
        })?;
        self.master.operators.insert(ext.to_owned(), id);
        Ok(Some(id))
    }

    fn lookup_facility(&mut self, ext: &str) -> Result<Option<i64>, SinkError> {
        if let Some(id) = self.master.facilities.get(ext) {
            return Ok(Some(*id));
        }
        use facilities::dsl as t;
        let found: Option<i64> = t::facilities
            .filter(t::ext_id.eq(ext))
            .select(t::id)
            .first(&mut *self.conn)
            .optional()?;
        if let Some(id) = found {
            self.master.facilities.insert(ext.to_owned(), id);
        }
        Ok(found)
    }

    fn resolve_facility(
        &mut self,
        ext: Option<&str>,
        loc: &Location,
    ) -> Result<Option<i64>, SinkError> {
        let Some(ext) = ext else { return Ok(None) };
        match self.lookup_facility(ext)? {
            Some(id) => Ok(Some(id)),
            None => Err(invalid(
                loc,
                format!("facility {ext:?} is not defined (add a facility record before it)"),
            )),
        }
    }

    fn resolve_machine(
        &mut self,
        ext: Option<&str>,
        loc: &Location,
    ) -> Result<Option<i64>, SinkError> {
        let Some(ext) = ext else { return Ok(None) };
        if let Some(id) = self.master.machines.get(ext) {
            return Ok(Some(*id));
        }
        use machines::dsl as t;
        let found: Option<i64> = t::machines
            .filter(t::ext_id.eq(ext))
            .select(t::id)
            .first(&mut *self.conn)
            .optional()?;
        let id = found.ok_or_else(|| {
            invalid(
                loc,
                format!("machine {ext:?} is not defined (add a machine record before it)"),
            )
        })?;
        self.master.machines.insert(ext.to_owned(), id);
        Ok(Some(id))
    }

    fn resolve_product(
        &mut self,
        ext: Option<&str>,
        loc: &Location,
    ) -> Result<Option<i64>, SinkError> {
        let Some(ext) = ext else { return Ok(None) };
        if let Some(id) = self.master.products.get(ext) {
            return Ok(Some(*id));
        }
        use products::dsl as t;
        let found: Option<i64> = t::products
            .filter(t::ext_id.eq(ext))
            .select(t::id)
            .first(&mut *self.conn)
            .optional()?;
        let id = found.ok_or_else(|| {
            invalid(
                loc,
                format!("product {ext:?} is not defined (add a product record before it)"),
            )
        })?;
        self.master.products.insert(ext.to_owned(), id);
        Ok(Some(id))
    }

    /// The product whose GTIN a GS1 code carries, if such a product is known.
    fn product_of_gtin(&mut self, gtin: &str) -> Result<Option<i64>, SinkError> {
        if let Some(found) = self.master.products_by_gtin.get(gtin) {
            return Ok(*found);
        }
        use products::dsl as t;
        let found: Option<i64> = t::products
            .filter(t::gtin.eq(gtin))
            .select(t::id)
            .first(&mut *self.conn)
            .optional()?;
        if self.master.products_by_gtin.len() < 100_000 {
            self.master.products_by_gtin.insert(gtin.to_owned(), found);
        }
        Ok(found)
    }

    // ---- events ------------------------------------------------------------

    /// An event this import or the database already has. In the fast path a
    /// key not in the cache is taken as unknown without asking the database;
    /// the batch fails with [`SinkError::Retry`] at write time if it existed.
    fn find_event(&mut self, key: &str) -> Result<Option<EventRef>, SinkError> {
        if let Some(found) = self.event_cache.get(key) {
            return Ok(Some(found));
        }
        if !self.careful {
            return Ok(None);
        }
        use events::dsl as t;
        let found: Option<(i64, Option<i64>)> = t::events
            .filter(t::event_key.eq(key))
            .select((t::id, t::product_id))
            .first(&mut *self.conn)
            .optional()?;
        Ok(found.map(|(id, product)| {
            let r = EventRef { id, product };
            self.event_cache.insert(key.to_owned(), r);
            r
        }))
    }

    /// An event a code line refers to, which must exist.
    fn referenced_event(
        &mut self,
        key: &str,
        field: &str,
        location: &Location,
    ) -> Result<EventRef, SinkError> {
        match self.find_event(key)? {
            Some(e) => Ok(e),
            // Not in this import's cache: maybe from an earlier import.
            None if !self.careful => Err(SinkError::Retry),
            None => Err(invalid(
                location,
                format!(
                    "event {key:?} ({field}) is not defined; an event line must come before the codes that refer to it"
                ),
            )),
        }
    }

    fn event(&mut self, e: &EventRecord, location: &Location) -> Result<(), SinkError> {
        if self.find_event(&e.key)?.is_some() {
            self.stats.events_existing += 1;
            return Ok(());
        }
        let origin = self.origin(location.clone());
        let facility_id = match (&e.facility, &e.biz_location) {
            (Some(f), _) => self.resolve_facility(Some(f), location)?,
            (None, Some(bl)) => self.lookup_facility(bl)?,
            (None, None) => None,
        };
        let machine_id = self.resolve_machine(e.machine.as_deref(), location)?;
        let product_id = self.resolve_product(e.product.as_deref(), location)?;
        let id = self.event_ids.take(&mut *self.conn, "events")?;

        let row = NewEvent {
            id,
            event_key: e.key.clone(),
            kind: e.kind.to_i16(),
            epcis_type: e.epcis_type.to_i16(),
            action: e.action.map(Action::to_i16),
            event_time: e.time_ms,
            tz_offset: e.tz_offset.clone(),
            biz_step: e.biz_step.clone(),
            disposition: e.disposition.clone(),
            read_point: e.read_point.clone(),
            biz_location: e.biz_location.clone(),
            facility_id,
            machine_id,
            parent_code_id: None,
            product_id,
            import_id: Some(self.import_id),
            doc: serde_json::to_string(&e.doc).unwrap_or_else(|_| "{}".to_owned()),
        };
        self.event_cache.insert(
            e.key.clone(),
            EventRef {
                id,
                product: product_id,
            },
        );
        if !self.careful {
            self.cached_this_attempt.push(e.key.clone());
        }
        self.stats.events_new += 1;

        // The effect on codes, in GSP's compact form: application and
        // aggregation live in the codes table, everything else as links.
        let parent = e.parent.clone();
        if let Some(p) = &parent {
            // EU EPA: an aggregation applies the aggregated-level code too.
            let fact = if e.epcis_type == EpcisType::Aggregation && e.action == Some(Action::Add) {
                Fact::Applied {
                    event: id,
                    product: None,
                    level: e.parent_level,
                }
            } else {
                Fact::Mention
            };
            self.facts.push((p.clone(), fact, origin));
        }
        let delete_all_children = e.epcis_type == EpcisType::Aggregation
            && e.action == Some(Action::Delete)
            && !e.codes.iter().any(|(r, _)| *r == Role::Child);
        for (role, code) in &e.codes {
            let (role, code) = (*role, code.clone());
            let fact = match (e.epcis_type, e.action, role, &parent) {
                (EpcisType::Object, Some(Action::Add), Role::Epc, _) => {
                    let product = match product_id {
                        Some(p) => Some(p),
                        None => match crate::data::epcis::gtin_of(&code) {
                            Some(gtin) => self.product_of_gtin(&gtin)?,
                            None => None,
                        },
                    };
                    Fact::Applied {
                        event: id,
                        product,
                        level: e.level,
                    }
                }
                (EpcisType::Object, Some(Action::Delete), Role::Epc, _) => {
                    Fact::Deactivate { event: id }
                }
                (EpcisType::Aggregation, Some(Action::Add), Role::Child, Some(p)) => {
                    Fact::Aggregate {
                        parent: p.clone(),
                        event: Some(id),
                        level: e.level,
                    }
                }
                (EpcisType::Aggregation, Some(Action::Delete), Role::Child, Some(p)) => {
                    Fact::Detach {
                        parent: p.clone(),
                        event: id,
                    }
                }
                _ if e.kind == EventKind::Deactivation => Fact::Deactivate { event: id },
                _ => Fact::Link { event: id, role },
            };
            self.facts.push((code, fact, origin));
        }
        self.new_events.push((row, parent.clone()));
        if delete_all_children && let Some(p) = parent {
            // "Take everything out of this parent": depends on every fact
            // before it, so write those first, then detach in SQL.
            self.write_facts()?;
            self.detach_all(&p, id)?;
        }
        Ok(())
    }

    fn code(&mut self, c: &CodeRecord, location: &Location) -> Result<(), SinkError> {
        let product = self.resolve_product(c.product.as_deref(), location)?;
        let applied = match &c.applied_by {
            Some(key) => Some(self.referenced_event(key, "applied_by", location)?),
            None => None,
        };
        let aggregated = match &c.aggregated_by {
            Some(key) => Some(self.referenced_event(key, "aggregated_by", location)?),
            None => None,
        };
        if aggregated.is_some() && c.parent.is_none() {
            return Err(invalid(
                location,
                "aggregated_by is given but parent is empty".into(),
            ));
        }
        if c.parent.as_deref() == Some(c.code.as_str()) {
            return Err(invalid(
                location,
                format!("code {:?} cannot be its own parent", c.code),
            ));
        }
        let origin = self.origin(location.clone());
        let fact = Fact::Line {
            level: c.level,
            product,
            applied: applied.map(|e| (e.id, e.product)),
            parent: c.parent.clone(),
            aggregated_by: aggregated.map(|e| e.id),
        };
        self.facts.push((c.code.clone(), fact, origin));
        Ok(())
    }

    fn origin(&mut self, location: Location) -> u32 {
        if self.origins.last() != Some(&location) {
            self.origins.push(location);
        }
        u32::try_from(self.origins.len() - 1).unwrap_or(u32::MAX)
    }

    fn detach_all(&mut self, parent: &str, event: i64) -> Result<(), SinkError> {
        use codes::dsl as t;
        let parent_id = match self.code_cache.get(parent) {
            Some(id) => id,
            None => match t::codes
                .filter(t::code.eq(parent))
                .select(t::id)
                .first::<i64>(&mut *self.conn)
                .optional()?
            {
                Some(id) => id,
                None => return Ok(()),
            },
        };
        let children: Vec<(i64, Option<i64>)> = t::codes
            .filter(t::parent_id.eq(parent_id))
            .select((t::id, t::aggregated_by))
            .load(&mut *self.conn)?;
        let history: Vec<NewHistory> = children
            .iter()
            .map(|&(child_id, aggregated_by)| NewHistory {
                child_id,
                ended_by: event,
                parent_id,
                aggregated_by,
            })
            .collect();
        let links: Vec<NewLink> = children
            .iter()
            .map(|&(code_id, _)| NewLink {
                code_id,
                event_id: event,
                role: Role::Child.to_i16(),
            })
            .collect();
        self.insert_history(&history)?;
        self.insert_links(&links)?;
        diesel::update(t::codes.filter(t::parent_id.eq(parent_id)))
            .set((
                t::parent_id.eq(None::<i64>),
                t::aggregated_by.eq(None::<i64>),
            ))
            .execute(&mut *self.conn)?;
        Ok(())
    }

    // ---- the batch ---------------------------------------------------------

    /// Processes and writes the pending batch.
    ///
    /// Fast path first: every code and event not in the caches is taken as
    /// new, without asking the database, and the batch is written inside a
    /// savepoint that refuses duplicates. If anything existed after all, the
    /// savepoint is rolled back and the batch is processed again carefully,
    /// looking every unknown up. After a miss the fast path rests for a while,
    /// since a re-import would miss every time.
    fn flush(&mut self) -> Result<(), SinkError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let records = std::mem::take(&mut self.pending);
        self.pending_weight = 0;
        if self.optimistic_rest == 0 {
            let stats = self.stats;
            self.careful = false;
            match self.with_savepoint(|sink| sink.process(&records)) {
                Ok(()) => {
                    self.cached_this_attempt.clear();
                    return Ok(());
                }
                Err(SinkError::Retry) => {
                    self.stats = stats;
                    for key in std::mem::take(&mut self.cached_this_attempt) {
                        self.event_cache.remove(&key);
                    }
                    self.facts.clear();
                    self.new_events.clear();
                    self.origins.clear();
                    self.optimistic_rest = 16;
                }
                Err(e) => return Err(e),
            }
        } else {
            self.optimistic_rest -= 1;
        }
        self.careful = true;
        self.process(&records)
    }

    /// Turns a batch of records into facts and writes them.
    fn process(&mut self, records: &[(Record, Location)]) -> Result<(), SinkError> {
        for (record, location) in records {
            match record {
                Record::Event(e) => self.event(e, location)?,
                Record::Code(c) => self.code(c, location)?,
                _ => {}
            }
        }
        self.write_facts()
    }

    /// Writes the facts and events gathered so far and remembers the codes.
    fn write_facts(&mut self) -> Result<(), SinkError> {
        if self.facts.is_empty() && self.new_events.is_empty() {
            return Ok(());
        }
        let facts = std::mem::take(&mut self.facts);
        let new_events = std::mem::take(&mut self.new_events);
        let known = self.write_batch(&facts, &new_events, !self.careful)?;
        for (code, id) in known {
            self.code_cache.insert(code, id);
        }
        self.origins.clear();
        Ok(())
    }

    /// Runs `work` in a savepoint: released on success, rolled back on error.
    fn with_savepoint<T>(
        &mut self,
        work: impl FnOnce(&mut Self) -> Result<T, SinkError>,
    ) -> Result<T, SinkError> {
        use diesel::connection::SimpleConnection;
        self.conn.batch_execute("SAVEPOINT gsp_batch")?;
        match work(self) {
            Ok(v) => {
                self.conn.batch_execute("RELEASE SAVEPOINT gsp_batch")?;
                Ok(v)
            }
            Err(e) => {
                self.conn.batch_execute(
                    "ROLLBACK TO SAVEPOINT gsp_batch; RELEASE SAVEPOINT gsp_batch",
                )?;
                Err(e)
            }
        }
    }

    /// Resolves, applies and writes one batch. With `assume_new`, codes not
    /// in the cache are taken as new without a lookup and the write fails with
    /// [`SinkError::Retry`] if one existed. Returns every code of the batch
    /// with its id, for the cache.
    fn write_batch(
        &mut self,
        facts: &[(String, Fact, u32)],
        new_events: &[(NewEvent, Option<String>)],
        assume_new: bool,
    ) -> Result<Vec<(String, i64)>, SinkError> {
        // 1. Every code this batch touches, with its id if known.
        let mut ids: FxHashMap<&str, i64> = FxHashMap::default();
        ids.reserve(facts.len() * 2);
        let mut unknown: Vec<&str> = Vec::new();
        fn note<'a>(
            cache: &mut TwoGenerationCache<i64>,
            code: &'a str,
            ids: &mut FxHashMap<&'a str, i64>,
            unknown: &mut Vec<&'a str>,
        ) {
            if ids.contains_key(code) {
                return;
            }
            match cache.get(code) {
                Some(id) => {
                    ids.insert(code, id);
                }
                None => {
                    ids.insert(code, 0);
                    unknown.push(code);
                }
            }
        }
        for (code, fact, _) in facts {
            note(&mut self.code_cache, code, &mut ids, &mut unknown);
            if let Some(parent) = fact.parent() {
                note(&mut self.code_cache, parent, &mut ids, &mut unknown);
            }
        }
        for (_, parent) in new_events {
            if let Some(p) = parent {
                note(&mut self.code_cache, p, &mut ids, &mut unknown);
            }
        }

        // 2. Unknown codes: looked up (careful path) or taken as new (fast path).
        let mut existing_ids: Vec<i64> = ids.values().copied().filter(|&id| id != 0).collect();
        if !assume_new {
            for chunk in unknown.chunks(4096) {
                use codes::dsl as t;
                let found: Vec<(String, i64)> = t::codes
                    .filter(t::code.eq_any(chunk))
                    .select((t::code, t::id))
                    .load(&mut *self.conn)?;
                for (code, id) in found {
                    if let Some(slot) = ids.get_mut(code.as_str()) {
                        *slot = id;
                        existing_ids.push(id);
                    }
                }
            }
        }
        let mut new_codes: Vec<&str> = Vec::with_capacity(unknown.len());
        for code in &unknown {
            if ids.get(code) == Some(&0) {
                let id = self.code_ids.take(&mut *self.conn, "codes")?;
                ids.insert(code, id);
                new_codes.push(code);
            }
        }

        // 3. Current state of existing codes that facts change.
        let touched: FxHashSet<i64> = facts
            .iter()
            .filter(|(_, f, _)| !matches!(f, Fact::Mention))
            .filter_map(|(c, _, _)| ids.get(c.as_str()).copied())
            .collect();
        existing_ids.retain(|id| touched.contains(id));
        existing_ids.sort_unstable();
        existing_ids.dedup();
        let mut existing: FxHashMap<i64, CodeState> = FxHashMap::default();
        for chunk in existing_ids.chunks(4096) {
            use codes::dsl as t;
            type Row = (
                i64,
                i16,
                i16,
                Option<i64>,
                Option<i64>,
                Option<i64>,
                Option<i64>,
            );
            let rows: Vec<Row> = t::codes
                .filter(t::id.eq_any(chunk))
                .select((
                    t::id,
                    t::level,
                    t::status,
                    t::product_id,
                    t::applied_by,
                    t::parent_id,
                    t::aggregated_by,
                ))
                .load(&mut *self.conn)?;
            for (id, level, status, product, applied_by, parent, aggregated_by) in rows {
                existing.insert(
                    id,
                    CodeState {
                        level: Level::from_i16(level).unwrap_or(Level::Unknown),
                        status: CodeStatus::from_i16(status).unwrap_or(CodeStatus::Active),
                        product,
                        applied_by,
                        parent,
                        aggregated_by,
                    },
                );
            }
        }
        let original = existing.clone();
        let mut fresh: FxHashMap<i64, CodeState> =
            new_codes.iter().map(|c| (ids[c], CodeState::NEW)).collect();

        // 4. Apply the facts in order.
        let mut links: Vec<NewLink> = Vec::new();
        let mut history: Vec<NewHistory> = Vec::new();
        for (code, fact, origin) in facts {
            let id = ids[code.as_str()];
            let Some(state) = fresh.get_mut(&id).or_else(|| existing.get_mut(&id)) else {
                continue; // only mentioned, and it exists
            };
            apply_fact(code, id, fact, state, &ids, &mut links, &mut history).map_err(
                |message| SinkError::Invalid {
                    location: self
                        .origins
                        .get(*origin as usize)
                        .cloned()
                        .unwrap_or(Location::File),
                    message,
                },
            )?;
        }

        // 5. Write: new codes, changed codes, events, history, links.
        let mut rows: Vec<NewCode<'_>> = Vec::with_capacity(new_codes.len());
        for code in &new_codes {
            let id = ids[code];
            if let Some(s) = fresh.remove(&id) {
                rows.push(NewCode {
                    id,
                    product_id: s.product,
                    applied_by: s.applied_by,
                    parent_id: s.parent,
                    aggregated_by: s.aggregated_by,
                    level: s.level.to_i16(),
                    status: s.status.to_i16(),
                    code,
                });
            }
        }
        let inserted = self.insert_codes(&rows, assume_new)?;
        if inserted != rows.len() {
            return Err(SinkError::Retry);
        }
        let mut updated = 0;
        for (id, state) in &existing {
            if original.get(id) == Some(state) {
                continue;
            }
            use codes::dsl as t;
            diesel::update(t::codes.find(*id))
                .set((
                    t::level.eq(state.level.to_i16()),
                    t::status.eq(state.status.to_i16()),
                    t::product_id.eq(state.product),
                    t::applied_by.eq(state.applied_by),
                    t::parent_id.eq(state.parent),
                    t::aggregated_by.eq(state.aggregated_by),
                ))
                .execute(&mut *self.conn)?;
            updated += 1;
        }
        let events_rows: Vec<NewEvent> = new_events
            .iter()
            .map(|(row, parent)| NewEvent {
                parent_code_id: parent.as_deref().and_then(|p| ids.get(p).copied()),
                ..row.clone()
            })
            .collect();
        let events_inserted = self.insert_events(&events_rows, assume_new)?;
        if events_inserted != events_rows.len() {
            return Err(SinkError::Retry);
        }
        self.insert_history(&history)?;
        self.insert_links(&links)?;
        self.stats.codes_new += rows.len() as u64;
        self.stats.codes_updated += updated;
        Ok(ids.into_iter().map(|(c, id)| (c.to_owned(), id)).collect())
    }

    /// Inserts new code rows; returns how many went in. With `ignore_existing`
    /// a row whose code exists is skipped (and not counted) on SQLite, and
    /// turns into [`SinkError::Retry`] on PostgreSQL, instead of failing.
    fn insert_codes(
        &mut self,
        rows: &[NewCode<'_>],
        ignore_existing: bool,
    ) -> Result<usize, SinkError> {
        if rows.is_empty() {
            return Ok(0);
        }
        match &mut *self.conn {
            DbConnection::Sqlite(c) => {
                // One cached prepared statement executed per row: SQLite's
                // cheapest way in (no SQL to parse per batch, no JSON to unpack).
                let mut inserted = 0;
                for row in rows {
                    inserted += if ignore_existing {
                        diesel::insert_or_ignore_into(codes::table)
                            .values(row)
                            .execute(c)?
                    } else {
                        diesel::insert_into(codes::table).values(row).execute(c)?
                    };
                }
                Ok(inserted)
            }
            DbConnection::Postgresql(c) => {
                // COPY has no "ignore": a duplicate fails the statement, which
                // the fast path's savepoint turns into a retry.
                match diesel::copy_from(codes::table)
                    .from_insertable(rows)
                    .execute(c)
                {
                    Ok(n) => Ok(n),
                    Err(diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::UniqueViolation,
                        _,
                    )) if ignore_existing => Err(SinkError::Retry),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// Inserts new events; like [`Sink::insert_codes`] for duplicates.
    fn insert_events(
        &mut self,
        rows: &[NewEvent],
        ignore_existing: bool,
    ) -> Result<usize, SinkError> {
        if rows.is_empty() {
            return Ok(0);
        }
        match &mut *self.conn {
            DbConnection::Sqlite(c) => {
                let mut inserted = 0;
                for row in rows {
                    inserted += if ignore_existing {
                        diesel::insert_or_ignore_into(events::table)
                            .values(row)
                            .execute(c)?
                    } else {
                        diesel::insert_into(events::table).values(row).execute(c)?
                    };
                }
                Ok(inserted)
            }
            DbConnection::Postgresql(c) => match diesel::copy_from(events::table)
                .from_insertable(rows)
                .execute(c)
            {
                Ok(n) => Ok(n),
                Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                )) if ignore_existing => Err(SinkError::Retry),
                Err(e) => Err(e.into()),
            },
        }
    }

    fn insert_history(&mut self, rows: &[NewHistory]) -> Result<(), SinkError> {
        for chunk in rows.chunks(4000) {
            match &mut *self.conn {
                DbConnection::Sqlite(c) => {
                    diesel::insert_or_ignore_into(aggregation_history::table)
                        .values(chunk)
                        .execute(c)?
                }
                DbConnection::Postgresql(c) => diesel::insert_into(aggregation_history::table)
                    .values(chunk)
                    .on_conflict_do_nothing()
                    .execute(c)?,
            };
        }
        Ok(())
    }

    fn insert_links(&mut self, rows: &[NewLink]) -> Result<(), SinkError> {
        for chunk in rows.chunks(8000) {
            match &mut *self.conn {
                DbConnection::Sqlite(c) => diesel::insert_or_ignore_into(event_codes::table)
                    .values(chunk)
                    .execute(c)?,
                DbConnection::Postgresql(c) => diesel::insert_into(event_codes::table)
                    .values(chunk)
                    .on_conflict_do_nothing()
                    .execute(c)?,
            };
        }
        Ok(())
    }
}

fn invalid(location: &Location, message: String) -> SinkError {
    SinkError::Invalid {
        location: location.clone(),
        message,
    }
}
