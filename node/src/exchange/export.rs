//! CSV exports of a case for officers' own reports: for code verifications
//! and supply-chain traces one row per code answered; otherwise one row per
//! message.

use super::answers::read_results_attachment;
use super::model::{MessageKind, MessageState};
use super::store::{CaseDetail, message_body};
use crate::storage::DbConnection;
use diesel::QueryResult;
use serde_json::Value;

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn write_row(out: &mut csv::Writer<Vec<u8>>, row: &[String]) {
    // Writing to a Vec cannot fail.
    let _ = out.write_record(row);
}

/// The case as CSV.
pub fn case_csv(conn: &mut DbConnection, case: &CaseDetail) -> QueryResult<Vec<u8>> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let answer = case
        .messages
        .iter()
        .rev()
        .find(|m| m.kind == MessageKind::Answer && m.state != MessageState::AwaitingApproval);
    let results: Option<Vec<Value>> = match answer.and_then(|a| a.body.as_ref()) {
        Some(body) => match body.get("results").and_then(Value::as_array) {
            Some(r) => Some(r.clone()),
            None => match body
                .pointer("/results_attachment/message_id")
                .and_then(Value::as_str)
            {
                Some(mid) => message_body(conn, &case.case.id, mid)?
                    .and_then(|(ct, bytes)| read_results_attachment(&ct, &bytes).ok()),
                None => None,
            },
        },
        None => None,
    };
    if let Some(results) = results {
        let header = [
            "code",
            "status",
            "manufacture_date",
            "manufacture_country",
            "facility_id",
            "facility_name",
            "machine_id",
            "shift",
            "production_time",
            "intended_market",
            "product",
            "first_customer",
            "invoice",
            "subsequent_purchasers",
        ];
        write_row(&mut out, &header.map(str::to_owned));
        for r in &results {
            let purchasers = r
                .get("subsequent_purchasers")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|p| cell(p.get("name")))
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default();
            write_row(
                &mut out,
                &[
                    cell(r.get("code")),
                    cell(r.get("status")),
                    cell(r.pointer("/manufacture/date")),
                    cell(r.pointer("/manufacture/location/country")),
                    cell(r.pointer("/facility/id")),
                    cell(r.pointer("/facility/name")),
                    cell(r.pointer("/machine/id")),
                    cell(r.pointer("/production/shift")),
                    cell(r.pointer("/production/time")),
                    cell(r.pointer("/intended_market/country")),
                    cell(r.pointer("/product/description")),
                    cell(r.pointer("/first_customer/party/name")),
                    cell(r.pointer("/first_customer/invoice_number")),
                    purchasers,
                ],
            );
        }
    } else {
        write_row(
            &mut out,
            &[
                "message_id",
                "direction",
                "kind",
                "from",
                "to",
                "state",
                "created_at",
                "content_type",
                "size",
                "sha256",
            ]
            .map(str::to_owned),
        );
        for m in &case.messages {
            write_row(
                &mut out,
                &[
                    m.message_id.clone(),
                    m.direction.to_owned(),
                    m.kind.as_str().to_owned(),
                    m.from.clone(),
                    m.to.clone(),
                    m.state.as_str().to_owned(),
                    crate::data::epcis::format_time(m.created_at, "+00:00"),
                    m.content_type.clone(),
                    m.size.to_string(),
                    m.body_sha256.clone(),
                ],
            );
        }
    }
    Ok(out.into_inner().unwrap_or_default())
}
