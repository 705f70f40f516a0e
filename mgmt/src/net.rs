//! Unix-socket transport: each message is a `u32` big-endian length followed
//! by that many bytes. A frame announced larger than [`MAX_MESSAGE`] is refused
//! from its header alone: the host answers with a signed `oversized`
//! rejection and closes the connection without reading the body.

use crate::backend::PrivilegedBackend;
use crate::client::{open_response, prepare, PreparedRequest, RequestOptions};
use crate::host::Host;
use crate::keys::Identity;
use crate::protocol::{Op, OpOutput, Params};
use anyhow::{bail, Context, Result};
use ed25519_dalek::VerifyingKey;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// Largest frame either side reads.
pub use crate::protocol::MAX_MESSAGE;
/// Most concurrent connections the server serves.
pub const MAX_CONNECTIONS: usize = 64;
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Result of reading one frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Data(Vec<u8>),
    /// The header announced this many bytes, more than allowed; body not read.
    TooLarge(usize),
}

/// Reads one frame; `Ok(None)` on a clean end of stream before a header.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> std::io::Result<Option<Frame>> {
    let mut hdr = [0u8; 4];
    match r.read_exact(&mut hdr).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(hdr) as usize;
    if len > max {
        return Ok(Some(Frame::TooLarge(len)));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    Ok(Some(Frame::Data(buf)))
}

pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, data: &[u8]) -> std::io::Result<()> {
    if data.len() > MAX_MESSAGE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "frame too large",
        ));
    }
    let mut msg = Vec::with_capacity(4 + data.len());
    msg.extend_from_slice(&(data.len() as u32).to_be_bytes());
    msg.extend_from_slice(data);
    w.write_all(&msg).await?;
    w.flush().await
}

/// Binds the socket at `path` (removing a stale socket file left by a dead
/// server, never a regular file) with mode 0660.
pub fn bind(path: &Path) -> Result<UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            bail!("{} exists and is not a socket", path.display());
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!("a server is already listening on {}", path.display());
        }
        std::fs::remove_file(path)?;
    }
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    let l = UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(l)
}

/// Reads one frame: waits up to `idle` for the header, then up to
/// `BODY_TIMEOUT` for the body. `Ok(None)` on end of stream or idle timeout.
async fn read_frame_timed(s: &mut UnixStream, idle: Duration) -> std::io::Result<Option<Frame>> {
    let mut hdr = [0u8; 4];
    match tokio::time::timeout(idle, s.read_exact(&mut hdr)).await {
        Err(_) => return Ok(None),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(_)) => {}
    }
    let len = u32::from_be_bytes(hdr) as usize;
    if len > MAX_MESSAGE {
        return Ok(Some(Frame::TooLarge(len)));
    }
    let mut buf = vec![0u8; len];
    tokio::time::timeout(BODY_TIMEOUT, s.read_exact(&mut buf))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "frame body timeout"))??;
    Ok(Some(Frame::Data(buf)))
}

async fn serve_conn(mut s: UnixStream, host: Arc<Host>) -> std::io::Result<()> {
    loop {
        match read_frame_timed(&mut s, IDLE_TIMEOUT).await? {
            None => return Ok(()),
            Some(Frame::TooLarge(len)) => {
                let resp = host.reject_unread(len, MAX_MESSAGE);
                write_frame(&mut s, &resp).await?;
                let _ = s.shutdown().await;
                return Ok(());
            }
            Some(Frame::Data(req)) => {
                // Checks and the backend call may block (a simulated card can be slow):
                // run them on the blocking pool so other connections keep being served.
                let h = host.clone();
                let resp = tokio::task::spawn_blocking(move || h.handle(&req))
                    .await
                    .map_err(|e| std::io::Error::other(format!("request task failed: {e}")))?;
                write_frame(&mut s, &resp).await?;
            }
        }
    }
}

/// Serves `host` on `listener` until `shutdown` resolves.
pub async fn serve_until<F: std::future::Future<Output = ()>>(
    listener: UnixListener,
    host: Arc<Host>,
    shutdown: F,
) -> Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            acc = listener.accept() => {
                let (s, _) = acc?;
                let Ok(permit) = slots.clone().try_acquire_owned() else { continue };
                let h = host.clone();
                tokio::spawn(async move {
                    let _ = serve_conn(s, h).await;
                    drop(permit);
                });
            }
        }
    }
}

/// Serves `host` on `listener` forever.
pub async fn serve(listener: UnixListener, host: Arc<Host>) -> Result<()> {
    serve_until(listener, host, std::future::pending()).await
}

/// A client connection; several requests may be sent on one connection.
pub struct Connection {
    stream: UnixStream,
}

impl Connection {
    pub async fn connect(path: &Path) -> Result<Connection> {
        let stream = UnixStream::connect(path)
            .await
            .with_context(|| format!("connecting to {}", path.display()))?;
        Ok(Connection { stream })
    }

    /// Sends raw bytes as one frame and returns the raw response frame.
    pub async fn roundtrip(&mut self, bytes: &[u8]) -> Result<Vec<u8>> {
        write_frame(&mut self.stream, bytes).await?;
        self.read_response().await
    }

    /// Sends a header announcing `len` bytes but no body (tests the size limit).
    pub async fn send_header_only(&mut self, len: u32) -> Result<Vec<u8>> {
        self.stream.write_all(&len.to_be_bytes()).await?;
        self.read_response().await
    }

    async fn read_response(&mut self) -> Result<Vec<u8>> {
        match read_frame(&mut self.stream, MAX_MESSAGE).await? {
            Some(Frame::Data(d)) => Ok(d),
            Some(Frame::TooLarge(n)) => bail!("response frame of {n} bytes exceeds {MAX_MESSAGE}"),
            None => bail!("server closed the connection"),
        }
    }

    /// Sends a prepared request and verifies/opens the answer.
    pub async fn call_prepared(
        &mut self,
        caller: &Identity,
        host: &VerifyingKey,
        req: &PreparedRequest,
    ) -> Result<OpOutput> {
        let resp = self.roundtrip(&req.bytes).await?;
        Ok(open_response(caller, host, req, &resp)?)
    }

    /// Builds, signs, sends; verifies and opens the result.
    pub async fn call(
        &mut self,
        caller: &Identity,
        host: &VerifyingKey,
        params: &Params,
        opts: &RequestOptions,
    ) -> Result<OpOutput> {
        let req = prepare(caller, params, opts)?;
        self.call_prepared(caller, host, &req).await
    }
}

/// One-shot client call: connect, send the signed request, verify and open the result.
pub async fn call(
    socket: &Path,
    caller: &Identity,
    host: &VerifyingKey,
    params: &Params,
    opts: &RequestOptions,
) -> Result<OpOutput> {
    Connection::connect(socket)
        .await?
        .call(caller, host, params, opts)
        .await
}

/// Benchmark baseline only: the same framing and backend, with no signature,
/// no checks and no sealing. Frame = op code byte + plain params; answer =
/// plain [`OpOutput`] encoding. Never use this outside `bench-mgmt`.
pub async fn serve_plain_until<F: std::future::Future<Output = ()>>(
    listener: UnixListener,
    backend: Arc<dyn PrivilegedBackend>,
    shutdown: F,
) -> Result<()> {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            acc = listener.accept() => {
                let (mut s, _) = acc?;
                let b = backend.clone();
                tokio::spawn(async move {
                    while let Ok(Some(Frame::Data(f))) = read_frame(&mut s, MAX_MESSAGE).await {
                        let out = match f.split_first().and_then(|(c, p)| Some((Op::from_code(*c)?, p))) {
                            Some((Op::ReadCounters, _)) => b.read_counters().map(OpOutput::Counters)
                                .unwrap_or_else(|e| OpOutput::Failed(e.to_string())),
                            _ => OpOutput::Failed("plain path serves read-counters only".into()),
                        };
                        if write_frame(&mut s, &out.encode()).await.is_err() { break; }
                    }
                });
            }
        }
    }
}
