//! TLS for the control plane, from the PEM files `config::access` read: the HTTPS
//! listener's `rustls::ServerConfig` (certificate chain and key, and with `[fleet]
//! client-ca` a required client certificate) and the fleet client's `ClientConfig`
//! (peers verified against `[fleet] ca`, else the system roots; an optional client
//! certificate). ring is the crypto provider, as for the health probes.
//!
//! Runs on the reload path ([`load`], from `control::build`), so `waypost check` and a
//! reload find an unreadable certificate, a key that does not match it or a CA bundle
//! without a certificate, name the key and file, and keep the previous state serving.
//! Nothing here is on the query path.

use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::config::access::{FleetTls, HttpTls, PemFile};
use crate::config::{Config, ConfigError, Key, Problem};

/// The only protocol the API speaks (hyper's HTTP/1.1 server), offered in ALPN.
const ALPN_HTTP1: &[u8] = b"http/1.1";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn err(file: &PemFile, detail: impl std::fmt::Display) -> ConfigError {
    Key::new(&file.key).err(format!("{}: {detail}", file.path.display()))
}

fn pem_detail(e: pem::Error, what: &str) -> String {
    match e {
        pem::Error::NoItemsFound => format!("no {what} in it (expected PEM)"),
        other => format!("not a PEM {what}: {other}"),
    }
}

/// Every certificate in a PEM file; at least one.
fn certificates(file: &PemFile) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_slice_iter(&file.bytes).collect::<Result<Vec<_>, _>>().map_err(|e| err(file, pem_detail(e, "certificate")))?;
    if certs.is_empty() {
        return Err(err(file, pem_detail(pem::Error::NoItemsFound, "certificate")));
    }
    Ok(certs)
}

/// A certificate chain and its private key, checked to belong together.
fn certified(cert: &PemFile, key: &PemFile) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ConfigError> {
    let chain = certificates(cert)?;
    let private = PrivateKeyDer::from_pem_slice(&key.bytes).map_err(|e| err(key, pem_detail(e, "private key")))?;
    CertifiedKey::from_der(chain.clone(), private.clone_key(), &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => err(key, format!("does not match the certificate in {}", cert.path.display())),
        other => err(cert, format!("unusable certificate or key: {other}")),
    })?;
    Ok((chain, private))
}

/// The CA certificates of a bundle as trust anchors.
fn roots(file: &PemFile) -> Result<RootCertStore, ConfigError> {
    let mut store = RootCertStore::empty();
    for c in certificates(file)? {
        store.add(c).map_err(|e| err(file, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(store)
}

/// The HTTPS listener's config.
pub fn server_config(t: &HttpTls) -> Result<Arc<ServerConfig>, ConfigError> {
    let (chain, key) = certified(&t.cert, &t.key)?;
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().map_err(|e| err(&t.cert, e))?;
    let builder = match &t.client_ca {
        Some(ca) => {
            // Every client must present a certificate chaining to the bundle (mTLS).
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider).build().map_err(|e| err(ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_single_cert(chain, key).map_err(|e| err(&t.cert, e))?;
    cfg.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(Arc::new(cfg))
}

/// The fleet client's config: peers verified against `[fleet] ca` (else the system's
/// roots), with this instance's client certificate when one is configured.
pub fn client_config(t: &FleetTls) -> Result<ClientConfig, ConfigError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let builder = ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().map_err(|e| Key::new("fleet").err(e))?;
    let builder = match &t.ca {
        Some(ca) => builder.with_root_certificates(roots(ca)?),
        None => builder.with_platform_verifier().map_err(|e| Key::new("fleet.ca").err(format!("cannot use the system's roots: {e}")))?,
    };
    let mut cfg = match &t.client {
        Some((cert, key)) => {
            let (chain, private) = certified(cert, key)?;
            builder.with_client_auth_cert(chain, private).map_err(|e| err(cert, e))?
        }
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(cfg)
}

/// Checks all TLS material of `config` and builds the listener's config (None: plain
/// HTTP). Problems carry the config file and the line of the key naming the file.
pub fn load(config: &Config) -> Result<Option<Arc<ServerConfig>>, Vec<Problem>> {
    let problem = |e: ConfigError| {
        let line = e.key.as_ref().map_or(0, |k| config.line_of(k));
        Problem { file: config.source.clone().unwrap_or_else(|| "(command line)".into()), line, msg: e.to_string() }
    };
    let mut problems = Vec::new();
    let server = match config.http_tls.as_ref().map(server_config).transpose() {
        Ok(s) => s,
        Err(e) => {
            problems.push(problem(e));
            None
        }
    };
    if config.fleet.tls != FleetTls::default() || config.fleet.peers.iter().any(|p| !p.is_plain_http()) {
        if let Err(e) = client_config(&config.fleet.tls) {
            problems.push(problem(e));
        }
    }
    if problems.is_empty() {
        Ok(server)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(key: &str, bytes: &[u8]) -> PemFile {
        PemFile { path: format!("/etc/waypost/{key}.pem").into(), key: key.into(), bytes: bytes.to_vec() }
    }

    #[test]
    fn files_without_what_they_should_hold_say_so_with_key_and_path() {
        let tls = FleetTls { ca: Some(pem("fleet.ca", b"just text\n")), client: None };
        assert_eq!(client_config(&tls).unwrap_err().to_string(), "fleet.ca: /etc/waypost/fleet.ca.pem: no certificate in it (expected PEM)");
        let broken = b"-----BEGIN CERTIFICATE-----\nAAAA\n";
        let tls = FleetTls { ca: Some(pem("fleet.ca", broken)), client: None };
        let e = client_config(&tls).unwrap_err().to_string();
        assert!(e.starts_with("fleet.ca: /etc/waypost/fleet.ca.pem: not a PEM certificate: "), "{e}");
    }
}
