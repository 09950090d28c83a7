//! `publish-guard audit`: verify a log's chain and checkpoints, show it readably, or make a
//! checkpoint signing key pair.

use super::{CliError, Outcome};
use crate::audit::checkpoint::{checkpoints_path, key_files_text, load_verifying_key};
use crate::audit::show::{ShowFilter, show};
use crate::audit::verify::verify;
use clap::{Args, Subcommand};
use ed25519_dalek::SigningKey;
use jiff::Timestamp;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `audit` and its subcommands.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// What to do with the log.
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// The `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Prove the chain unbroken (exit 1 naming the first bad line).
    Verify {
        /// The audit log (JSON Lines).
        file: PathBuf,
        /// Public key file (base64) to check the signed checkpoints with.
        #[arg(long)]
        key: Option<PathBuf>,
        /// The checkpoint file [default: FILE.checkpoints].
        #[arg(long)]
        checkpoints: Option<PathBuf>,
    },
    /// Print the log readably.
    Show {
        /// The audit log (JSON Lines).
        file: PathBuf,
        /// Only entries about this schedule id.
        #[arg(long)]
        schedule: Option<String>,
        /// Only entries at or after this instant: RFC 3339 (2026-03-29T01:00:00Z) or a plain
        /// date (2026-03-29), read as midnight UTC.
        #[arg(long)]
        since: Option<String>,
    },
    /// Make a checkpoint signing key pair: PREFIX.key (secret) and PREFIX.pub (public).
    Keygen {
        /// Path prefix of the two files.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Run an `audit` subcommand, writing its report to `out`.
pub fn run(args: &AuditArgs, out: &mut impl Write) -> Result<Outcome, CliError> {
    match &args.command {
        AuditCommand::Verify {
            file,
            key,
            checkpoints,
        } => run_verify(file, key.as_deref(), checkpoints.as_deref(), out),
        AuditCommand::Show {
            file,
            schedule,
            since,
        } => {
            let since = since.as_deref().map(parse_since).transpose()?;
            let filter = ShowFilter {
                schedule: schedule.clone(),
                since,
            };
            let log = std::fs::File::open(file).map_err(|source| io_error(file, source))?;
            show(std::io::BufReader::new(log), &filter, out)
                .map_err(|source| io_error(file, source))?;
            Ok(Outcome::Ok)
        }
        AuditCommand::Keygen { out: prefix } => run_keygen(prefix, out),
    }
}

/// `--since`: an RFC 3339 instant, or a date meaning its midnight UTC.
fn parse_since(text: &str) -> Result<Timestamp, CliError> {
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(at);
    }
    let midnight = text
        .parse::<jiff::civil::Date>()
        .and_then(|date| date.to_zoned_datetime(jiff::tz::TimeZone::UTC));
    midnight.map(|z| z.timestamp()).map_err(|_| {
        CliError::Usage(format!(
            "--since {text:?}: not an instant like 2026-03-29T01:00:00Z or a date like 2026-03-29"
        ))
    })
}

fn io_error(path: &Path, source: std::io::Error) -> CliError {
    CliError::Io {
        path: path.to_owned(),
        source,
    }
}

fn run_verify(
    file: &Path,
    key: Option<&Path>,
    checkpoints: Option<&Path>,
    out: &mut impl Write,
) -> Result<Outcome, CliError> {
    let key = key
        .map(load_verifying_key)
        .transpose()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let sidecar = checkpoints.map_or_else(|| checkpoints_path(file), Path::to_owned);
    let verdict = verify(file, &sidecar, key.as_ref()).map_err(|source| io_error(file, source))?;
    let stdout = |e| io_error(Path::new("<stdout>"), e);
    match verdict {
        Ok(verified) => {
            let checkpoints = match (verified.checkpoints, verified.signed) {
                (0, _) => "no checkpoints".to_owned(),
                (n, true) => format!("{n} checkpoint(s) match, signatures verified"),
                (n, false) => format!("{n} checkpoint(s) match, signatures not checked (no --key)"),
            };
            writeln!(
                out,
                "{}: ok: {} entries, chain intact, head {}; {checkpoints}",
                file.display(),
                verified.entries,
                verified.head
            )
            .map_err(stdout)?;
            Ok(Outcome::Ok)
        }
        Err(broken) => {
            writeln!(out, "{broken}").map_err(stdout)?;
            Ok(Outcome::Failed)
        }
    }
}

fn run_keygen(prefix: &Path, out: &mut impl Write) -> Result<Outcome, CliError> {
    let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let (secret, public) = key_files_text(&key);
    let secret_path = with_suffix(prefix, ".key");
    let public_path = with_suffix(prefix, ".pub");
    write_secret(&secret_path, &secret).map_err(|e| io_error(&secret_path, e))?;
    std::fs::write(&public_path, public).map_err(|e| io_error(&public_path, e))?;
    writeln!(
        out,
        "wrote {} (keep it secret) and {}",
        secret_path.display(),
        public_path.display()
    )
    .map_err(|e| io_error(Path::new("<stdout>"), e))?;
    Ok(Outcome::Ok)
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut path = prefix.as_os_str().to_owned();
    path.push(suffix);
    PathBuf::from(path)
}

/// Create a file readable by its owner only, refusing to overwrite an existing key.
fn write_secret(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_an_instant_or_a_date_at_midnight_utc() {
        let midnight: Timestamp = "2026-03-29T00:00:00Z".parse().unwrap_or_default();
        assert_eq!(parse_since("2026-03-29").ok(), Some(midnight));
        let instant = "2026-03-29T01:00:00+01:00";
        assert_eq!(parse_since(instant).ok(), Some(midnight));
        assert!(parse_since("29/03/2026").is_err());
    }
}
