//! The tamper-evident audit log: append-only JSON Lines, one entry per recorded step, each
//! carrying a gap-free sequence number, the hash of the previous entry and its own hash, all
//! SHA-256 over RFC 8785 canonical JSON so anyone can recompute them; optionally ed25519-signed
//! checkpoints over the chain head so that cutting off the tail is detectable too. Relay
//! replicas keep the same entries in PostgreSQL (`pg_log`), exported to the same file.

pub mod canonical;
pub mod checkpoint;
pub mod entry;
pub mod log;
#[cfg(feature = "postgres")]
pub mod pg_log;
pub mod show;
pub(crate) mod tail;
pub mod verify;
pub mod writer;
