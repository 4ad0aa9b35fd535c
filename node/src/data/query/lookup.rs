//! Shared lookups: master data by id (cached for the life of one query) and
//! event rows.

use crate::data::model::{Action, EpcisType, EventKind};
use crate::storage::DbConnection;
use crate::storage::Direct as _;
use crate::storage::schema::{events, facilities, machines, operators, products};
use diesel::prelude::*;
use serde::Serialize;
use std::collections::HashMap;

/// A product as shown to officers (Art. 8.4.1 (f), (g)).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductInfo {
    /// Product identifier.
    pub id: String,
    /// Description.
    pub description: String,
    /// Brand.
    pub brand: Option<String>,
    /// GTIN.
    pub gtin: Option<String>,
    /// Intended market of retail sale.
    pub intended_market: Option<String>,
    /// Category.
    pub category: Option<String>,
    /// Manufacturer's name.
    pub manufacturer: Option<String>,
    /// Manufacturer's identifier.
    pub manufacturer_id: Option<String>,
}

/// A facility as shown to officers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FacilityInfo {
    /// Facility identifier.
    pub id: String,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: Option<String>,
    /// Country.
    pub country: Option<String>,
    /// Address.
    pub address: Option<String>,
    /// Operator's name.
    pub operator: Option<String>,
    /// Operator's identifier.
    pub operator_id: Option<String>,
}

/// A machine as shown to officers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MachineInfo {
    /// Machine identifier.
    pub id: String,
    /// Model.
    pub model: Option<String>,
    /// Rated capacity, packs per minute.
    pub capacity_per_min: Option<i64>,
}

/// One row of the events table.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = events)]
#[allow(missing_docs)]
pub struct EventRow {
    pub id: i64,
    pub event_key: String,
    pub kind: i16,
    pub epcis_type: i16,
    pub action: Option<i16>,
    pub event_time: i64,
    pub tz_offset: String,
    pub biz_step: Option<String>,
    pub disposition: Option<String>,
    pub read_point: Option<String>,
    pub biz_location: Option<String>,
    pub facility_id: Option<i64>,
    pub machine_id: Option<i64>,
    pub parent_code_id: Option<i64>,
    pub product_id: Option<i64>,
    pub import_id: Option<i64>,
    pub doc: String,
}

impl EventRow {
    /// GSP kind.
    pub fn kind(&self) -> EventKind {
        EventKind::from_i16(self.kind).unwrap_or(EventKind::Other)
    }
    /// EPCIS type.
    pub fn epcis_type(&self) -> EpcisType {
        EpcisType::from_i16(self.epcis_type).unwrap_or(EpcisType::Object)
    }
    /// EPCIS action.
    pub fn action(&self) -> Option<Action> {
        self.action.and_then(Action::from_i16)
    }
    /// The stored document (the EPCIS fields not in columns).
    pub fn doc(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::from_str(&self.doc) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        }
    }
}

/// Loads events by id.
pub fn events_by_id(conn: &mut DbConnection, ids: &[i64]) -> QueryResult<Vec<EventRow>> {
    // One id by `=`, a statement diesel prepares once (see `bulk_lookup_with`).
    if let [one] = ids {
        return events::table
            .filter(events::id.eq(*one))
            .select(EventRow::as_select())
            .load(conn);
    }
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(4096) {
        out.extend(
            events::table
                .filter(events::id.eq_any(chunk))
                .select(EventRow::as_select())
                .load(conn)?,
        );
    }
    Ok(out)
}

/// Master data by database id, loaded once per query.
#[derive(Debug, Default)]
pub struct MasterCache {
    products: HashMap<i64, Option<ProductInfo>>,
    facilities: HashMap<i64, Option<FacilityInfo>>,
    machines: HashMap<i64, Option<MachineInfo>>,
    operators: HashMap<i64, Option<(String, String)>>,
}

impl MasterCache {
    /// Records held.
    pub(super) fn entries(&self) -> usize {
        self.products.len() + self.facilities.len() + self.machines.len() + self.operators.len()
    }

    fn operator(
        &mut self,
        conn: &mut DbConnection,
        id: Option<i64>,
    ) -> QueryResult<Option<(String, String)>> {
        let Some(id) = id else { return Ok(None) };
        if let Some(o) = self.operators.get(&id) {
            return Ok(o.clone());
        }
        let o: Option<(String, String)> = operators::table
            .find(id)
            .select((operators::ext_id, operators::name))
            .first_direct(conn)
            .optional()?;
        self.operators.insert(id, o.clone());
        Ok(o)
    }

    /// A product by id.
    pub fn product(
        &mut self,
        conn: &mut DbConnection,
        id: Option<i64>,
    ) -> QueryResult<Option<ProductInfo>> {
        let Some(id) = id else { return Ok(None) };
        if let Some(p) = self.products.get(&id) {
            return Ok(p.clone());
        }
        type Row = (
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<i64>,
        );
        let row: Option<Row> = products::table
            .find(id)
            .select((
                products::ext_id,
                products::description,
                products::brand,
                products::gtin,
                products::intended_market,
                products::category,
                products::operator_id,
            ))
            .first_direct(conn)
            .optional()?;
        let info = match row {
            Some((ext, description, brand, gtin, intended_market, category, op)) => {
                let op = self.operator(conn, op)?;
                Some(ProductInfo {
                    id: ext,
                    description,
                    brand,
                    gtin,
                    intended_market,
                    category,
                    manufacturer_id: op.as_ref().map(|o| o.0.clone()),
                    manufacturer: op.map(|o| o.1),
                })
            }
            None => None,
        };
        self.products.insert(id, info.clone());
        Ok(info)
    }

    /// A facility by id.
    pub fn facility(
        &mut self,
        conn: &mut DbConnection,
        id: Option<i64>,
    ) -> QueryResult<Option<FacilityInfo>> {
        let Some(id) = id else { return Ok(None) };
        if let Some(f) = self.facilities.get(&id) {
            return Ok(f.clone());
        }
        type Row = (
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<i64>,
        );
        let row: Option<Row> = facilities::table
            .find(id)
            .select((
                facilities::ext_id,
                facilities::name,
                facilities::kind,
                facilities::country,
                facilities::address,
                facilities::operator_id,
            ))
            .first_direct(conn)
            .optional()?;
        let info = match row {
            Some((ext, name, kind, country, address, op)) => {
                let op = self.operator(conn, op)?;
                Some(FacilityInfo {
                    id: ext,
                    name,
                    kind,
                    country,
                    address,
                    operator_id: op.as_ref().map(|o| o.0.clone()),
                    operator: op.map(|o| o.1),
                })
            }
            None => None,
        };
        self.facilities.insert(id, info.clone());
        Ok(info)
    }

    /// A machine by id.
    pub fn machine(
        &mut self,
        conn: &mut DbConnection,
        id: Option<i64>,
    ) -> QueryResult<Option<MachineInfo>> {
        let Some(id) = id else { return Ok(None) };
        if let Some(m) = self.machines.get(&id) {
            return Ok(m.clone());
        }
        let row: Option<(String, Option<String>, Option<i64>)> = machines::table
            .find(id)
            .select((
                machines::ext_id,
                machines::model,
                machines::capacity_per_min,
            ))
            .first_direct(conn)
            .optional()?;
        let info = row.map(|(id, model, capacity_per_min)| MachineInfo {
            id,
            model,
            capacity_per_min,
        });
        self.machines.insert(id, info.clone());
        Ok(info)
    }
}
