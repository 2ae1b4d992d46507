//! Every limit and default in one place, each with the reason for its value.

use std::time::Duration;

/// Where DNS is served when neither the config nor the command line says.
pub const DNS_LISTEN: &str = "127.0.0.1:1053";
/// Where the HTTP API is served by default.
pub const HTTP_LISTEN: &str = "127.0.0.1:8053";
/// Zones directory, relative to the config file.
pub const ZONES_DIR: &str = "zones";

/// CH TXT `version.bind` / `version.server` (Knot answers its name and version too; an
/// operator who prefers not to say sets `server.version = ""`). The identity (`id.server`)
/// defaults to `[fleet] vantage` when set, else the host name, as Knot uses.
pub const VERSION: &str = concat!("Waypost ", env!("CARGO_PKG_VERSION"));

/// Longest NSID (RFC 5001 sets no limit; this keeps it well inside any UDP answer).
pub const MAX_NSID: usize = 128;

/// Largest UDP response (RFC 9715 and DNS flag day 2020: 1232 avoids IP fragmentation).
pub const UDP_MAX_PAYLOAD: u16 = 1232;
/// UDP worker threads; 0 means one per available core.
pub const UDP_WORKERS: usize = 0;

/// Concurrent TCP connections across all clients.
pub const TCP_MAX_CONNECTIONS: usize = 1024;
/// Concurrent TCP connections from one client address (RFC 7766 §6.2.2 lets servers
/// limit them; one host cannot take every slot).
pub const TCP_MAX_CONNECTIONS_PER_CLIENT: usize = 32;
/// Idle time allowed between queries on a TCP connection (RFC 7766 §6.2.3 suggests seconds, not minutes).
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed to receive one whole message once its first byte arrived (slow-loris guard).
pub const TCP_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed to write one response before the connection is closed (a client that never reads).
pub const TCP_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest TTL a config key may give. RFC 2181 §8: "a TTL value is an unsigned number,
/// with a minimum value of 0, and a maximum value of 2147483647."
pub const MAX_TTL: u32 = 0x7fff_ffff;

/// Records one zone may hold, and records one RRset may hold, at load time.
pub const MAX_ZONE_RECORDS: usize = 5_000_000;
pub const MAX_RRSET_RECORDS: usize = 4_096;

/// HTTP API: request body limit.
pub const HTTP_MAX_BODY: usize = 64 * 1024;
/// HTTP API: concurrent connections; more are closed at once.
pub const HTTP_MAX_CONNECTIONS: usize = 256;
/// HTTP API: time to receive a request's headers (slow-loris guard).
pub const HTTP_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP API: longest a connection (all its requests) may stay open.
pub const HTTP_CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// HTTP API: largest request head (request line + headers) in bytes.
pub const HTTP_MAX_HEAD: usize = 16 * 1024;

/// How often the GeoIP database file is checked for replacement.
pub const GEO_DB_POLL: Duration = Duration::from_secs(2);
