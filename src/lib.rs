//! publish-guard: a policy engine that decides whether to publish, skip or back off
//! when something asks to publish a Genesys Cloud WFM schedule.

pub mod api;
pub mod ast;
pub mod audit;
pub mod backoff;
pub mod checker;
pub mod cli;
pub mod config;
pub mod decision;
pub mod diagnostic;
pub mod evaluator;
pub mod event;
pub mod fact_space;
pub mod facts;
pub mod format;
pub mod parser;
pub mod policy;
pub mod relay;
pub mod runner;
pub mod schema;
pub mod shadowing;
pub mod span;
pub mod suggest;
pub mod window;
