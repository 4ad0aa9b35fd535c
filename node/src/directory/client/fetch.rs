//! Talking to the directory over HTTPS: TLS 1.3 pinned to the directory's
//! key (`[directory] tls_pin`), presenting this node's certificate when it
//! has one (records are for registered nodes), with bounded response sizes.

use crate::config::DirectorySettings;
use crate::tls::{self, StaticPins};
use gsp_certs::TlsCredentials;
use gsp_federation::directory::{DirectoryError, SnapshotDoc, Submission};
use gsp_federation::keys::VerifyingKey;
use gsp_federation::log::Hash;
use std::sync::Arc;
use std::time::Duration;

/// Why a directory request failed (transport, HTTP, or a body that does not parse).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The settings are incomplete or malformed.
    #[error("{0}")]
    Config(String),
    /// The directory could not be reached or did not answer in time.
    #[error("directory {url} unreachable: {message}")]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The directory answered with an error.
    #[error("directory {url} answered {status}: {code}: {message}")]
    Refused {
        /// The URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The error code.
        code: String,
        /// Its sentence.
        message: String,
    },
    /// The body was malformed or too large.
    #[error("directory {url}: {source}")]
    Body {
        /// The URL.
        url: String,
        /// Why.
        source: DirectoryError,
    },
}

/// Parses 64 hex digits, naming the setting on failure.
pub fn hex32(key: &str, value: Option<&str>) -> Result<[u8; 32], FetchError> {
    let v = value.ok_or_else(|| FetchError::Config(format!("[directory] {key} is not set")))?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(v.trim(), &mut out)
        .map_err(|_| FetchError::Config(format!("[directory] {key} must be 64 hex digits")))?;
    Ok(out)
}

/// A client of one directory.
#[derive(Debug, Clone)]
pub struct DirectoryClient {
    base: String,
    /// Presents our certificate (records are for registered nodes).
    http: reqwest::Client,
    /// Presents none: the public endpoints, and registration (a certificate
    /// not yet pinned in a record would be refused in the handshake).
    public: reqwest::Client,
    /// The Secretariat's key, from the settings.
    pub secretariat: VerifyingKey,
}

/// Largest response body read from the directory.
const MAX_RESPONSE: usize = gsp_federation::directory::snapshot::MAX_SNAPSHOT_BYTES;

impl DirectoryClient {
    /// A client from `[directory]`, presenting `ours` as client certificate when given.
    pub fn new(
        settings: &DirectorySettings,
        ours: Option<&TlsCredentials>,
    ) -> Result<Self, FetchError> {
        let url = settings
            .url
            .as_deref()
            .ok_or_else(|| FetchError::Config("[directory] url is not set".into()))?;
        if !url.starts_with("https://") {
            return Err(FetchError::Config(format!(
                "[directory] url {url:?} must start with https://"
            )));
        }
        let secretariat = VerifyingKey(hex32(
            "secretariat_key",
            settings.secretariat_key.as_deref(),
        )?);
        let pin = hex32("tls_pin", settings.tls_pin.as_deref())?;
        let timeout = Duration::from_secs(settings.timeout_secs.max(1));
        let make = |cert: Option<&TlsCredentials>| {
            tls::client_config(Arc::new(StaticPins::one(pin)), cert)
                .and_then(|c| tls::http_client(c, timeout))
                .map_err(|e| FetchError::Config(e.to_string()))
        };
        Ok(Self {
            base: url.trim_end_matches('/').to_owned(),
            http: make(ours)?,
            public: make(None)?,
            secretariat,
        })
    }

    /// The directory's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    async fn read(&self, resp: reqwest::Response, url: &str) -> Result<Vec<u8>, FetchError> {
        let status = resp.status();
        let mut resp = resp;
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    if body.len() + c.len() > MAX_RESPONSE {
                        return Err(FetchError::Body {
                            url: url.into(),
                            source: DirectoryError::TooLarge {
                                what: "response".into(),
                                size: body.len() + c.len(),
                                limit: MAX_RESPONSE,
                            },
                        });
                    }
                    body.extend_from_slice(&c);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(FetchError::Unreachable {
                        url: url.into(),
                        message: e.to_string(),
                    });
                }
            }
        }
        if !status.is_success() {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            return Err(FetchError::Refused {
                url: url.into(),
                status: status.as_u16(),
                code: v["error"]["code"].as_str().unwrap_or("unknown").to_owned(),
                message: v["error"]["message"]
                    .as_str()
                    .unwrap_or("(no message)")
                    .chars()
                    .take(500)
                    .collect(),
            });
        }
        Ok(body)
    }

    async fn get(&self, path: &str, registered: bool) -> Result<Vec<u8>, FetchError> {
        let url = format!("{}{path}", self.base);
        let client = if registered { &self.http } else { &self.public };
        let resp = client
            .get(&url)
            .send()
            .await
            .map_err(|e| FetchError::Unreachable {
                url: url.clone(),
                message: error_chain(&e),
            })?;
        self.read(resp, &url).await
    }

    /// The snapshot, with a consistency proof from `from` when given.
    pub async fn snapshot(&self, from: Option<u64>) -> Result<SnapshotDoc, FetchError> {
        let path = match from {
            Some(f) => format!("/directory/v1/snapshot?from={f}"),
            None => "/directory/v1/snapshot".into(),
        };
        let body = self.get(&path, true).await?;
        SnapshotDoc::from_json(&body).map_err(|source| FetchError::Body {
            url: format!("{}{path}", self.base),
            source,
        })
    }

    /// A consistency proof between two sizes.
    pub async fn consistency(&self, from: u64, to: u64) -> Result<Vec<Hash>, FetchError> {
        let path = format!("/directory/v1/consistency?from={from}&to={to}");
        let body = self.get(&path, false).await?;
        let bad = |m: &str| FetchError::Body {
            url: path.clone(),
            source: DirectoryError::Malformed {
                what: "consistency proof".into(),
                message: m.into(),
            },
        };
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| bad(&e.to_string()))?;
        let list = v["proof"].as_array().ok_or_else(|| bad("no proof list"))?;
        list.iter()
            .take(64)
            .map(|h| {
                let mut out = [0u8; 32];
                hex::decode_to_slice(h.as_str().unwrap_or_default(), &mut out)
                    .map_err(|_| bad("a hash is not 64 hex digits"))?;
                Ok(out)
            })
            .collect()
    }

    /// Submits a signed record; returns the directory's JSON answer.
    pub async fn register(&self, submission: &Submission) -> Result<serde_json::Value, FetchError> {
        let url = format!("{}/directory/v1/register", self.base);
        let resp = self
            .public
            .post(&url)
            .json(submission)
            .send()
            .await
            .map_err(|e| FetchError::Unreachable {
                url: url.clone(),
                message: error_chain(&e),
            })?;
        let body = self.read(resp, &url).await?;
        serde_json::from_slice(&body).map_err(|e| FetchError::Body {
            url,
            source: DirectoryError::Malformed {
                what: "register answer".into(),
                message: e.to_string(),
            },
        })
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
