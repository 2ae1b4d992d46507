//! DNS transports: a lean blocking UDP loop per worker thread (`udp`) and tokio TCP
//! with RFC 7766 framing and limits (`tcp`). Both hand packet bytes to
//! `answer::answer_packet` with one snapshot load per packet (UDP: per batch, and a
//! worker first looks for the same query bytes in its answer cache, `cache`).
//!
//! Invariant: nothing here takes a lock per query or awaits anything but the socket (TCP's
//! per-client connection count is locked on accept and close only).

pub mod cache;
pub mod tcp;
pub mod udp;
