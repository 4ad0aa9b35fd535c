//! The vocabulary of the data store: packaging levels, code status, EPCIS event
//! types and actions, and GSP's event kinds with their EU event codes.
//!
//! Each enum is stored as a SMALLINT; the numbers are part of the database
//! format and must never be reused for another meaning.

use crate::enums::small_enum;

small_enum! {
    /// Packaging level of a unique identifier.
    pub enum Level {
        /// Unit packet (pack), Art. 8.3 unit-level code.
        Unit = 0 => "unit",
        /// Carton (a sleeve or bundle of packs; EU "aggregated level").
        Carton = 1 => "carton",
        /// Case (master case of cartons).
        Case = 2 => "case",
        /// Pallet.
        Pallet = 3 => "pallet",
        /// Seen only as a reference (a parent or an EPC in an event), level not stated.
        Unknown = 9 => "unknown",
    }
}

small_enum! {
    /// Whether a code is still in use.
    pub enum CodeStatus {
        /// Applied and not deactivated.
        Active = 0 => "active",
        /// Deactivated (EU IDA; EPCIS decommissioning or DELETE).
        Deactivated = 1 => "deactivated",
    }
}

small_enum! {
    /// The EPCIS 2.0 event type.
    pub enum EpcisType {
        /// ObjectEvent.
        Object = 1 => "ObjectEvent",
        /// AggregationEvent.
        Aggregation = 2 => "AggregationEvent",
        /// TransactionEvent.
        Transaction = 3 => "TransactionEvent",
        /// TransformationEvent.
        Transformation = 4 => "TransformationEvent",
        /// AssociationEvent.
        Association = 5 => "AssociationEvent",
    }
}

small_enum! {
    /// The EPCIS action.
    pub enum Action {
        /// ADD.
        Add = 1 => "ADD",
        /// OBSERVE.
        Observe = 2 => "OBSERVE",
        /// DELETE.
        Delete = 3 => "DELETE",
    }
}

small_enum! {
    /// GSP's event kinds: the tracking-and-tracing events of the EU system
    /// (Implementing Regulation (EU) 2018/574) and Art. 8.4.1.
    pub enum EventKind {
        /// Application of unit-level codes on packs (EU EUA).
        Application = 1 => "application",
        /// Application of aggregated-level codes, i.e. aggregation (EU EPA).
        Aggregation = 2 => "aggregation",
        /// Dispatch from a facility (EU EDP).
        Dispatch = 3 => "dispatch",
        /// Arrival at a facility (EU ERP).
        Arrival = 4 => "arrival",
        /// Trans-loading between means of transport (EU ETL).
        Transloading = 5 => "transloading",
        /// Disaggregation (EU EUD).
        Disaggregation = 6 => "disaggregation",
        /// Deactivation of codes (EU IDA).
        Deactivation = 7 => "deactivation",
        /// Invoice (EU EIV).
        Invoice = 8 => "invoice",
        /// Order number (EU EPO).
        Order = 9 => "order",
        /// Payment receipt (EU EPR).
        Payment = 10 => "payment",
        /// Any other EPCIS event (kept faithfully, no EU counterpart).
        Other = 0 => "other",
    }
}

small_enum! {
    /// How a code takes part in an event, for links not kept in the codes table.
    pub enum Role {
        /// In `epcList`.
        Epc = 1 => "epc",
        /// In `childEPCs`.
        Child = 2 => "child",
        /// In `inputEPCList`.
        Input = 3 => "input",
        /// In `outputEPCList`.
        Output = 4 => "output",
        /// The `parentID` of a transaction or association event.
        Parent = 5 => "parent",
    }
}

impl EventKind {
    /// The EU event code (Implementing Regulation (EU) 2018/574, Annex II), if any.
    pub fn eu_code(self) -> Option<&'static str> {
        Some(match self {
            EventKind::Application => "EUA",
            EventKind::Aggregation => "EPA",
            EventKind::Dispatch => "EDP",
            EventKind::Arrival => "ERP",
            EventKind::Transloading => "ETL",
            EventKind::Disaggregation => "EUD",
            EventKind::Deactivation => "IDA",
            EventKind::Invoice => "EIV",
            EventKind::Order => "EPO",
            EventKind::Payment => "EPR",
            EventKind::Other => return None,
        })
    }

    /// The kind for an EU event code.
    pub fn from_eu_code(code: &str) -> Option<EventKind> {
        EventKind::ALL
            .iter()
            .copied()
            .find(|k| k.eu_code().is_some_and(|c| c.eq_ignore_ascii_case(code)))
    }

    /// How GSP writes this kind as EPCIS: event type, action, CBV bizStep and
    /// disposition (the mapping documented in `data/MODEL.md`).
    pub fn epcis_shape(self) -> (EpcisType, Action, &'static str, Option<&'static str>) {
        match self {
            EventKind::Application => (
                EpcisType::Object,
                Action::Add,
                "commissioning",
                Some("active"),
            ),
            EventKind::Aggregation => (
                EpcisType::Aggregation,
                Action::Add,
                "packing",
                Some("in_progress"),
            ),
            EventKind::Dispatch => (
                EpcisType::Object,
                Action::Observe,
                "shipping",
                Some("in_transit"),
            ),
            EventKind::Arrival => (
                EpcisType::Object,
                Action::Observe,
                "receiving",
                Some("in_progress"),
            ),
            EventKind::Transloading => (
                EpcisType::Object,
                Action::Observe,
                "transporting",
                Some("in_transit"),
            ),
            EventKind::Disaggregation => {
                (EpcisType::Aggregation, Action::Delete, "unpacking", None)
            }
            EventKind::Deactivation => (
                EpcisType::Object,
                Action::Delete,
                "decommissioning",
                Some("inactive"),
            ),
            EventKind::Invoice | EventKind::Order | EventKind::Payment => {
                (EpcisType::Transaction, Action::Add, "other", None)
            }
            EventKind::Other => (EpcisType::Object, Action::Observe, "other", None),
        }
    }

    /// The EPCIS business transaction type used for invoices, orders and payments.
    pub fn biz_transaction_type(self) -> Option<&'static str> {
        match self {
            EventKind::Invoice => Some("inv"),
            EventKind::Order => Some("po"),
            EventKind::Payment => Some(PAYMENT_BTT),
            _ => None,
        }
    }
}

/// The business-transaction type GSP uses for payment receipts (CBV has none).
pub const PAYMENT_BTT: &str = "urn:gsp:btt:payment";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_numbers_round_trip_and_are_unique() {
        fn check<T: Copy + PartialEq + std::fmt::Debug>(
            all: &[T],
            to: fn(T) -> i16,
            from: fn(i16) -> Option<T>,
        ) {
            let mut seen = std::collections::HashSet::new();
            for &v in all {
                assert!(seen.insert(to(v)), "{v:?} reuses a number");
                assert_eq!(from(to(v)), Some(v));
            }
        }
        check(Level::ALL, Level::to_i16, Level::from_i16);
        check(CodeStatus::ALL, CodeStatus::to_i16, CodeStatus::from_i16);
        check(EpcisType::ALL, EpcisType::to_i16, EpcisType::from_i16);
        check(Action::ALL, Action::to_i16, Action::from_i16);
        check(EventKind::ALL, EventKind::to_i16, EventKind::from_i16);
        check(Role::ALL, Role::to_i16, Role::from_i16);
    }

    #[test]
    fn every_eu_code_maps_back_to_its_kind() {
        for code in [
            "EUA", "EPA", "EDP", "ERP", "ETL", "EUD", "IDA", "EIV", "EPO", "EPR",
        ] {
            let kind = EventKind::from_eu_code(code).unwrap();
            assert_eq!(kind.eu_code(), Some(code));
        }
        assert_eq!(EventKind::from_eu_code("XYZ"), None);
    }
}
