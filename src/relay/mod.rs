//! The relay service's building blocks: webhook authentication, problem-details rejections and
//! the durable store of accepted triggers.

pub mod intake;
pub mod mapping;
pub mod metrics;
pub mod problem;
pub mod readiness;
pub mod rules;
pub mod server;
pub mod sqlite_store;
pub mod store;
pub mod webhook_auth;
pub mod worker;
