//! Every limit and default in one place, each with the reason for its value. A limit a
//! config key may change is a [`Limit`]: its default and the range the key may set.

use std::time::Duration;

/// A limit's default and the range a config key may set it to (after NLnet Labs
/// `domain`'s `DefMinMax`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit<T> {
    pub default: T,
    pub min: T,
    pub max: T,
}

impl<T: Copy + PartialOrd> Limit<T> {
    pub const fn new(default: T, min: T, max: T) -> Limit<T> {
        Limit { default, min, max }
    }

    pub fn contains(&self, v: T) -> bool {
        self.min <= v && v <= self.max
    }

    /// `v` raised to the minimum (for keys where a value below it is taken as the minimum).
    pub fn at_least_min(&self, v: T) -> T {
        if v < self.min {
            self.min
        } else {
            v
        }
    }
}

// --- Listeners and files -----------------------------------------------------------

/// Where DNS is served when neither the config nor the command line says.
pub const DNS_LISTEN: &str = "127.0.0.1:1053";
/// Where the HTTP API is served by default.
pub const HTTP_LISTEN: &str = "127.0.0.1:8053";
/// Zones directory, relative to the config file.
pub const ZONES_DIR: &str = "zones";
/// How often the GeoIP database file is checked for replacement.
pub const GEO_DB_POLL: Duration = Duration::from_secs(2);

// --- Answers -----------------------------------------------------------------------

/// CH TXT `version.bind` / `version.server` (Knot answers its name and version too; an
/// operator who prefers not to say sets `server.version = ""`). The identity (`id.server`)
/// defaults to `[fleet] vantage` when set, else the host name, as Knot uses.
pub const VERSION: &str = concat!("Waypost ", env!("CARGO_PKG_VERSION"));
/// Longest CH TXT identity or version: one TXT character-string.
pub const MAX_CHAOS_TEXT: usize = 255;
/// Longest NSID (RFC 5001 sets no limit; this keeps it well inside any UDP answer).
pub const MAX_NSID: usize = 128;

/// Largest UDP response (RFC 9715 and DNS flag day 2020: 1232 avoids IP fragmentation);
/// at least 512 (RFC 1035 §4.2.1), at most 4096 (no path carries more unfragmented).
pub const UDP_MAX_PAYLOAD: Limit<u16> = Limit::new(1232, 512, 4096);
/// Largest UDP response as a multiple of the query's size (never below 512 bytes), so UDP
/// without cookies cannot amplify much: 40× lets a 28-byte query with EDNS get 1,120
/// bytes. 0 turns the bound off.
pub const UDP_MAX_AMPLIFICATION: u16 = 40;
/// Most TCP threads `server.tcp-threads` may ask for (each holds a 4096-answer cache).
pub const MAX_TCP_THREADS: usize = 64;
/// UDP worker threads; 0 means one per available core.
pub const UDP_WORKERS: usize = 0;

/// Largest TTL a config key may give. RFC 2181 §8: "a TTL value is an unsigned number,
/// with a minimum value of 0, and a maximum value of 2147483647."
pub const MAX_TTL: u32 = 0x7fff_ffff;
/// Default service TTL.
pub const SERVICE_TTL: u32 = 300;
/// Default TTL while failed over or wavering: caches come back within seconds.
pub const FAILOVER_TTL: u32 = 10;
/// `nearest-n` without `n`: two data centres' addresses; at least one.
pub const NEAREST_N: Limit<usize> = Limit::new(2, 1, usize::MAX);

/// At most this many data centres (orders and subsets are kept in u64 bit masks).
pub const MAX_DATACENTERS: usize = 64;
/// `nearest-n` subsets are precomputed; their count is capped.
pub const MAX_SUBSETS_PER_SERVICE: usize = 10_000;

// --- TCP ---------------------------------------------------------------------------

/// Concurrent TCP connections across all clients (at least 1).
pub const TCP_MAX_CONNECTIONS: Limit<usize> = Limit::new(1024, 1, usize::MAX);
/// Concurrent TCP connections from one client address (RFC 7766 §6.2.2 lets servers
/// limit them; one host cannot take every slot).
pub const TCP_MAX_CONNECTIONS_PER_CLIENT: Limit<usize> = Limit::new(32, 1, usize::MAX);
/// Idle time allowed between queries on a TCP connection (RFC 7766 §6.2.3 suggests seconds, not minutes).
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed to receive one whole message once its first byte arrived (slow-loris guard).
pub const TCP_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed to write one response before the connection is closed (a client that never reads).
pub const TCP_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

// --- Zones -------------------------------------------------------------------------

/// Records one zone may hold, and records one RRset may hold, at load time.
pub const MAX_ZONE_RECORDS: usize = 5_000_000;
pub const MAX_RRSET_RECORDS: usize = 4_096;
/// A signed zone whose RRSIGs expire within this many seconds loads with a warning: 3
/// days, time for an operator to re-sign before validating resolvers see it as bogus.
pub const RRSIG_EXPIRY_MARGIN: u64 = 3 * 86_400;

// --- Response rate limiting --------------------------------------------------------

/// Responses per second per (client prefix, response class); 0 disables RRL.
pub const RRL_RATE: u32 = 200;
/// Every 2nd limited response is sent truncated, so a real resolver retries over TCP.
pub const RRL_SLIP: u32 = 2;
/// Client prefixes that share a budget: /24 for IPv4, /56 for IPv6 (one site each).
pub const RRL_IPV4_PREFIX: Limit<u8> = Limit::new(24, 0, 32);
pub const RRL_IPV6_PREFIX: Limit<u8> = Limit::new(56, 0, 128);
/// Never limited: the host itself (monitoring, benchmarks on loopback).
pub const RRL_EXEMPT: [&str; 2] = ["127.0.0.0/8", "::1/128"];

// --- Health checks -----------------------------------------------------------------

/// Probe interval (gdnsd uses 10 s × 10; these fail over in ~6 s); at least 100 ms, so a
/// typo cannot turn checks into a flood.
pub const CHECK_INTERVAL: Limit<Duration> = Limit::new(Duration::from_secs(2), Duration::from_millis(100), Duration::MAX);
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// Consecutive failures to go down and successes to come back (at least 1).
pub const CHECK_FALL: Limit<u32> = Limit::new(3, 1, u32::MAX);
pub const CHECK_RISE: Limit<u32> = Limit::new(2, 1, u32::MAX);
/// Probes in flight at once (at least 1).
pub const CHECK_MAX_CONCURRENT: Limit<usize> = Limit::new(64, 1, usize::MAX);
/// Bytes of a health-check HTTP body read at most (the rest is not read).
pub const HTTP_BODY_LIMIT: usize = 64 * 1024;
/// Networks health checks may not probe unless the operator says otherwise: link-local
/// (incl. the 169.254.169.254 metadata service), and other clouds' metadata addresses,
/// so checks cannot be turned against the network they run in.
pub const DENY_NETWORKS: [&str; 5] = ["169.254.0.0/16", "fe80::/10", "100.100.100.200/32", "fd00:ec2::254/128", "0.0.0.0/8"];

// --- Fleet -------------------------------------------------------------------------

/// Default peer pull interval.
pub const PEER_INTERVAL: Duration = Duration::from_secs(1);
/// Peer responses larger than this are rejected (a peer cannot exhaust our memory).
pub const MAX_PEER_BODY: usize = 4 * 1024 * 1024;
/// The default vantage point's name.
pub const VANTAGE: &str = "local";

// --- HTTP API ----------------------------------------------------------------------

/// Request body limit.
pub const HTTP_MAX_BODY: usize = 64 * 1024;
/// Concurrent connections; more are closed at once.
pub const HTTP_MAX_CONNECTIONS: usize = 256;
/// Time to complete a TLS handshake on the HTTPS listener (as for the headers).
pub const HTTP_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Failed authentications (401) are counted per client (IPv4 address, IPv6 /64) over
/// this window: enough to see a guessing run, short enough that a typo is forgiven soon.
pub const AUTH_FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Each 401 is answered this much later per failure already in the window
/// ([`AUTH_FAILURE_MAX_DELAY`] at most): a guesser is slowed, a person does not notice.
pub const AUTH_FAILURE_DELAY_STEP: Duration = Duration::from_millis(100);
pub const AUTH_FAILURE_MAX_DELAY: Duration = Duration::from_secs(1);
/// After this many failures in the window, the client's guarded requests get 429 without
/// their token being looked at, until the window ends: at most 10 guesses a minute.
pub const AUTH_FAILURES_BEFORE_BLOCK: u32 = 10;
/// Clients tracked at once (the oldest is forgotten first): bounds the table's memory.
pub const AUTH_FAILURE_CLIENTS: usize = 4096;
/// Time to receive a request's headers (slow-loris guard).
pub const HTTP_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a connection (all its requests) may stay open.
pub const HTTP_CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// Largest request head (request line + headers) in bytes.
pub const HTTP_MAX_HEAD: usize = 16 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_within_their_limits_and_lists_parse() {
        assert!(UDP_MAX_PAYLOAD.contains(UDP_MAX_PAYLOAD.default));
        assert!(CHECK_INTERVAL.contains(CHECK_INTERVAL.default));
        assert!(RRL_IPV4_PREFIX.contains(RRL_IPV4_PREFIX.default) && RRL_IPV6_PREFIX.contains(RRL_IPV6_PREFIX.default));
        for n in DENY_NETWORKS.iter().chain(&RRL_EXEMPT) {
            assert!(n.parse::<ipnet::IpNet>().is_ok(), "{n}");
        }
    }
}

/// Validity of the signatures Waypost makes, from the window's start (which is a day
/// after their inception): 21 days, so a signature made at the start of a 7-day window
/// is still good for 14 days when the next window's signatures replace it.
pub const SIGNATURE_VALIDITY: u64 = 21 * 86_400;
/// How often Waypost makes signatures again (window length): 7 days.
pub const SIGNATURE_REFRESH: u64 = 7 * 86_400;

/// Compact denial (RFC 9824) signs a denial per query for names that do not exist (and
/// wildcard answers): at most this many signatures per second per UDP thread, so a flood of
/// random names (spoofed, uncacheable) costs bounded CPU; past it UDP queries get TC=1
/// and a resolver retries over TCP, whose threads may sign 4 times as many. 2000 P-256
/// signatures a second are about 4% of a core (19.8 µs each, `benches/signing.rs`).
pub const COMPACT_SIGNING_RATE: Limit<u32> = Limit::new(2000, 1, 1_000_000);

// --- Zone transfer -----------------------------------------------------------------

/// Serial changes kept per zone for IXFR (RFC 1995): enough for a secondary that missed
/// a day of hourly changes to catch up by difference; older serials get the whole zone.
pub const TRANSFER_HISTORY: Limit<usize> = Limit::new(16, 0, 1000);
/// TSIG fudge (RFC 8945 §5.2.3: "300 seconds is RECOMMENDED").
pub const TSIG_FUDGE: u16 = 300;
/// Largest message of an AXFR/IXFR stream: a TCP message's limit, less room for TSIG.
pub const TRANSFER_MESSAGE_SIZE: usize = 65_535 - 512;
/// NOTIFY retries (RFC 1996 §3.6: "the interval between retransmissions ... and the
/// total number of retransmissions should be operational parameters"); as BIND: 5 tries,
/// the wait doubling from 1 s.
pub const NOTIFY_TRIES: u32 = 5;
pub const NOTIFY_FIRST_WAIT: Duration = Duration::from_secs(1);
/// How long a transfer from a primary may take before it is abandoned, by default (a
/// primary that hangs must not hold the zone's refresh forever); `[transfer] timeout`.
pub const TRANSFER_IN_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest zone received by transfer, in bytes of wire messages (a runaway primary).
pub const TRANSFER_IN_MAX_BYTES: usize = 512 << 20;
/// SOA refresh and retry are held to at least this (a primary's 0 would spin).
pub const SECONDARY_MIN_REFRESH: Duration = Duration::from_secs(5);

/// How much lower than the process the threads that build snapshots (parse zones, sign
/// them) run (nice +10): on a busy machine a big reload yields the cores to the threads
/// that answer queries, and still finishes when they are idle.
pub const BUILD_NICENESS: i32 = 10;
