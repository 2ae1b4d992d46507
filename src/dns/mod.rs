//! DNS transports: a lean blocking UDP loop per worker thread (`udp`) and tokio TCP
//! with RFC 7766 framing and limits (`tcp`, RFC 7828 keepalive in `keepalive`). Both
//! hand packet bytes to `answer::answer_packet` with one snapshot load per batch (UDP:
//! per recvmmsg; TCP: per pass over what one read brought), after looking for the same
//! query bytes in an answer cache (`cache`: one per UDP worker, one per tokio thread for TCP).
//!
//! Invariant: nothing here takes a lock per query or awaits anything but the socket (TCP's
//! per-client connection count is locked on accept and close only).

pub mod cache;
pub mod keepalive;
pub mod tcp;
pub mod udp;
