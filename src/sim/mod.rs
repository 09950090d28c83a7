//! The simulator: replays a scenario on a virtual clock through the real runner and the
//! API model, and reports every decision, every call and the totals.

pub(crate) mod api;
pub(crate) mod durable;
pub mod engine;
pub mod expect;
pub mod explore;
pub mod generate;
pub(crate) mod record;
pub(crate) mod report;
pub mod scenario;
pub mod svg;
