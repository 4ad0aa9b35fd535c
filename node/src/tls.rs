//! TLS for GSP's listeners and clients: TLS 1.3 only, ring as the only
//! crypto provider, peers authenticated by **SPKI pin** (SHA-256 of the
//! certificate's SubjectPublicKeyInfo), never by a CA chain or a host name.
//!
//! - [`install_default_provider`]: makes ring the process-wide rustls
//!   provider, once (so nothing can pick aws-lc-rs by accident).
//! - [`server_config`]: a rustls `ServerConfig` from a node's (or the
//!   directory's) [`TlsCredentials`], with client authentication
//!   [`ClientAuth::None`], [`ClientAuth::Optional`] or [`ClientAuth::Required`]:
//!   a presented client certificate is accepted iff its pin is in the caller's
//!   [`PinSet`] and its TLS 1.3 handshake signature verifies.
//! - [`client_config`]: a rustls `ClientConfig` that trusts exactly the
//!   server pins of a [`PinSet`] and optionally presents our certificate;
//!   [`http_client`] wraps it in a reqwest client (ALPN set here: reqwest
//!   does not set it on a preconfigured config).
//! - [`capture_peer_spki`] for actix-web's `on_connect` and [`peer_spki`] for
//!   handlers: the calling peer's pin, read from its end-entity certificate.
//!
//! Certificate validity dates are not checked: what a peer may present is
//! decided by the signed directory record (pins with validity windows), which
//! is the only trust anchor. Not for: deciding *which* pins to trust (the
//! directory does) or speaking any application protocol.

use gsp_certs::TlsCredentials;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, ServerConfig,
    SignatureScheme,
};
use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A set of SPKI SHA-256 pins that may change while the process runs (the
/// directory's view of which certificates Parties' nodes present).
pub trait PinSet: Send + Sync + std::fmt::Debug {
    /// Whether a certificate with this SPKI SHA-256 is accepted now.
    fn contains(&self, spki_sha256: &[u8; 32]) -> bool;
}

/// A fixed set of pins (a configured directory pin, tests).
#[derive(Debug, Clone, Default)]
pub struct StaticPins(pub HashSet<[u8; 32]>);

impl StaticPins {
    /// A set of one pin.
    pub fn one(pin: [u8; 32]) -> Self {
        Self(HashSet::from([pin]))
    }
}

impl PinSet for StaticPins {
    fn contains(&self, spki_sha256: &[u8; 32]) -> bool {
        self.0.contains(spki_sha256)
    }
}

/// A pin set that can be replaced while listeners use it.
#[derive(Debug, Clone, Default)]
pub struct SharedPins(Arc<RwLock<HashSet<[u8; 32]>>>);

impl SharedPins {
    /// Replaces every pin.
    pub fn replace(&self, pins: HashSet<[u8; 32]>) {
        if let Ok(mut g) = self.0.write() {
            *g = pins;
        }
    }
}

impl PinSet for SharedPins {
    fn contains(&self, spki_sha256: &[u8; 32]) -> bool {
        self.0
            .read()
            .map(|g| g.contains(spki_sha256))
            .unwrap_or(false)
    }
}

/// Whether and how a server asks for client certificates.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    None,
    /// A client may present a certificate; if it does, its pin must be in the set.
    Optional(Arc<dyn PinSet>),
    /// A client must present a certificate whose pin is in the set.
    Required(Arc<dyn PinSet>),
}

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rustls refused the configuration (bad key, bad certificate).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
}

/// The ring provider, the only one GSP uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs ring as the process-default rustls provider (idempotent; a
/// provider installed earlier by someone else is left alone).
pub fn install_default_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

fn pin_of(cert: &CertificateDer<'_>) -> Result<[u8; 32], rustls::Error> {
    gsp_certs::spki_sha256(cert.as_ref())
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))
}

fn check_pin(pins: &dyn PinSet, cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
    let pin = pin_of(cert)?;
    if pins.contains(&pin) {
        Ok(())
    } else {
        Err(rustls::Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        ))
    }
}

#[derive(Debug)]
struct PinnedClients {
    pins: Arc<dyn PinSet>,
    required: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for PinnedClients {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.required
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        check_pin(self.pins.as_ref(), end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[derive(Debug)]
struct PinnedServer {
    pins: Arc<dyn PinSet>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        check_pin(self.pins.as_ref(), end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn key_of(creds: &TlsCredentials) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(creds.key_pkcs8_der.to_vec()))
}

/// A TLS 1.3 server configuration (ALPN `h2`, `http/1.1`) presenting `creds`.
pub fn server_config(creds: &TlsCredentials, auth: ClientAuth) -> Result<ServerConfig, TlsError> {
    install_default_provider();
    let provider = provider();
    let algorithms = provider.signature_verification_algorithms;
    let builder = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let cert = vec![CertificateDer::from(creds.cert_der.clone())];
    let mut config = match auth {
        ClientAuth::None => builder
            .with_no_client_auth()
            .with_single_cert(cert, key_of(creds))?,
        ClientAuth::Optional(pins) => builder
            .with_client_cert_verifier(Arc::new(PinnedClients {
                pins,
                required: false,
                algorithms,
            }))
            .with_single_cert(cert, key_of(creds))?,
        ClientAuth::Required(pins) => builder
            .with_client_cert_verifier(Arc::new(PinnedClients {
                pins,
                required: true,
                algorithms,
            }))
            .with_single_cert(cert, key_of(creds))?,
    };
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// A TLS 1.3 client configuration that accepts a server iff its pin is in
/// `server_pins`, presenting `client` as our certificate when given.
pub fn client_config(
    server_pins: Arc<dyn PinSet>,
    client: Option<&TlsCredentials>,
) -> Result<ClientConfig, TlsError> {
    install_default_provider();
    let provider = provider();
    let algorithms = provider.signature_verification_algorithms;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServer {
            pins: server_pins,
            algorithms,
        }));
    let mut config = match client {
        Some(c) => builder
            .with_client_auth_cert(vec![CertificateDer::from(c.cert_der.clone())], key_of(c))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// A reqwest client over `config` (ALPN set, TLS 1.3 only, pinned).
pub fn http_client(
    mut config: ClientConfig,
    timeout: Duration,
) -> Result<reqwest::Client, TlsError> {
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .build()
        .map_err(|e| TlsError::Client(e.to_string()))
}

/// The TLS peer's certificate pin, stored in a connection's extensions by
/// [`capture_peer_spki`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerSpki(pub [u8; 32]);

/// For `HttpServer::on_connect` (register it before `bind_rustls_0_23`):
/// records the pin of the peer's end-entity certificate, if it presented one.
pub fn capture_peer_spki(io: &dyn std::any::Any, ext: &mut actix_web::dev::Extensions) {
    type Tls = actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>;
    if let Some(tls) = io.downcast_ref::<Tls>() {
        let (_, conn) = tls.get_ref();
        if let Some(pin) = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| pin_of(c).ok())
        {
            ext.insert(PeerSpki(pin));
        }
    }
}

/// The calling peer's pin, when it presented an accepted certificate.
pub fn peer_spki(req: &actix_web::HttpRequest) -> Option<[u8; 32]> {
    req.conn_data::<PeerSpki>().map(|p| p.0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use gsp_certs::{InitOptions, PartyCode};
    use gsp_federation::UnixMillis;

    fn creds(party: &str, dir: &std::path::Path) -> TlsCredentials {
        let id = gsp_certs::init(&InitOptions {
            party: PartyCode::parse(party).unwrap(),
            hosts: vec!["127.0.0.1".into()],
            dir: dir.join(party),
            force: false,
            tls_days: 30,
            now: UnixMillis::now(),
        })
        .unwrap();
        id.tls().unwrap()
    }

    /// Runs a handshake in memory; Err is the first side's error.
    fn handshake(client: ClientConfig, server: ServerConfig) -> Result<Option<[u8; 32]>, String> {
        let mut c = rustls::ClientConnection::new(
            Arc::new(client),
            ServerName::try_from("127.0.0.1").unwrap().to_owned(),
        )
        .unwrap();
        let mut s = rustls::ServerConnection::new(Arc::new(server)).unwrap();
        for _ in 0..20 {
            let mut buf = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut buf).unwrap();
            }
            if !buf.is_empty() {
                s.read_tls(&mut buf.as_slice()).unwrap();
                s.process_new_packets()
                    .map_err(|e| format!("server: {e}"))?;
            }
            let mut buf = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut buf).unwrap();
            }
            if !buf.is_empty() {
                c.read_tls(&mut buf.as_slice()).unwrap();
                c.process_new_packets()
                    .map_err(|e| format!("client: {e}"))?;
            }
            if !c.is_handshaking() && !s.is_handshaking() && !c.wants_write() {
                assert_eq!(s.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
                return Ok(s
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| pin_of(c).unwrap()));
            }
        }
        Err("handshake did not finish".into())
    }

    fn pins(p: [u8; 32]) -> Arc<dyn PinSet> {
        Arc::new(StaticPins::one(p))
    }

    #[test]
    fn pinning_works_both_ways() {
        let tmp = tempfile::tempdir().unwrap();
        let server = creds("KEN", tmp.path());
        let client = creds("FRA", tmp.path());
        let other = creds("BRA", tmp.path());

        // Right pins both ways: the server learns the client's pin.
        let seen = handshake(
            client_config(pins(server.spki_sha256), Some(&client)).unwrap(),
            server_config(&server, ClientAuth::Required(pins(client.spki_sha256))).unwrap(),
        )
        .unwrap();
        assert_eq!(seen, Some(client.spki_sha256));

        // The client refuses a server whose pin it does not hold.
        let err = handshake(
            client_config(pins(other.spki_sha256), Some(&client)).unwrap(),
            server_config(&server, ClientAuth::Required(pins(client.spki_sha256))).unwrap(),
        )
        .unwrap_err();
        assert!(err.starts_with("client:"), "{err}");

        // The server refuses a client certificate whose pin it does not hold.
        let err = handshake(
            client_config(pins(server.spki_sha256), Some(&other)).unwrap(),
            server_config(&server, ClientAuth::Required(pins(client.spki_sha256))).unwrap(),
        )
        .unwrap_err();
        assert!(err.starts_with("server:"), "{err}");

        // Required: no certificate, no connection. Optional: fine without one,
        // but a wrong one is still refused.
        assert!(
            handshake(
                client_config(pins(server.spki_sha256), None).unwrap(),
                server_config(&server, ClientAuth::Required(pins(client.spki_sha256))).unwrap(),
            )
            .is_err()
        );
        assert_eq!(
            handshake(
                client_config(pins(server.spki_sha256), None).unwrap(),
                server_config(&server, ClientAuth::Optional(pins(client.spki_sha256))).unwrap(),
            )
            .unwrap(),
            None
        );
        assert!(
            handshake(
                client_config(pins(server.spki_sha256), Some(&other)).unwrap(),
                server_config(&server, ClientAuth::Optional(pins(client.spki_sha256))).unwrap(),
            )
            .is_err()
        );

        // A shared pin set can change under a running configuration.
        let shared = SharedPins::default();
        let cfg = server_config(&server, ClientAuth::Required(Arc::new(shared.clone()))).unwrap();
        assert!(
            handshake(
                client_config(pins(server.spki_sha256), Some(&client)).unwrap(),
                cfg.clone()
            )
            .is_err()
        );
        shared.replace(HashSet::from([client.spki_sha256]));
        assert!(
            handshake(
                client_config(pins(server.spki_sha256), Some(&client)).unwrap(),
                cfg
            )
            .is_ok()
        );
    }

    #[test]
    fn tls_1_2_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let server = creds("KEN", tmp.path());
        let client12 = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedServer {
                pins: pins(server.spki_sha256),
                algorithms: provider().signature_verification_algorithms,
            }))
            .with_no_client_auth();
        let err =
            handshake(client12, server_config(&server, ClientAuth::None).unwrap()).unwrap_err();
        assert!(err.contains("server:"), "{err}");
    }
}
