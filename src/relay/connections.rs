//! The relay's HTTP/1.1 connections: at most a cap of them open (more wait in the listen
//! backlog, which costs the relay no file descriptor, until one closes), each given a time
//! limit for its request headers and closed when nothing moves on it for a while, so slow or
//! idle clients cannot hold the relay's file descriptors for long (and with them `/healthz`
//! and the webhooks). Stopping stops accepting, lets each connection finish the request it
//! is serving, and returns once all are closed.

use super::metrics::{CONNECTIONS_AT_CAP, Metrics};
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
/// How long to pause accepting after the system refused to give a connection (out of file
/// descriptors, say), rather than spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// Timeouts and the cap on open connections (`[serve]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a request's headers may take to arrive, counted from when the relay starts
    /// waiting for them: on a kept-alive connection, from the end of the previous answer.
    pub header_read_timeout: Duration,
    /// A connection on which nothing is read or written for this long is closed (a stalled
    /// body, a client that stopped reading).
    pub idle_timeout: Duration,
    /// The most connections open at once; more wait to be accepted until one closes.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 256,
        }
    }
}

/// Serve `app` on `listener` until `stop` turns true, then wait for the open connections.
pub async fn serve_connections(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut open = JoinSet::new();
    loop {
        let permit = match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                metrics.inc(CONNECTIONS_AT_CAP, &[]);
                tracing::debug!(max = limits.max_connections, "at the connection cap");
                tokio::select! {
                    permit = Arc::clone(&permits).acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
        };
        while open.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "a connection could not be accepted");
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        let connection = Connection {
            http: http.clone(),
            idle_timeout: limits.idle_timeout,
            stop: stop.clone(),
            _permit: permit,
        };
        open.spawn(connection.serve(stream, app.clone()));
    }
    drop(listener);
    while open.join_next().await.is_some() {}
    Ok(())
}

/// One accepted connection and what it holds.
struct Connection {
    http: http1::Builder,
    idle_timeout: Duration,
    stop: watch::Receiver<bool>,
    /// Its place under the cap, given back when it closes.
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    async fn serve(mut self, stream: TcpStream, app: Router) {
        let moved = Arc::new(LastMoved::new());
        let io = TokioIo::new(Watched {
            inner: stream,
            moved: Arc::clone(&moved),
        });
        let serving = self
            .http
            .serve_connection(io, TowerToHyperService::new(app));
        tokio::pin!(serving);
        let mut stopping = false;
        loop {
            let idle_at = moved.at() + self.idle_timeout;
            tokio::select! {
                served = serving.as_mut() => {
                    if let Err(e) = served {
                        tracing::debug!(error = %e, "connection ended");
                    }
                    return;
                }
                () = tokio::time::sleep_until(idle_at) => {
                    if moved.at() + self.idle_timeout <= Instant::now() {
                        tracing::debug!("idle connection closed");
                        return;
                    }
                }
                _ = self.stop.wait_for(|s| *s), if !stopping => {
                    stopping = true;
                    serving.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// When a connection last read or wrote a byte.
struct LastMoved {
    base: Instant,
    /// Nanoseconds after `base`.
    after: AtomicU64,
}

impl LastMoved {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            after: AtomicU64::new(0),
        }
    }

    fn at(&self) -> Instant {
        self.base + Duration::from_nanos(self.after.load(Ordering::Relaxed))
    }

    fn touch(&self) {
        let after = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.after.store(after, Ordering::Relaxed);
    }
}

/// A socket that notes each time bytes move on it.
struct Watched {
    inner: TcpStream,
    moved: Arc<LastMoved>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.moved.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.moved.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.moved.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
