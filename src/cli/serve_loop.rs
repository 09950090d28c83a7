//! The relay's process loop, shared by `serve` and `serve --demo`: serve, reload the rules on
//! SIGHUP, stop gracefully on SIGTERM or ctrl-c.

use crate::cli::{CliError, Outcome};
use crate::relay::server::{Relay, ServeError};

/// Serve the relay `starting` starts; reload on SIGHUP; stop gracefully on SIGTERM or ctrl-c.
pub(crate) async fn run_until_stopped(
    starting: impl Future<Output = Result<Relay, ServeError>>,
) -> Result<Outcome, CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let usage = |e: &dyn std::fmt::Display| CliError::Usage(e.to_string());
    let mut hangup = signal(SignalKind::hangup()).map_err(|e| usage(&e))?;
    let mut terminate = signal(SignalKind::terminate()).map_err(|e| usage(&e))?;
    let relay = starting.await.map_err(|e| usage(&e))?;
    eprintln!("publish-guard relay listening on http://{}", relay.addr());
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                // Logged and counted by the relay; a bad file leaves the old policy. Not
                // awaited here, so a slow check never holds up a SIGTERM.
                tokio::spawn(relay.reload());
            }
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tracing::info!("stopping: intake closed, recording the calls in flight");
    relay.shutdown().await.map_err(|e| usage(&e))?;
    Ok(Outcome::Ok)
}
