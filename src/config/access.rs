//! Who may use the HTTP API, validated: the tokens by role ([`Role`]: admin, peer, read),
//! each given inline or read from a file so it stays out of the config, and the TLS
//! material (PEM files, read here as bytes) for the HTTPS listener and the fleet client.
//!
//! Only reads files; parsing certificates and keys (and checking a key matches its
//! certificate) is `crate::tls`, on the reload path, so `waypost check` does it too.
//! A [`Secret`] never shows in `Debug` output, so a token cannot reach a log line or the
//! status document by accident.

use std::fmt;
use std::path::{Path, PathBuf};

use super::error::{ConfigError, Key};

/// What a bearer token opens. A token opens only its own role's endpoints: the roles'
/// tokens must differ (checked by [`check_distinct`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Overrides and reload (`[health] admin-token`).
    Admin,
    /// Fleet observations only (`[fleet] token`).
    Peer,
    /// `/v1/status`, the page, `/v1/lookup`, `/metrics` (`[health] read-token`; open without one).
    Read,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Peer => "peer",
            Role::Read => "read",
        }
    }
}

/// A token: compared in constant time by the API, shown as `Secret(…)` in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The token's text, for comparing and for sending to a peer; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_string())
    }
}

/// A token from `KEY = "…"` or `KEY-file = "…"` (relative to the config's folder; the
/// file's text without surrounding whitespace). Both set, an empty inline token or a
/// missing, unreadable or empty file is an error naming the key (and the file).
pub fn secret(inline: Option<&str>, file: Option<&str>, key: &str, base: &Path) -> Result<Option<Secret>, ConfigError> {
    let file_key = Key::new(&format!("{key}-file"));
    match (inline, file) {
        (Some(_), Some(_)) => Err(file_key.err(format!("set either {key} or {key}-file, not both"))),
        (Some(""), None) => Ok(None),
        (Some(t), None) => Ok(Some(Secret(t.to_string()))),
        (None, Some(f)) => {
            let path = base.join(f);
            let text = std::fs::read_to_string(&path).map_err(|e| file_key.err(format!("cannot read {}: {e}", path.display())))?;
            let t = text.trim();
            if t.is_empty() {
                return Err(file_key.err(format!("{} is empty", path.display())));
            }
            Ok(Some(Secret(t.to_string())))
        }
        (None, None) => Ok(None),
    }
}

/// No two roles share a token (else one role's token would open the other's endpoints).
pub fn check_distinct(tokens: &[(&str, Option<&Secret>)]) -> Result<(), ConfigError> {
    for (i, (ka, a)) in tokens.iter().enumerate() {
        for (kb, b) in &tokens[i + 1..] {
            if let (Some(a), Some(b)) = (a, b) {
                if a == b {
                    return Err(Key::new(kb).err(format!("must differ from {ka}: a token opens only its own role's endpoints")));
                }
            }
        }
    }
    Ok(())
}

/// A PEM file as read at load time (its bytes are parsed by `crate::tls`). Equal when
/// path and contents are, so a reload notices a replaced certificate.
#[derive(Clone, PartialEq, Eq)]
pub struct PemFile {
    pub path: PathBuf,
    /// The config key that names it (for problems found when parsing it).
    pub key: String,
    pub bytes: Vec<u8>,
}

impl fmt::Debug for PemFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the bytes: a private key is one of these.
        write!(f, "PemFile({})", self.path.display())
    }
}

/// Reads the PEM file `path` (relative to `base`) named by `key`.
pub fn pem(path: &str, key: &str, base: &Path) -> Result<PemFile, ConfigError> {
    let full = base.join(path);
    let bytes = std::fs::read(&full).map_err(|e| Key::new(key).err(format!("cannot read {}: {e}", full.display())))?;
    Ok(PemFile { path: full, key: key.to_string(), bytes })
}

/// The HTTPS listener (`[server] http-tls-cert`, `http-tls-key`; `[fleet] client-ca`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTls {
    /// The certificate chain, leaf first.
    pub cert: PemFile,
    pub key: PemFile,
    /// With it, every client must present a certificate issued by one of these (mTLS).
    pub client_ca: Option<PemFile>,
}

/// How this instance connects to `https://` peers (`[fleet] ca`, `client-cert`, `client-key`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FleetTls {
    /// Roots peers' certificates must chain to; None: the system's roots.
    pub ca: Option<PemFile>,
    /// The certificate (chain) and key this instance presents to its peers.
    pub client: Option<(PemFile, PemFile)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_inline_or_from_a_file_and_never_show() {
        let dir = crate::test_dir::TestDir::new("access");
        std::fs::write(dir.join("admin.token"), "s3cret\n").unwrap();
        std::fs::write(dir.join("empty.token"), " \n").unwrap();
        let t = secret(None, Some("admin.token"), "health.admin-token", &dir).unwrap().unwrap();
        assert_eq!(t.expose(), "s3cret");
        assert_eq!(format!("{:?}", Some(&t)), "Some(Secret(…))");
        let e = secret(None, Some("empty.token"), "health.admin-token", &dir).unwrap_err().to_string();
        assert!(e.starts_with("health.admin-token-file: ") && e.ends_with("empty.token is empty"), "{e}");
        let e = secret(None, Some("missing.token"), "fleet.token", &dir).unwrap_err().to_string();
        assert!(e.starts_with("fleet.token-file: cannot read ") && e.contains("missing.token: No such file"), "{e}");
        let e = secret(Some("x"), Some("admin.token"), "health.admin-token", &dir).unwrap_err().to_string();
        assert!(e.contains("not both"), "{e}");
        assert_eq!(secret(Some(""), None, "health.admin-token", &dir).unwrap(), None);
    }

    #[test]
    fn roles_cannot_share_a_token() {
        let (a, b) = (Secret::from("one"), Secret::from("two"));
        assert!(check_distinct(&[("health.admin-token", Some(&a)), ("fleet.token", Some(&b)), ("health.read-token", None)]).is_ok());
        let e = check_distinct(&[("health.admin-token", Some(&a)), ("fleet.token", None), ("health.read-token", Some(&a))]).unwrap_err();
        assert_eq!(e.to_string(), "health.read-token: must differ from health.admin-token: a token opens only its own role's endpoints");
    }
}
