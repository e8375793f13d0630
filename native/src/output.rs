//! A guest's stdout or stderr, captured in memory and drained by Python after each
//! call (it logs the lines): no thread hop per write, no files.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Past this many undrained bytes a stream drops what the guest writes (a guest that
/// prints in an endless loop must not eat the node's memory); `dropped` counts them.
const CAPACITY: usize = 16 << 20;

#[derive(Clone, Default)]
pub struct Capture {
    inner: Arc<Mutex<Buffer>>,
}

#[derive(Default)]
struct Buffer {
    data: Vec<u8>,
    dropped: u64,
}

impl Capture {
    /// What the guest wrote since the last drain, and how many bytes were dropped.
    pub fn drain(&self) -> (Vec<u8>, u64) {
        let mut b = self.inner.lock().unwrap();
        (std::mem::take(&mut b.data), std::mem::take(&mut b.dropped))
    }

    pub fn is_empty(&self) -> bool {
        let b = self.inner.lock().unwrap();
        b.data.is_empty() && b.dropped == 0
    }

    fn push(&self, bytes: &[u8]) {
        let mut b = self.inner.lock().unwrap();
        let room = CAPACITY.saturating_sub(b.data.len());
        let take = room.min(bytes.len());
        b.data.extend_from_slice(&bytes[..take]);
        b.dropped += (bytes.len() - take) as u64;
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl OutputStream for Capture {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

impl AsyncWrite for Capture {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
