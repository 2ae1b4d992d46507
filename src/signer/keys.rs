//! DNSSEC keys in BIND's file format (`K<zone>.+<alg>+<tag>.key` / `.private`), as
//! `dnssec-keygen`, `ldns-keygen` and `keymgr` write them, with their timing metadata.
//!
//! Algorithms 13 (ECDSA P-256 with SHA-256, RFC 6605) and 15 (Ed25519, RFC 8080). A key
//! whose private half does not match its DNSKEY is rejected (ring checks the pair).

use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use crate::wire::Name;

pub const ECDSAP256SHA256: u8 = 13;
pub const ED25519: u8 = 15;
/// DNSKEY flags: Zone Key (RFC 4034 §2.1.1) and Secure Entry Point (RFC 3757).
pub const ZONE_KEY: u16 = 0x0100;
pub const SEP: u16 = 0x0001;

/// Signs with one private key.
pub enum Signer {
    P256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signer::P256(_) => "Signer(P-256)",
            Signer::Ed25519(_) => "Signer(Ed25519)",
        })
    }
}

impl Signer {
    /// The DNSSEC signature over `data`: r‖s for P-256 (RFC 6605 §4), the 64-octet
    /// signature for Ed25519 (RFC 8080 §4).
    pub fn sign(&self, data: &[u8], rng: &SystemRandom) -> Option<Vec<u8>> {
        match self {
            Signer::P256(k) => k.sign(rng, data).ok().map(|s| s.as_ref().to_vec()),
            Signer::Ed25519(k) => Some(k.sign(data).as_ref().to_vec()),
        }
    }
}

/// When a key is in the zone and when it signs (BIND's timing fields; seconds since
/// the epoch). A missing field is "always" for Publish/Activate, "never" for the others.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timing {
    pub publish: Option<u64>,
    pub activate: Option<u64>,
    pub inactive: Option<u64>,
    pub delete: Option<u64>,
}

impl Timing {
    pub fn published(&self, now: u64) -> bool {
        self.publish.is_none_or(|t| t <= now) && self.delete.is_none_or(|t| now < t)
    }

    pub fn active(&self, now: u64) -> bool {
        self.published(now) && self.activate.is_none_or(|t| t <= now) && self.inactive.is_none_or(|t| now < t)
    }

    /// The next moment after `now` at which the key's state changes.
    pub fn next_event(&self, now: u64) -> Option<u64> {
        [self.publish, self.activate, self.inactive, self.delete].into_iter().flatten().filter(|&t| t > now).min()
    }
}

/// One key of a zone.
#[derive(Debug)]
pub struct Key {
    pub file: PathBuf,
    pub zone: Name,
    pub flags: u16,
    pub algorithm: u8,
    /// DNSKEY RDATA (flags, protocol 3, algorithm, public key).
    pub dnskey: Box<[u8]>,
    pub tag: u16,
    pub timing: Timing,
    pub signer: Signer,
}

impl Key {
    /// A key with the SEP flag: signs the DNSKEY RRset (a KSK, or a CSK when alone).
    pub fn is_sep(&self) -> bool {
        self.flags & SEP != 0
    }

    pub fn role(&self) -> &'static str {
        if self.is_sep() {
            "ksk"
        } else {
            "zsk"
        }
    }

    pub fn algorithm_name(&self) -> &'static str {
        match self.algorithm {
            ECDSAP256SHA256 => "ECDSAP256SHA256",
            _ => "ED25519",
        }
    }
}

/// RFC 4034 Appendix B: the key tag of DNSKEY RDATA.
pub fn key_tag(rdata: &[u8]) -> u16 {
    let mut ac: u32 = 0;
    for (i, &b) in rdata.iter().enumerate() {
        ac += if i & 1 == 1 { b as u32 } else { (b as u32) << 8 };
    }
    ac += (ac >> 16) & 0xffff;
    (ac & 0xffff) as u16
}

/// `YYYYMMDDHHMMSS` (UTC) as seconds since the epoch (read as RFC 3339 by humantime).
fn parse_time(s: &str) -> Option<u64> {
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rfc3339 = format!("{}-{}-{}T{}:{}:{}Z", &s[0..4], &s[4..6], &s[6..8], &s[8..10], &s[10..12], &s[12..14]);
    humantime::parse_rfc3339(&rfc3339).ok()?.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// Reads one key pair: `path` is the `.private` file; its `.key` is beside it.
pub fn read_key(private: &Path) -> Result<Key, String> {
    let public = private.with_extension("key");
    let priv_text = std::fs::read_to_string(private).map_err(|e| format!("cannot read: {e}"))?;
    let pub_text = std::fs::read_to_string(&public).map_err(|e| format!("{}: cannot read: {e}", public.display()))?;
    // The public file: one DNSKEY record in zone-file form (comments aside).
    let line = pub_text
        .lines()
        .map(|l| l.split(';').next().unwrap_or("").trim())
        .find(|l| !l.is_empty())
        .ok_or_else(|| format!("{}: no DNSKEY record", public.display()))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| w.eq_ignore_ascii_case("DNSKEY")).ok_or_else(|| format!("{}: no DNSKEY record", public.display()))?;
    let zone = Name::from_text(words[0]).ok_or_else(|| format!("{}: bad owner name {:?}", public.display(), words[0]))?;
    let fields = &words[at + 1..];
    if fields.len() < 4 {
        return Err(format!("{}: DNSKEY needs flags, protocol, algorithm and key", public.display()));
    }
    let flags: u16 = fields[0].parse().map_err(|_| format!("{}: bad DNSKEY flags {:?}", public.display(), fields[0]))?;
    let algorithm: u8 = fields[2].parse().map_err(|_| format!("{}: bad DNSKEY algorithm {:?}", public.display(), fields[2]))?;
    if fields[1] != "3" {
        return Err(format!("{}: DNSKEY protocol must be 3 (RFC 4034 §2.1.2)", public.display()));
    }
    if flags & ZONE_KEY == 0 || flags & !(ZONE_KEY | SEP) != 0 {
        return Err(format!("{}: DNSKEY flags {flags}: expected 256 (ZSK) or 257 (KSK)", public.display()));
    }
    let public_key: Vec<u8> = domain::utils::base64::decode(&fields[3..].concat()).map_err(|e| format!("{}: bad base64 key: {e}", public.display()))?;
    let mut private_key: Option<Vec<u8>> = None;
    let mut timing = Timing::default();
    let mut priv_alg: Option<u8> = None;
    for l in priv_text.lines() {
        let Some((k, v)) = l.split_once(':') else { continue };
        let v = v.trim();
        match k.trim() {
            "Algorithm" => priv_alg = v.split_whitespace().next().and_then(|a| a.parse().ok()),
            "PrivateKey" => private_key = Some(domain::utils::base64::decode(v).map_err(|e| format!("bad base64 private key: {e}"))?),
            "Publish" => timing.publish = parse_time(v),
            "Activate" => timing.activate = parse_time(v),
            "Inactive" => timing.inactive = parse_time(v),
            "Delete" => timing.delete = parse_time(v),
            _ => {}
        }
    }
    if priv_alg != Some(algorithm) {
        return Err(format!("algorithm {priv_alg:?} differs from the DNSKEY's {algorithm} in {}", public.display()));
    }
    let mut private_key = private_key.ok_or("no PrivateKey field")?;
    let signer = match algorithm {
        ECDSAP256SHA256 => {
            // BIND writes the private scalar as a big number without its leading zero
            // octets (about one key in a hundred has 31 octets); ring takes exactly 32.
            if private_key.len() < 32 {
                let mut padded = vec![0u8; 32 - private_key.len()];
                padded.extend_from_slice(&private_key);
                private_key = padded;
            }
            // ring takes the public point uncompressed: 0x04 ‖ x ‖ y (RFC 6605 §4 stores x ‖ y).
            let mut q = Vec::with_capacity(65);
            q.push(4);
            q.extend_from_slice(&public_key);
            EcdsaKeyPair::from_private_key_and_public_key(&ECDSA_P256_SHA256_FIXED_SIGNING, &private_key, &q, &SystemRandom::new())
                .map(Signer::P256)
                .map_err(|e| format!("the private key does not match the DNSKEY in {} ({e})", public.display()))?
        }
        ED25519 => Ed25519KeyPair::from_seed_and_public_key(&private_key, &public_key)
            .map(Signer::Ed25519)
            .map_err(|e| format!("the private key does not match the DNSKEY in {} ({e})", public.display()))?,
        a => return Err(format!("algorithm {a} is not supported (13 ECDSAP256SHA256 or 15 ED25519)")),
    };
    let mut dnskey = Vec::with_capacity(4 + public_key.len());
    dnskey.extend_from_slice(&flags.to_be_bytes());
    dnskey.push(3);
    dnskey.push(algorithm);
    dnskey.extend_from_slice(&public_key);
    let tag = key_tag(&dnskey);
    Ok(Key { file: private.to_path_buf(), zone, flags, algorithm, dnskey: dnskey.into(), tag, timing, signer })
}

/// Every key in `dir` (`K*.private` files), or every problem as (file, reason).
pub fn read_key_dir(dir: &Path) -> Result<Vec<Key>, Vec<(PathBuf, String)>> {
    let rd = std::fs::read_dir(dir).map_err(|e| vec![(dir.to_path_buf(), format!("cannot read key-dir: {e}"))])?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "private") && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('K')))
        .collect();
    files.sort();
    let mut keys = Vec::new();
    let mut problems = Vec::new();
    for f in files {
        match read_key(&f) {
            Ok(k) => keys.push(k),
            Err(e) => problems.push((f, e)),
        }
    }
    if problems.is_empty() {
        Ok(keys)
    } else {
        Err(problems)
    }
}

/// A new CSK (flags 257) for `zone`, written into `dir` as BIND writes it; returns the
/// path of the `.key` file.
pub fn generate(dir: &Path, zone: &Name, algorithm: u8, now: u64) -> Result<PathBuf, String> {
    let rng = SystemRandom::new();
    let (public, private): (Vec<u8>, Vec<u8>) = match algorithm {
        ECDSAP256SHA256 => {
            let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map_err(|e| format!("key generation failed: {e}"))?;
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref(), &rng).map_err(|e| format!("key generation failed: {e}"))?;
            // The private scalar follows `INTEGER 1, OCTET STRING (32)` in ring's PKCS#8
            // (RFC 5915 ECPrivateKey); checked below by rebuilding the pair from it.
            let bytes = doc.as_ref();
            let at = bytes.windows(5).position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20]).ok_or("unexpected PKCS#8 layout")? + 5;
            let scalar = bytes.get(at..at + 32).ok_or("unexpected PKCS#8 layout")?.to_vec();
            let point = pair.public_key().as_ref()[1..].to_vec();
            let mut q = vec![4];
            q.extend_from_slice(&point);
            EcdsaKeyPair::from_private_key_and_public_key(&ECDSA_P256_SHA256_FIXED_SIGNING, &scalar, &q, &rng).map_err(|_| "unexpected PKCS#8 layout")?;
            (point, scalar)
        }
        ED25519 => {
            let mut seed = [0u8; 32];
            ring::rand::SecureRandom::fill(&rng, &mut seed).map_err(|_| "no randomness")?;
            let pair = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|e| format!("key generation failed: {e}"))?;
            (pair.public_key().as_ref().to_vec(), seed.to_vec())
        }
        a => return Err(format!("algorithm {a} is not supported (13 ECDSAP256SHA256 or 15 ED25519)")),
    };
    let flags = ZONE_KEY | SEP;
    let mut rdata = flags.to_be_bytes().to_vec();
    rdata.extend_from_slice(&[3, algorithm]);
    rdata.extend_from_slice(&public);
    let tag = key_tag(&rdata);
    let base = dir.join(format!("K{zone}+{algorithm:03}+{tag:05}"));
    let stamp = format_time(now);
    let alg_name = if algorithm == ECDSAP256SHA256 { "ECDSAP256SHA256" } else { "ED25519" };
    let key_text = format!(
        "; This is a key-signing key, keyid {tag}, for {zone}\n; Created: {stamp}\n; Publish: {stamp}\n; Activate: {stamp}\n{zone} IN DNSKEY {flags} 3 {algorithm} {}\n",
        domain::utils::base64::encode_string(&public)
    );
    let private_text = format!(
        "Private-key-format: v1.3\nAlgorithm: {algorithm} ({alg_name})\nPrivateKey: {}\nCreated: {stamp}\nPublish: {stamp}\nActivate: {stamp}\n",
        domain::utils::base64::encode_string(&private)
    );
    let key_path = PathBuf::from(format!("{}.key", base.display()));
    let private_path = PathBuf::from(format!("{}.private", base.display()));
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::write(&key_path, key_text).map_err(|e| format!("{}: {e}", key_path.display()))?;
    write_private(&private_path, &private_text)?;
    Ok(key_path)
}

/// Private keys are readable by their owner only.
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

/// Seconds since the epoch as `YYYYMMDDHHMMSS` (UTC).
pub fn format_time(t: u64) -> String {
    let s = humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t)).to_string();
    s.chars().filter(char::is_ascii_digit).take(14).collect()
}

/// DS RDATA for a key (digest type 2, SHA-256; RFC 4034 §5.1.4, RFC 4509): also the
/// CDS the zone publishes (RFC 7344).
pub fn ds_rdata(key: &Key) -> Vec<u8> {
    let mut data = key.zone.as_wire().to_vec();
    data.extend_from_slice(&key.dnskey);
    let digest = ring::digest::digest(&ring::digest::SHA256, &data);
    let mut rd = key.tag.to_be_bytes().to_vec();
    rd.extend_from_slice(&[key.algorithm, 2]);
    rd.extend_from_slice(digest.as_ref());
    rd
}

/// The DS record for a key, in presentation format.
pub fn ds_text(key: &Key) -> String {
    let hex: String = ds_rdata(key)[4..].iter().map(|b| format!("{b:02X}")).collect();
    format!("{} IN DS {} {} 2 {hex}", key.zone, key.tag, key.algorithm)
}

/// The DNSKEY record in presentation format.
pub fn dnskey_text(key: &Key) -> String {
    format!("{} IN DNSKEY {} 3 {} {}", key.zone, key.flags, key.algorithm, domain::utils::base64::encode_string(&key.dnskey[4..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc() {
        assert_eq!(parse_time("19700101000000"), Some(0));
        assert_eq!(parse_time("20261201215653"), Some(1_796_162_213));
        assert_eq!(format_time(1_796_162_213), "20261201215653");
        assert_eq!(parse_time("2026120121565"), None);
    }

    #[test]
    fn generated_keys_read_back_and_sign() {
        let d = crate::test_dir::TestDir::new("keygen");
        let zone = Name::from_text("example.org.").unwrap();
        for alg in [ECDSAP256SHA256, ED25519] {
            let path = generate(&d, &zone, alg, 1_796_162_213).unwrap();
            let key = read_key(&path.with_extension("private")).unwrap();
            assert_eq!((key.algorithm, key.flags, key.is_sep()), (alg, 257, true));
            assert!(key.timing.active(1_796_162_213));
            assert_eq!(key.signer.sign(b"data", &SystemRandom::new()).map(|s| s.len()), Some(64));
            assert!(ds_text(&key).starts_with(&format!("example.org. IN DS {} {alg} 2 ", key.tag)));
        }
    }

    /// A key dnssec-keygen made whose private scalar starts with a zero octet: BIND writes
    /// it in 31 octets (tests/data/keys, kept from a roll test that failed on it).
    #[test]
    fn a_bind_p256_key_with_a_short_scalar_reads() {
        let private = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/keys/Kexample.com.+013+02263.private");
        let text = std::fs::read_to_string(&private).unwrap();
        let b64 = text.lines().find_map(|l| l.strip_prefix("PrivateKey: ")).unwrap();
        assert_eq!(domain::utils::base64::decode::<Vec<u8>>(b64).unwrap().len(), 31, "the fixture is a short one");
        let key = read_key(&private).unwrap();
        assert_eq!((key.tag, key.algorithm), (2263, ECDSAP256SHA256));
        assert_eq!(key.signer.sign(b"data", &SystemRandom::new()).map(|s| s.len()), Some(64));
    }

    #[test]
    fn a_private_key_that_does_not_match_its_dnskey_is_rejected() {
        let d = crate::test_dir::TestDir::new("keymismatch");
        let zone = Name::from_text("example.org.").unwrap();
        let a = generate(&d, &zone, ED25519, 0).unwrap();
        let b = generate(&d, &zone, ED25519, 0).unwrap();
        // b's private half with a's public half.
        let a_private = a.with_extension("private");
        std::fs::remove_file(&a_private).unwrap();
        std::fs::write(&a_private, std::fs::read(b.with_extension("private")).unwrap()).unwrap();
        let err = read_key(&a_private).unwrap_err();
        assert!(err.contains("does not match"), "{err}");
    }
}
