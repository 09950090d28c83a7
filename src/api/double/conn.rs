//! Connections the double can cut: a fault drops the connection without answering.

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener whose connections can be cut from inside a handler.
#[derive(Debug)]
pub(super) struct CuttableListener(pub(super) TcpListener);

/// The handle a handler uses to cut the connection it is answering on.
#[derive(Clone, Debug)]
pub(super) struct Cutter(Arc<AtomicBool>);

impl Cutter {
    /// From now on the connection fails every read and write, so hyper closes it and the
    /// answer being prepared is never sent.
    pub(super) fn cut(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A TCP stream that fails once its [`Cutter`] is used.
#[derive(Debug)]
pub(super) struct CuttableStream {
    inner: TcpStream,
    cut: Arc<AtomicBool>,
}

impl CuttableStream {
    fn check(&self) -> io::Result<()> {
        if self.cut.load(Ordering::SeqCst) {
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "cut by a fault",
            ))
        } else {
            Ok(())
        }
    }
}

impl Listener for CuttableListener {
    type Io = CuttableStream;
    type Addr = (SocketAddr, Cutter);

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, remote) = Listener::accept(&mut self.0).await;
        let cut = Arc::new(AtomicBool::new(false));
        let stream = CuttableStream {
            inner: io,
            cut: Arc::clone(&cut),
        };
        (stream, (remote, Cutter(cut)))
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        let local = self.0.local_addr()?;
        Ok((local, Cutter(Arc::new(AtomicBool::new(false)))))
    }
}

impl Connected<IncomingStream<'_, CuttableListener>> for Cutter {
    fn connect_info(stream: IncomingStream<'_, CuttableListener>) -> Self {
        stream.remote_addr().1.clone()
    }
}

impl AsyncRead for CuttableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CuttableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
