//! The directory's HTTPS API (TLS 1.3; SPEC.md §18.9).
//!
//! Public: `GET /directory/v1/checkpoint`, `GET /directory/v1/parties`,
//! `GET /directory/v1/consistency?from=&to=`, and `POST /directory/v1/register`
//! (a Party's signed record; a new Party has no registered certificate yet).
//! Registered nodes only (client certificate pinned in a current record):
//! `GET /directory/v1/snapshot[?from=N]`, `GET /directory/v1/records/{party}`,
//! `GET /directory/v1/entries/{index}`. Errors are JSON
//! `{"error": {"code", "message"}}`.

use super::admin::{self, SubmitOutcome};
use super::{AdminError, DirectoryServer};
use crate::tls::{self, ClientAuth, PinSet};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use gsp_federation::directory::{Submission, record::MAX_RECORD_BYTES};
use gsp_federation::{PartyCode, UnixMillis};
use std::sync::Arc;

/// Largest request body (a submission).
pub const MAX_BODY: usize = 4 * MAX_RECORD_BYTES;

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({
        "error": {"code": code, "message": message.into()}
    }))
}

fn admin_error(e: AdminError) -> HttpResponse {
    match e {
        AdminError::Directory(d) => {
            error(StatusCode::UNPROCESSABLE_ENTITY, d.code(), d.to_string())
        }
        AdminError::Storage(s) => {
            tracing::error!(error = %s, "directory request failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "internal",
                "the directory could not complete the request; its log has the details",
            )
        }
        other => error(StatusCode::BAD_REQUEST, "bad_request", other.to_string()),
    }
}

fn registered(req: &HttpRequest, server: &DirectoryServer) -> Result<(), Box<HttpResponse>> {
    match tls::peer_spki(req) {
        Some(pin) if server.pins.contains(&pin) => Ok(()),
        Some(_) => Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "unauthenticated_peer",
            "the client certificate is not pinned in any current Party record",
        ))),
        None => Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "unauthenticated_peer",
            "records are for registered nodes: present the node's TLS client certificate",
        ))),
    }
}

type State = web::Data<Arc<DirectoryServer>>;

async fn checkpoint(server: State) -> HttpResponse {
    let v = server.view();
    let c = &v.checkpoint;
    HttpResponse::Ok().json(serde_json::json!({
        "checkpoint": c.to_base64(),
        "tree_size": c.size,
        "root_hash": hex::encode(c.root),
        "time": c.time.0,
    }))
}

async fn parties(server: State) -> HttpResponse {
    let v = server.view();
    let list: Vec<_> = v
        .current
        .iter()
        .map(|(p, (_, e))| {
            let status = match &e.record {
                None => "revoked",
                Some(r) if r.record.status == gsp_federation::directory::RecordStatus::Revoked => {
                    "withdrawn"
                }
                Some(_) if e.kind == gsp_federation::directory::EntryKind::Revocation => "revoked",
                Some(_) => "active",
            };
            serde_json::json!({"party": p.as_str(), "status": status})
        })
        .collect();
    HttpResponse::Ok().json(serde_json::json!({"tree_size": v.log.len(), "parties": list}))
}

#[derive(serde::Deserialize)]
struct Sizes {
    from: u64,
    to: Option<u64>,
}

async fn consistency(server: State, q: web::Query<Sizes>) -> HttpResponse {
    let v = server.view();
    let to = q.to.unwrap_or(v.log.len());
    match v.log.consistency_proof(q.from, to) {
        Ok(proof) => HttpResponse::Ok().json(serde_json::json!({
            "from": q.from,
            "to": to,
            "from_root": v.log.root_at(q.from).map(hex::encode).unwrap_or_default(),
            "to_root": v.log.root_at(to).map(hex::encode).unwrap_or_default(),
            "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
        })),
        Err(e) => error(StatusCode::BAD_REQUEST, "bad_request", e.to_string()),
    }
}

#[derive(serde::Deserialize)]
struct From {
    from: Option<u64>,
}

async fn snapshot(req: HttpRequest, server: State, q: web::Query<From>) -> HttpResponse {
    if let Err(r) = registered(&req, &server) {
        return *r;
    }
    let from = q.from;
    let s = server.clone();
    match web::block(move || s.snapshot_json(from, UnixMillis::now())).await {
        Ok(Ok(bytes)) => HttpResponse::Ok()
            .content_type("application/json")
            .body(bytes.as_ref().clone()),
        Ok(Err(e)) => admin_error(e),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "internal", e.to_string()),
    }
}

fn proven(server: &DirectoryServer, index: u64) -> HttpResponse {
    let v = server.view();
    let size = v.log.len();
    let (Some(leaf), Ok(proof)) = (v.log.leaf(index), v.log.inclusion_proof(index, size)) else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("the log has no entry {index} (it holds {size})"),
        );
    };
    HttpResponse::Ok().json(serde_json::json!({
        "index": index,
        "entry": base64::engine::general_purpose::STANDARD.encode(leaf),
        "inclusion": proof.iter().map(hex::encode).collect::<Vec<_>>(),
        "checkpoint": v.checkpoint.to_base64(),
    }))
}

async fn record(req: HttpRequest, server: State, path: web::Path<String>) -> HttpResponse {
    if let Err(r) = registered(&req, &server) {
        return *r;
    }
    let Ok(party) = PartyCode::parse(&path) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!(
                "{:?} is not a Party code",
                path.chars().take(16).collect::<String>()
            ),
        );
    };
    let index = server.view().current.get(&party).map(|(i, _)| *i);
    match index {
        Some(i) => proven(&server, i),
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{party} has no record"),
        ),
    }
}

async fn entry(req: HttpRequest, server: State, path: web::Path<u64>) -> HttpResponse {
    if let Err(r) = registered(&req, &server) {
        return *r;
    }
    proven(&server, *path)
}

async fn register(server: State, body: web::Bytes) -> HttpResponse {
    let submission = match Submission::from_json(&body) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.code(), e.to_string()),
    };
    let s = server.clone();
    let outcome = web::block(move || {
        let key = s.secretariat.key.verifying_key();
        admin::submit(&s.db, &key, &submission, UnixMillis::now())
    })
    .await;
    match outcome {
        Ok(Ok(o @ SubmitOutcome::Pending { .. })) => HttpResponse::Accepted().json(o),
        Ok(Ok(o)) => {
            let s = server.clone();
            let _ = web::block(move || s.reload_if_changed()).await;
            HttpResponse::Ok().json(o)
        }
        Ok(Err(e)) => admin_error(e),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "internal", e.to_string()),
    }
}

/// Registers the directory's routes.
pub fn configure(cfg: &mut web::ServiceConfig, server: Arc<DirectoryServer>) {
    cfg.app_data(web::Data::new(server))
        .app_data(web::PayloadConfig::new(MAX_BODY))
        .app_data(web::QueryConfig::default().error_handler(|e, _| {
            actix_web::error::InternalError::from_response(
                e.to_string(),
                error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("query string: {e}"),
                ),
            )
            .into()
        }))
        .route("/directory/v1/checkpoint", web::get().to(checkpoint))
        .route("/directory/v1/parties", web::get().to(parties))
        .route("/directory/v1/consistency", web::get().to(consistency))
        .route("/directory/v1/snapshot", web::get().to(snapshot))
        .route("/directory/v1/records/{party}", web::get().to(record))
        .route("/directory/v1/entries/{index}", web::get().to(entry))
        .route("/directory/v1/register", web::post().to(register));
}

/// Binds the directory's HTTPS listener (client certificates optional,
/// checked against the registered pins) and starts the reload task.
pub fn bind(
    server: Arc<DirectoryServer>,
    listen: std::net::SocketAddr,
    workers: usize,
) -> std::io::Result<(actix_web::dev::Server, std::net::SocketAddr)> {
    let pins: Arc<dyn PinSet> = Arc::new(server.pins.clone());
    let config = tls::server_config(&server.secretariat.tls, ClientAuth::Optional(pins))
        .map_err(std::io::Error::other)?;
    let app_server = server.clone();
    let mut http = actix_web::HttpServer::new(move || {
        let s = app_server.clone();
        actix_web::App::new()
            .wrap(
                actix_web::middleware::Logger::new("%a \"%r\" %s %b %Dms")
                    .log_target("gsp::directory"),
            )
            .configure(move |cfg| configure(cfg, s))
    })
    .on_connect(tls::capture_peer_spki)
    .tcp_nodelay(true);
    if workers > 0 {
        http = http.workers(workers);
    }
    let http = http.bind_rustls_0_23(listen, config)?;
    let addr = http.addrs().first().copied().unwrap_or(listen);
    let reload = server;
    actix_web::rt::spawn(async move {
        loop {
            actix_web::rt::time::sleep(std::time::Duration::from_secs(1)).await;
            let s = reload.clone();
            match web::block(move || s.reload_if_changed()).await {
                Ok(Err(e)) => tracing::error!(error = %e, "reloading the directory log failed"),
                Err(e) => tracing::error!(error = %e, "reloading the directory log failed"),
                Ok(Ok(_)) => {}
            }
        }
    });
    Ok((http.run(), addr))
}
