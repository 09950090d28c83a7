//! A store that lost its history: the audit log recorded the arrival of a trigger the store
//! does not hold, so the store was deleted, emptied or replaced since. Starting on it would
//! drop its pending triggers without a word and take repeats of old deliveries for new ones,
//! so the relay refuses to start (and says how to go on).

use super::store::{StoreError, TriggerStore};
use super::worker::arrival_receipt;
use crate::audit::log::AuditLog;
use std::path::PathBuf;

/// The store does not go with the audit log.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The newest trigger the audit log saw arrive is not in the store.
    #[error(
        "the store {} does not hold trigger {receipt}, whose arrival {} recorded: the store \
         was deleted, emptied or replaced, and starting on it would drop its pending triggers \
         and delivery ids without a word. Restore the store from a backup; or, to start \
         afresh on purpose, move the audit log aside as well (keep it: it is the record of \
         what was done), and a new chain begins with the new store",
        store.display(),
        audit.display()
    )]
    Lost {
        /// The store's file.
        store: PathBuf,
        /// The audit log's file.
        audit: PathBuf,
        /// The receipt the audit log names.
        receipt: String,
    },
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Check that `store` holds the newest trigger whose arrival `log` remembers (a log with no
/// arrival among its recent steps has nothing to check).
pub async fn check_history(
    store: &dyn TriggerStore,
    store_path: PathBuf,
    log: &AuditLog,
    log_path: PathBuf,
) -> Result<(), HistoryError> {
    let Some(receipt) = log.recent_steps().find_map(arrival_receipt) else {
        return Ok(());
    };
    match store.get(receipt).await? {
        Some(_) => Ok(()),
        None => Err(HistoryError::Lost {
            store: store_path,
            audit: log_path,
            receipt: receipt.to_owned(),
        }),
    }
}
