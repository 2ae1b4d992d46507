//! A MaxMind DB (`.mmdb`) loaded into memory, with a decoder that reads only what
//! routing needs and works for MaxMind's schema (GeoIP2/GeoLite2 City and Country)
//! and DB-IP's flat country-lite schema.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use maxminddb::Reader;
use serde::Deserialize;

use super::continents::continent_of;

/// Networks decoded when a database is opened, to reject corrupt files before use.
const VERIFY_SAMPLE: usize = 2_000;

/// Where a client is, as far as routing cares.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Location {
    pub continent: Option<String>,
    pub country: Option<String>,
    /// `CC-SUB`, e.g. `US-CA`.
    pub subdivision: Option<String>,
    /// `CC/City`, e.g. `GB/London` (English name).
    pub city: Option<String>,
    pub coords: Option<(f64, f64)>,
}

#[derive(Deserialize, Default)]
struct Code<'a> {
    #[serde(borrow)]
    code: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct Iso<'a> {
    #[serde(borrow)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct Names<'a> {
    #[serde(borrow)]
    en: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct City<'a> {
    #[serde(borrow, default)]
    names: Names<'a>,
}

#[derive(Deserialize, Default)]
struct Loc {
    latitude: Option<f64>,
    longitude: Option<f64>,
}

/// The fields we read; everything else in the record is skipped by serde.
#[derive(Deserialize, Default)]
struct Record<'a> {
    #[serde(borrow, default)]
    continent: Code<'a>,
    #[serde(borrow, default)]
    country: Iso<'a>,
    #[serde(borrow, default)]
    subdivisions: Vec<Iso<'a>>,
    #[serde(borrow, default)]
    city: City<'a>,
    #[serde(default)]
    location: Loc,
    /// DB-IP flat schema.
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
}

impl Record<'_> {
    fn into_location(self) -> Location {
        let country = self.country.iso_code.or(self.country_code).map(str::to_ascii_uppercase);
        let continent = self.continent.code.map(str::to_string).or_else(|| country.as_deref().and_then(continent_of).map(str::to_string));
        let subdivision = match (&country, self.subdivisions.first().and_then(|s| s.iso_code)) {
            (Some(c), Some(s)) => Some(format!("{c}-{}", s.to_ascii_uppercase())),
            _ => None,
        };
        let city = match (&country, self.city.names.en) {
            (Some(c), Some(n)) => Some(format!("{c}/{n}")),
            _ => None,
        };
        Location { continent, country, subdivision, city, coords: self.location.latitude.zip(self.location.longitude) }
    }
}

/// The result of one lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Prefix length of the network that holds the address (also on a miss).
    pub prefix: u8,
    /// Offset of the data record, None on a miss; records are shared by many networks.
    pub offset: Option<usize>,
}

/// An opened, verified database.
pub struct GeoDb {
    reader: Reader<Vec<u8>>,
    pub path: PathBuf,
    pub database_type: String,
    pub build_epoch: u64,
    /// Identity of the file when it was read, to notice a replacement.
    pub stamp: Option<FileStamp>,
}

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDb").field("path", &self.path).field("database_type", &self.database_type).finish()
    }
}

/// (modified, size, inode): changes when the file is rewritten or replaced by rename.
pub type FileStamp = (SystemTime, u64, u64);

/// The file's current identity, to tell whether it was replaced.
pub fn file_stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

impl GeoDb {
    /// Reads and verifies a database: it must open, and a sample of its records must decode.
    pub fn open(path: &Path) -> Result<GeoDb, String> {
        let stamp = file_stamp(path);
        let reader = Reader::open_readfile(path).map_err(|e| format!("{}: cannot open GeoIP database: {e}", path.display()))?;
        let meta = reader.metadata();
        let database_type = meta.database_type.clone();
        let build_epoch = meta.build_epoch;
        let networks = reader.networks(Default::default()).map_err(|e| format!("{}: {e}", path.display()))?;
        for r in networks.take(VERIFY_SAMPLE) {
            let r = r.map_err(|e| format!("{}: corrupt GeoIP database: {e}", path.display()))?;
            r.decode::<Record>().map_err(|e| format!("{}: corrupt GeoIP database record: {e}", path.display()))?;
        }
        Ok(GeoDb { reader, path: path.to_path_buf(), database_type, build_epoch, stamp })
    }

    /// Finds the network holding `ip` (IPv4-mapped addresses are looked up as IPv4).
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Option<Hit> {
        let ip = ip.to_canonical();
        let r = self.reader.lookup(ip).ok()?;
        let prefix = r.network().ok()?.prefix();
        Some(Hit { prefix, offset: r.offset().filter(|_| r.has_data()) })
    }

    /// Decodes the routing fields of the record holding `ip`.
    pub fn locate(&self, ip: IpAddr) -> Option<Location> {
        let r = self.reader.lookup(ip.to_canonical()).ok()?;
        r.decode::<Record>().ok().flatten().map(Record::into_location)
    }
}
