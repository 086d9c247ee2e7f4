// SPDX-License-Identifier: MIT OR Apache-2.0
//! HTTP and TLS glue: rustls (TLS 1.3 and 1.2 only, the ring provider's suites: ECDHE with
//! AES-GCM or ChaCha20-Poly1305), HTTP/1.1 by hyper on a tokio runtime of its own. A client that
//! speaks plain HTTP to the HTTPS port gets a 400 in plain text and the connection closed,
//! unless the configuration says `insecure_http` (development only).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::{Api, Body, Reply, Req};

const MAX_BODY: usize = 64 * 1024;
const HANDSHAKE: Duration = Duration::from_secs(10);

type ResBody = BoxBody<Bytes, std::io::Error>;

/// The server's TLS configuration from PEM files.
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<rustls::ServerConfig> {
    let certs = rustls_pemfile::certs(
        &mut std::fs::read(cert)
            .with_context(|| format!("reading {}", cert.display()))?
            .as_slice(),
    )
    .collect::<Result<Vec<_>, _>>()
    .with_context(|| format!("certificates in {}", cert.display()))?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in {}", cert.display());
    let key = rustls_pemfile::private_key(
        &mut std::fs::read(key)
            .with_context(|| format!("reading {}", key.display()))?
            .as_slice(),
    )?
    .with_context(|| format!("no private key in {}", key.display()))?;
    // An explicit provider: Zenoh installs one process-wide, the API must not depend on it.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn into_response(reply: Reply) -> Response<ResBody> {
    let (content_type, body): (&str, ResBody) = match reply.body {
        Body::Json(v) => (
            "application/json",
            Full::new(Bytes::from(v.to_string()))
                .map_err(|never| match never {})
                .boxed(),
        ),
        Body::Raw(ct, bytes) => (ct, Full::new(bytes).map_err(|never| match never {}).boxed()),
        Body::Stream(ct, rx) => {
            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|chunk| (chunk.map(Frame::data), rx))
            });
            (ct, BodyExt::boxed(StreamBody::new(stream)))
        }
    };
    let mut builder = Response::builder()
        .status(reply.status)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .header("x-content-type-options", "nosniff")
        .header("strict-transport-security", "max-age=31536000")
        .header("content-security-policy", super::console::CSP)
        .header("x-frame-options", "DENY")
        .header("referrer-policy", "no-referrer");
    for (name, value) in reply.headers {
        builder = builder.header(name, value);
    }
    builder.body(body).unwrap_or_else(|_| {
        Response::new(
            Full::new(Bytes::from_static(b"{\"error\":\"internal\"}"))
                .map_err(|never| match never {})
                .boxed(),
        )
    })
}

fn header(headers: &hyper::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn handle(api: Arc<Api>, peer: SocketAddr, req: Request<Incoming>) -> Response<ResBody> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return into_response(Reply::error(
                413,
                format!("bodies are at most {MAX_BODY} bytes"),
            ));
        }
    };
    let query = parts
        .uri
        .query()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let req = Req {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query,
        body,
        peer: peer.ip(),
        authorization: header(&parts.headers, "authorization"),
        cookie: header(&parts.headers, "cookie"),
        csrf: header(&parts.headers, super::session::CSRF_HEADER),
        content_type: header(&parts.headers, "content-type"),
        fetch_site: header(&parts.headers, "sec-fetch-site"),
    };
    let reply = tokio::task::spawn_blocking(move || api.respond(&req))
        .await
        .unwrap_or_else(|_| Reply::error(500, "internal error (logged by the service)"));
    into_response(reply)
}

async fn serve_http<I>(api: Arc<Api>, peer: SocketAddr, io: I)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let api = api.clone();
        async move { Ok::<_, Infallible>(handle(api, peer, req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .serve_connection(TokioIo::new(io), service)
        .await;
}

fn plain_refusal() -> Vec<u8> {
    let body =
        r#"{"error":"bad_request","reason":"this port speaks HTTPS only: plain HTTP is refused"}"#;
    format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn connection(
    api: Arc<Api>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    mut stream: TcpStream,
    peer: SocketAddr,
) {
    let Some(acceptor) = acceptor else {
        return serve_http(api, peer, stream).await;
    };
    let mut first = [0u8; 1];
    match tokio::time::timeout(HANDSHAKE, stream.peek(&mut first)).await {
        Ok(Ok(1)) => {}
        _ => return,
    }
    // 0x16: a TLS handshake record. Anything else is not TLS: say so and close.
    if first[0] != 0x16 {
        let _ = stream.write_all(&plain_refusal()).await;
        let _ = stream.shutdown().await;
        return;
    }
    if offers_only_old_tls(&stream).await {
        let mut head = [0u8; 3];
        let _ = stream.peek(&mut head).await;
        let _ = stream
            .write_all(&super::hello::protocol_version_alert([head[1], head[2]]))
            .await;
        let _ = stream.shutdown().await;
        return;
    }
    if let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
        serve_http(api, peer, tls).await;
    }
}

/// Whether the client's first record is a ClientHello offering nothing newer than TLS 1.1
/// (peeked, not consumed; waits briefly for the whole record).
async fn offers_only_old_tls(stream: &TcpStream) -> bool {
    let mut buf = vec![0u8; 5 + 16 * 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let Ok(n) = stream.peek(&mut buf).await else {
            return false;
        };
        let seen = &buf[..n];
        if let Some(v) = super::hello::offered_max_version(seen) {
            return v < super::hello::TLS12;
        }
        if super::hello::record_len(seen).is_some_and(|len| n >= len)
            || tokio::time::Instant::now() >= deadline
        {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Binds and serves on a runtime of its own until `stop`. Returns once listening.
pub fn start(api: Arc<Api>, stop: Arc<AtomicBool>) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let config = api.config.clone();
    let acceptor = if config.insecure_http {
        tracing::warn!("api.insecure_http is set: the API speaks plain HTTP (development only)");
        None
    } else {
        let (Some(cert), Some(key)) = (&config.cert, &config.key) else {
            anyhow::bail!(
                "api: cert and key are required (HTTPS); `insecure_http = true` is for development only"
            );
        };
        Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(
            cert, key,
        )?)))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers.max(1))
        .max_blocking_threads(64)
        .thread_name("veil-api")
        .enable_all()
        .build()?;
    let listener = runtime
        .block_on(TcpListener::bind(&config.listen))
        .with_context(|| format!("api: listening on {}", config.listen))?;
    let local = listener.local_addr()?;
    tracing::info!(
        "api on {}://{local}",
        if acceptor.is_some() { "https" } else { "http" }
    );
    Ok(std::thread::spawn(move || {
        runtime.block_on(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            let mut tidy = 0u32;
            while !stop.load(Ordering::Acquire) {
                tokio::select! {
                    accepted = listener.accept() => {
                        if let Ok((stream, peer)) = accepted {
                            let _ = stream.set_nodelay(true);
                            tokio::spawn(connection(api.clone(), acceptor.clone(), stream, peer));
                        }
                    }
                    _ = tick.tick() => {
                        tidy += 1;
                        if tidy.is_multiple_of(100) {
                            api.tidy();
                            // Authentications logged since are made durable about every 10 s at
                            // the latest (ingest flushes far more often while devices publish).
                            let _ = api.store.flush();
                        }
                    }
                }
            }
        });
        runtime.shutdown_timeout(Duration::from_secs(2));
    }))
}
