//! The integration tests, in one binary so the crate is linked once (as `casey/just` does).

mod api_support;
mod common;
mod process_support;
mod runner_support;

mod api_double;
mod api_genesys;
mod api_rest;
mod audit_log;
mod audit_rfc8785;
mod audit_runner_events;
mod cli_check;
mod diagnostics;
mod diff;
mod explain;
mod format;
mod layout;
mod notify_client;
mod notify_runner;
mod parse;
mod readme;
mod relay_crash;
mod relay_intake;
mod relay_process;
mod relay_serve;
mod relay_store;
mod relay_webhook_vectors;
mod relay_worker;
mod runner_cli;
mod runner_genesys;
mod runner_rest;
mod servicenow;
mod sim_run;
mod sim_scenario;
mod window;
