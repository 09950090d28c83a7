//! A group-commit worker: one thread takes whatever has queued up (up to a batch) and
//! handles it at once, so one expensive sync serves every caller that arrived meanwhile.
//! The store and the audit log both write this way.

use std::thread::JoinHandle;
use tokio::sync::mpsc;

/// The worker has stopped, so nothing more can be submitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the writer has stopped")]
pub struct Stopped;

/// A queue in front of one thread that handles items in batches. Dropping it lets the
/// thread handle what is already queued, then waits for it to stop.
pub struct GroupCommit<T> {
    queue: Option<mpsc::Sender<T>>,
    thread: Option<JoinHandle<()>>,
}

impl<T> std::fmt::Debug for GroupCommit<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("running", &self.queue.is_some())
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> GroupCommit<T> {
    /// Start a thread named `name` that calls `handle` with each batch of at most
    /// `max_batch` items; at most `capacity` items wait before submitters wait too.
    pub fn start(
        name: &str,
        capacity: usize,
        max_batch: usize,
        mut handle: impl FnMut(Vec<T>) + Send + 'static,
    ) -> std::io::Result<Self> {
        let (queue, mut receiver) = mpsc::channel::<T>(capacity.max(1));
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                while let Some(first) = receiver.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < max_batch {
                        match receiver.try_recv() {
                            Ok(item) => batch.push(item),
                            Err(_) => break,
                        }
                    }
                    handle(batch);
                }
            })?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Queue an item for the next batch.
    pub async fn submit(&self, item: T) -> Result<(), Stopped> {
        let queue = self.queue.as_ref().ok_or(Stopped)?;
        queue.send(item).await.map_err(|_| Stopped)
    }
}

impl<T> Drop for GroupCommit<T> {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has handled what is already queued.
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
