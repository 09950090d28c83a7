//! The relay service: receives webhooks, makes each accepted one durable before answering,
//! and feeds the runner.
//!
//! - [`intake`] — `POST /webhooks/{source}`: body limit, authentication ([`webhook_auth`]),
//!   the source's JSON [`mapping`], and an RFC 9457 problem for every refusal (`problem`).
//! - [`store`] — the durable queue of accepted triggers and delivery ids, behind the [`TriggerStore`]
//!   trait; [`sqlite_store`] is the embedded default.
//! - [`worker`] — one long-lived driver fed from the store: it runs the policy through the
//!   runner, records each step in the audit log before making the calls it decided, and
//!   carries on after a restart what its predecessor left running.
//! - [`rules`] — the running policy and its reload (checked first; a bad file changes nothing).
//! - [`hearing`] — with notifications on, the channel whose events the runner decides from.
//! - [`server`] — the HTTP server that ties them together, with `/healthz`, `/readyz`,
//!   `/metrics` ([`metrics`]) and graceful shutdown.
//!
//! [`TriggerStore`]: store::TriggerStore

pub(crate) mod choice;
pub mod connections;
pub mod durability;
pub mod hearing;
pub mod history;
pub mod intake;
pub mod leader;
pub mod mapping;
pub mod metrics;
#[cfg(feature = "postgres")]
pub mod postgres_store;
pub(crate) mod problem;
pub mod readiness;
pub(crate) mod resolve;
pub mod rules;
pub mod server;
pub mod sqlite_store;
pub mod store;
pub mod webhook_auth;
pub mod worker;
