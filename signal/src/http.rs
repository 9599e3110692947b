//! The HTTP in front of the WebSocket: one port answers `/healthz`, `/metrics` and the web
//! client's files, and upgrades everything else. The request head is read here; an upgrade is handed to
//! tungstenite with the bytes already read put back in front of the stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::metrics::Metrics;
use crate::web::{self, Asset};

/// The largest request head accepted.
const MAX_HEAD: usize = 8 * 1024;

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// A WebSocket upgrade, to be handed to tungstenite.
    Upgrade,
    Health,
    Metrics,
    /// A file of the web client, and the request's `Host`.
    Web(&'static Asset, Option<String>),
    /// Anything else: answered with this status and sentence.
    Other(u16, &'static str),
}

/// Reads the request head (without consuming the body or anything after it) and sorts it.
pub async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<(Route, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                let upgrade = req.headers.iter().any(|h| {
                    h.name.eq_ignore_ascii_case("upgrade") && h.value.eq_ignore_ascii_case(b"websocket")
                });
                let path = req.path.map(|p| p.split_once('?').map_or(p, |(path, _)| path));
                let request = match (req.method, path, upgrade) {
                    (_, _, true) => Route::Upgrade,
                    (Some("GET"), Some("/healthz"), false) => Route::Health,
                    (Some("GET"), Some("/metrics"), false) => Route::Metrics,
                    (Some("GET"), Some(path), false) if web::asset(path).is_some() => {
                        let host = req
                            .headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case("host"))
                            .and_then(|h| std::str::from_utf8(h.value).ok())
                            .map(str::to_owned);
                        Route::Web(web::asset(path).expect("checked above"), host)
                    }
                    _ => Route::Other(
                        404,
                        "peertalk-signal serves WebSocket at /, the web client at GET /, and GET /healthz and /metrics\n",
                    ),
                };
                return Ok((request, buf));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => return Ok((Route::Other(431, "request head too large\n"), buf)),
            Err(_) => return Ok((Route::Other(400, "not an HTTP request\n"), buf)),
        }
    }
}

/// Answers an endpoint request: `/healthz`, `/metrics`, or an error.
pub async fn answer<S: AsyncWrite + Unpin>(stream: &mut S, route: Route, metrics: &Metrics) {
    match route {
        // Degraded is still 200: the relay serves, and a balancer that took every relay
        // out when Redis went away would end the service instead of narrowing it.
        Route::Health => respond(stream, 200, "text/plain; charset=utf-8", metrics.health()).await,
        Route::Web(asset, host) => {
            respond_with(stream, 200, asset.content_type, &web::headers(host.as_deref()), asset.body).await;
        }
        Route::Metrics => {
            let body = metrics.render();
            respond(stream, 200, "application/openmetrics-text; version=1.0.0; charset=utf-8", &body).await;
        }
        Route::Other(status, body) => {
            metrics.rejected("bad-request");
            respond(stream, status, "text/plain; charset=utf-8", body).await;
        }
        Route::Upgrade => {
            metrics.rejected("bad-request");
            respond(
                stream,
                400,
                "text/plain; charset=utf-8",
                "this address serves only /healthz and /metrics\n",
            )
            .await;
        }
    }
}

/// Writes a small plain response and closes the connection.
pub async fn respond<S: AsyncWrite + Unpin>(stream: &mut S, status: u16, content_type: &str, body: &str) {
    respond_with(stream, status, content_type, "", body).await;
}

/// [`respond`], with more header lines (each ending in CRLF).
async fn respond_with<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    content_type: &str,
    headers: &str,
    body: &str,
) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n{headers}connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// How much is read from the socket at once when the reader asks for less. tungstenite
/// asks for at most its read buffer, kept small because every idle connection holds one;
/// with one `recv` per two or three frames, system calls were most of the relay's work.
const READ_AHEAD: usize = 16 * 1024;

/// A stream that first yields bytes already read from it (the request head), then reads
/// ahead in large chunks into a buffer that exists only while data is flowing: it is given
/// back whenever the socket has nothing more, so idle connections do not pay for it.
pub struct Rewind<S> {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    inner: S,
}

impl<S> Rewind<S> {
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        Self { end: prefix.len(), buf: prefix, start: 0, inner }
    }

    /// Hands over what is buffered, as much as fits.
    fn drain_into(&mut self, out: &mut ReadBuf<'_>) {
        let n = (self.end - self.start).min(out.remaining());
        out.put_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.start < this.end {
            this.drain_into(out);
            return Poll::Ready(Ok(()));
        }
        if out.remaining() >= READ_AHEAD {
            return Pin::new(&mut this.inner).poll_read(cx, out);
        }
        if this.buf.len() < READ_AHEAD {
            this.buf = vec![0; READ_AHEAD];
        }
        let mut ahead = ReadBuf::new(&mut this.buf);
        match Pin::new(&mut this.inner).poll_read(cx, &mut ahead) {
            Poll::Ready(Ok(())) => {
                (this.start, this.end) = (0, ahead.filled().len());
                this.drain_into(out);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                this.buf = Vec::new();
                (this.start, this.end) = (0, 0);
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sort(head: &str) -> Route {
        let mut stream = head.as_bytes();
        read_request(&mut stream).await.expect("reads").0
    }

    #[tokio::test]
    async fn requests_are_sorted_by_path_and_upgrade() {
        assert_eq!(sort("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await, Route::Health);
        assert_eq!(sort("GET /metrics HTTP/1.1\r\n\r\n").await, Route::Metrics);
        assert_eq!(
            sort("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n").await,
            Route::Upgrade
        );
        assert!(matches!(sort("GET /other HTTP/1.1\r\n\r\n").await, Route::Other(404, _)));
        assert!(matches!(sort("GET /?room=a&name=b HTTP/1.1\r\nHost: h:1\r\n\r\n").await,
            Route::Web(asset, Some(host)) if asset.content_type.starts_with("text/html") && host == "h:1"));
        assert!(matches!(sort("GET /app.js HTTP/1.1\r\n\r\n").await, Route::Web(..)));
        assert!(matches!(sort("\u{0}\u{1}garbage\r\n\r\n").await, Route::Other(400, _)));
    }

    #[tokio::test]
    async fn rewind_replays_what_was_read_first() {
        let mut stream = Rewind::new(b"abc".to_vec(), &b"def"[..]);
        let mut all = String::new();
        stream.read_to_string(&mut all).await.expect("reads");
        assert_eq!(all, "abcdef");
    }

    #[tokio::test]
    async fn small_reads_are_served_from_one_large_read_in_order() {
        let data: Vec<u8> = (0..3 * READ_AHEAD).map(|i| (i % 251) as u8).collect();
        let mut stream = Rewind::new(b"head".to_vec(), &data[..]);
        let mut got = Vec::new();
        let mut chunk = [0u8; 1000];
        loop {
            let n = stream.read(&mut chunk).await.expect("reads");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(&got[..4], b"head");
        assert_eq!(&got[4..], &data[..]);
    }
}
