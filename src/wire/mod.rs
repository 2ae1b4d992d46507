//! The DNS wire format as the query path needs it: names, query parsing and
//! response writing. No allocation per query beyond the caller's reusable buffer.

pub mod name;
pub mod query;
pub mod response;

pub use name::Name;
