//! `publish-guard audit`: verify a log's chain and checkpoints, show it readably, export the
//! log relay replicas keep in PostgreSQL to the JSON Lines file, or make a checkpoint signing
//! key pair. `verify` and `show` read the database with `--db-env` (via an export to a temp
//! file, which they then read as they read any log).

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
        #[arg(required_unless_present = "db_env", conflicts_with = "db_env")]
        file: Option<PathBuf>,
        /// Read the log from the PostgreSQL database whose connection string is in this
        /// environment variable.
        #[arg(long)]
        db_env: Option<String>,
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
        #[arg(required_unless_present = "db_env", conflicts_with = "db_env")]
        file: Option<PathBuf>,
        /// Read the log from the PostgreSQL database whose connection string is in this
        /// environment variable.
        #[arg(long)]
        db_env: Option<String>,
        /// Only entries about this schedule id.
        #[arg(long)]
        schedule: Option<String>,
        /// Only entries at or after this instant: RFC 3339 (2026-03-29T01:00:00Z) or a plain
        /// date (2026-03-29), read as midnight UTC.
        #[arg(long)]
        since: Option<String>,
    },
    /// Write the log kept in PostgreSQL to a JSON Lines file, which verifies offline as a
    /// file log does.
    Export {
        /// The environment variable holding the database's connection string.
        #[arg(long)]
        db_env: String,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
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
            db_env,
            key,
            checkpoints,
        } => {
            let log = LogFile::of(file.as_deref(), db_env.as_deref())?;
            run_verify(log.path(), key.as_deref(), checkpoints.as_deref(), out)
        }
        AuditCommand::Show {
            file,
            db_env,
            schedule,
            since,
        } => {
            let log = LogFile::of(file.as_deref(), db_env.as_deref())?;
            let file = log.path();
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
        AuditCommand::Export { db_env, out: path } => {
            let entries = export_to(db_env, path)?;
            writeln!(out, "wrote {entries} entries to {}", path.display())
                .map_err(|e| io_error(Path::new("<stdout>"), e))?;
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

/// The log file a command reads: the one named, or an export of the database's, removed
/// when dropped.
enum LogFile {
    Named(PathBuf),
    Exported(PathBuf),
}

impl LogFile {
    fn of(file: Option<&Path>, db_env: Option<&str>) -> Result<Self, CliError> {
        match (file, db_env) {
            (Some(file), _) => Ok(Self::Named(file.to_owned())),
            (None, Some(var)) => {
                let name = format!("publish-guard-audit-{:016x}.jsonl", rand::random::<u64>());
                let path = std::env::temp_dir().join(name);
                let exported = Self::Exported(path.clone());
                export_to(var, &path)?;
                Ok(exported)
            }
            (None, None) => Err(CliError::Usage("give a log file or --db-env".into())),
        }
    }

    fn path(&self) -> &Path {
        match self {
            Self::Named(path) | Self::Exported(path) => path,
        }
    }
}

impl Drop for LogFile {
    fn drop(&mut self) {
        if let Self::Exported(path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Export the database's log (its connection string in `var`) to `path`; how many entries.
#[cfg(feature = "postgres")]
fn export_to(var: &str, path: &Path) -> Result<u64, CliError> {
    let url =
        crate::config::env_value("--db-env", var).map_err(|e| CliError::Usage(e.to_string()))?;
    let database = |e: &dyn std::fmt::Display| CliError::Usage(format!("{var}: {e}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| io_error(path, e))?;
    runtime.block_on(async {
        let client = crate::pg::connect(&url).await.map_err(|e| database(&e))?;
        let file = std::fs::File::create(path).map_err(|e| io_error(path, e))?;
        let mut out = std::io::BufWriter::new(file);
        crate::audit::pg_log::export(&client, &mut out)
            .await
            .map_err(|e| database(&e))
    })
}

#[cfg(not(feature = "postgres"))]
fn export_to(_var: &str, _path: &Path) -> Result<u64, CliError> {
    Err(CliError::Usage(
        "this build has no PostgreSQL support (feature `postgres`)".into(),
    ))
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
