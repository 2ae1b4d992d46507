//! One integration-test crate, so the server is linked once.

mod differential;
mod dnssec;
mod faults;
mod dns_wire;
mod fleet;
mod geo;
mod geo_swap;
mod health;
mod knot;
mod limits;
mod page;
mod process;
mod reload;
mod signing;
mod resolvers;
mod rfc8906;
mod seams;
mod security;
mod status;
mod support;
mod transfer;
