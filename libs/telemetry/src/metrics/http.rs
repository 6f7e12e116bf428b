//! [`serve_metrics`]: the `/metrics` endpoint as a minimal HTTP/1.1 server over a tokio
//! listener, instead of the exporter's hyper server (which would add a second HTTP stack
//! to the build).
//!
//! One request per connection, answered with `Connection: close`: Prometheus scrapes open a
//! new connection at every interval anyway. Each connection gets a deadline for the whole
//! exchange and a cap on the request head, so a slow or malformed client costs one task for
//! a few seconds and never blocks the accept loop; at most [`MAX_CONNECTIONS`] are served
//! at once. Request bodies are never read (a scrape has none).

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Deadline for reading the request and writing the answer.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a closing connection waits for the client's leftover input or its last read.
const LINGER: Duration = Duration::from_secs(1);
/// Largest request head accepted; a scrape's is a few hundred bytes.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Connections served concurrently; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 32;
/// How often histogram samples are folded in between scrapes, bounding their memory.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Serves `handle`'s rendering at `GET /metrics` on `listener` until `shutdown` completes.
/// Other paths answer 404, other methods 405, malformed requests 400, oversized ones 431,
/// slow ones 408.
/// Returns an error only if accepting fails for a reason other than a per-connection one.
pub async fn serve_metrics(
    listener: TcpListener,
    handle: PrometheusHandle,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut upkeep = tokio::time::interval(UPKEEP_INTERVAL);
    upkeep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            permit = slots.clone().acquire_owned() => {
                permit.expect("the semaphore is never closed")
            }
        };
        let accepted = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = upkeep.tick() => {
                handle.run_upkeep();
                continue;
            }
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let handle = handle.clone();
                tokio::spawn(async move {
                    if let Err(e) = answer(stream, &handle).await {
                        tracing::debug!(%peer, error = %e, "metrics request failed");
                    }
                    drop(permit);
                });
            }
            // Errors of one connection (reset before accept, ...) must not end the endpoint.
            Err(e) if is_transient(&e) => {
                tracing::debug!(error = %e, "metrics accept failed");
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "metrics accept failed; retrying shortly");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// What the request head asked for, or why it cannot be answered.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Metrics { head_only: bool },
    NotFound,
    BadMethod,
    Malformed,
}

/// Parses the request line of `head` (everything up to the blank line).
fn parse(head: &[u8]) -> Request {
    let Ok(head) = std::str::from_utf8(head) else {
        return Request::Malformed;
    };
    let line = head.split("\r\n").next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Request::Malformed;
    };
    if !(version == "HTTP/1.1" || version == "HTTP/1.0") || !target.starts_with('/') {
        return Request::Malformed;
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        m if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => {
            return Request::BadMethod;
        }
        _ => return Request::Malformed,
    };
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    if path == "/metrics" {
        Request::Metrics { head_only }
    } else {
        Request::NotFound
    }
}

/// How a request head ended.
enum Head {
    Complete(Vec<u8>),
    TooLarge,
    /// The client closed its side before finishing the head.
    Closed,
}

/// Reads until the end of the request head (the blank line), at most [`MAX_HEAD_BYTES`].
async fn read_head(stream: &mut TcpStream) -> io::Result<Head> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Head::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end);
            return Ok(Head::Complete(buf));
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Ok(Head::TooLarge);
        }
    }
}

/// The status line and body for `request`.
fn respond(request: Request, handle: &PrometheusHandle) -> (&'static str, String) {
    match request {
        Request::Metrics { .. } => ("200 OK", handle.render()),
        Request::NotFound => ("404 Not Found", "not found; try /metrics\n".into()),
        Request::BadMethod => ("405 Method Not Allowed", "only GET and HEAD\n".into()),
        Request::Malformed => ("400 Bad Request", "bad request\n".into()),
    }
}

async fn answer(mut stream: TcpStream, handle: &PrometheusHandle) -> io::Result<()> {
    let exchange = async {
        let (status, body, head_only) = match read_head(&mut stream).await? {
            Head::Complete(head) => {
                let request = parse(&head);
                let head_only = request == Request::Metrics { head_only: true };
                let (status, body) = respond(request, handle);
                (status, body, head_only)
            }
            Head::TooLarge => (
                "431 Request Header Fields Too Large",
                "request head too large\n".into(),
                false,
            ),
            Head::Closed => return Ok(()),
        };
        let content_type = if status.starts_with("200") {
            "text/plain; version=0.0.4; charset=utf-8"
        } else {
            "text/plain; charset=utf-8"
        };
        let allow = if status.starts_with("405") {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             {allow}Connection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        if !head_only {
            stream.write_all(body.as_bytes()).await?;
        }
        stream.shutdown().await
    };
    match tokio::time::timeout(EXCHANGE_TIMEOUT, exchange).await {
        Ok(Ok(())) => {
            // Closing with unread input (a body, the rest of an oversized head) makes the
            // kernel send a reset, which can destroy the answer before the client reads
            // it: drain what is left for a moment first.
            let mut sink = [0u8; 1024];
            let drain = async { while stream.read(&mut sink).await.is_ok_and(|n| n > 0) {} };
            let _ = tokio::time::timeout(LINGER, drain).await;
            Ok(())
        }
        Ok(Err(e)) => Err(e),
        Err(_) => {
            // Best effort: the client may not be reading either.
            let answer = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\
                           Connection: close\r\n\r\n";
            let _ = tokio::time::timeout(LINGER, stream.write_all(answer)).await;
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request not completed in time",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_parse() {
        assert_eq!(
            parse(b"GET /metrics HTTP/1.1\r\nHost: x"),
            Request::Metrics { head_only: false }
        );
        assert_eq!(
            parse(b"HEAD /metrics?x=1 HTTP/1.0"),
            Request::Metrics { head_only: true }
        );
        assert_eq!(parse(b"GET / HTTP/1.1"), Request::NotFound);
        assert_eq!(parse(b"GET /metricsx HTTP/1.1"), Request::NotFound);
        assert_eq!(parse(b"POST /metrics HTTP/1.1"), Request::BadMethod);
        assert_eq!(parse(b"GET /metrics"), Request::Malformed);
        assert_eq!(parse(b"GET /metrics HTTP/2"), Request::Malformed);
        assert_eq!(parse(b"GET metrics HTTP/1.1"), Request::Malformed);
        assert_eq!(parse(b"get /metrics HTTP/1.1"), Request::Malformed);
        assert_eq!(parse(b"\xff\xfe"), Request::Malformed);
        assert_eq!(parse(b"GET  /metrics HTTP/1.1"), Request::Malformed);
    }
}
