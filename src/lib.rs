//! publish-guard: a policy engine that decides whether to publish, skip, back off or defer
//! when something asks to publish a Genesys Cloud WFM schedule, and runs those decisions
//! against the API.
//!
//! Compile a rules file once, then decide for any facts: evaluation is a pure function (no
//! clock, no I/O), so `now` is a fact like any other.
//!
//! ```
//! use publish_guard::{Facts, PhaseKind, Verdict, compile, evaluate, explain};
//!
//! let source = r#"
//! policy "embedded"
//! timezone "Europe/London"
//! sources servicenow
//!
//! on trigger {
//!   rule published when schedule.state == published then skip "already published"
//!   rule ready     when schedule.state == draft     then publish
//!   otherwise skip "no rule matched"
//! }
//!
//! on response {
//!   rule ok when response.status in 200..299 then done
//!   otherwise fail "unexpected response"
//! }
//! "#;
//! let policy = compile(source)?.policy;
//!
//! let mut facts = Facts::new();
//! facts
//!     .set_by_name("now", "2026-03-03T09:30:00Z".parse::<jiff::Timestamp>()?)?
//!     .set_by_name("trigger.source", "servicenow")?
//!     .set_by_name("schedule.state", "draft")?;
//!
//! let decision = evaluate(&policy, PhaseKind::Trigger, &facts);
//! assert!(matches!(decision.verdict, Verdict::Publish));
//! assert_eq!(decision.rule, "ready");
//! println!("{}", explain(&policy, PhaseKind::Trigger, &facts).render_human(source));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layout
//!
//! The modules follow the layers of the design, each using only those listed before it:
//!
//! - [`lock_file`] — one writer per file: the lock beside the store and the audit log.
//! - [`effects`] — the clock and the randomness the other layers take as parameters.
//! - [`language`] — the rules language as text: syntax tree, parser, formatter, spans,
//!   diagnostics, "did you mean", and the fact schema the grammar reads.
//! - [`policy`] — what the text means: fact values, windows, backoff, decisions, and the
//!   compiled [`Policy`].
//! - [`evaluation`] — the pure evaluator and `explain`.
//! - [`analysis`] — the checker ([`compile`]) and what it proves with the evaluator's own
//!   answers: shadowing, the fact space, policy diffs.
//! - [`api`] — the [`ScheduleApi`] trait, the one model of Genesys' API, its HTTP double, and
//!   the Genesys and REST clients.
//! - [`runner`] — the sans-IO state machine per schedule, its events and its live driver.
//! - [`sim`] — the simulator: scenarios on a virtual clock through the very runner.
//! - `pg` — the PostgreSQL database relay replicas share: connection, schema, the leader's
//!   term (feature `postgres`).
//! - [`audit`] — the hash-chained, signed audit log, in a file or in PostgreSQL.
//! - [`relay`] — the webhook relay service: intake, store, worker, server.
//! - [`config`] — `publish-guard.toml`.
//! - [`cli`] — the `publish-guard` command, a thin layer over the rest.
//!
//! # Cargo features
//!
//! The default builds everything. With `default-features = false` only the language, the
//! policy and evaluation build, with none of tokio, axum, reqwest, rusqlite or clap.
//! `runner` adds the runner, the API model and the simulator; `genesys` the HTTP clients;
//! `relay` the service, its store and the audit log; `cli` the command; `postgres` the relay
//! on PostgreSQL for several replicas.

pub mod analysis;
#[cfg(feature = "runner")]
pub mod api;
#[cfg(feature = "relay")]
pub mod audit;
#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "cli")]
pub mod config;
pub mod effects;
pub mod evaluation;
#[cfg(feature = "relay")]
mod group_commit;
pub mod language;
#[cfg(feature = "relay")]
pub mod lock_file;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod policy;
#[cfg(feature = "relay")]
pub mod relay;
#[cfg(feature = "runner")]
pub mod runner;
#[cfg(feature = "runner")]
pub mod sim;

pub use analysis::{CompileError, compile};
#[cfg(feature = "runner")]
pub use api::ScheduleApi;
pub use evaluation::evaluator::evaluate;
pub use evaluation::explain::{Explanation, explain};
pub use language::ast::PhaseKind;
pub use language::diagnostic::Diagnostic;
pub use policy::Policy;
pub use policy::decision::{Decision, Verdict};
pub use policy::facts::{FactError, FactInput, Facts, Value};
#[cfg(feature = "runner")]
pub use runner::{Runner, RunnerConfig};
