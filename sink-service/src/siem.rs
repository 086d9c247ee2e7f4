// SPDX-License-Identifier: MIT OR Apache-2.0
//! Forwarding the audit log to a SIEM: as JSON Lines (one entry per line) or as RFC 5424
//! syslog messages with octet-counting framing (RFC 6587 over TCP, RFC 5425 over TLS), to a
//! file, a TCP or a TLS endpoint. Each target keeps a cursor in the store and resumes from it
//! after a reconnect or a restart, so nothing is skipped (an entry may be sent twice after a
//! crash: at least once). Retention never deletes an entry a target has not sent.

use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use crate::audit::{AuditEntry, entries};
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Jsonl,
    Rfc5424,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    File,
    Tcp,
    Tls,
}

/// One `[[audit.forward]]` target.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Names the target's cursor: keep it stable.
    pub name: String,
    pub format: Format,
    pub transport: Transport,
    /// `host:port` for tcp and tls.
    pub address: Option<String>,
    /// The file for `file`.
    pub path: Option<PathBuf>,
    /// CA certificates (PEM) the TLS endpoint's certificate must chain to.
    pub ca: Option<PathBuf>,
    /// Name to verify the TLS certificate against (default: the address's host).
    pub server_name: Option<String>,
}

const FACILITY_LOG_AUDIT: u8 = 13;
/// The documentation enterprise number of RFC 5424 §7.2.2 (`veil@32473`), as no private
/// enterprise number is registered for Veil.
pub const SD_ID: &str = "veil@32473";

fn host_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if name.is_empty() { "-".into() } else { name }
}

/// RFC 5424 PARAM-VALUE escaping: `"`, `\` and `]`.
fn sd_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// RFC 5424 timestamps carry at most six fractional digits.
fn syslog_time(time: &str) -> String {
    match time.split_once('.') {
        Some((secs, frac)) => {
            let digits: String = frac
                .chars()
                .take_while(char::is_ascii_digit)
                .take(6)
                .collect();
            format!("{secs}.{digits}Z")
        }
        None => time.to_owned(),
    }
}

/// One audit entry as an RFC 5424 message (without framing).
pub fn rfc5424(entry: &AuditEntry, host: &str, pid: u32) -> String {
    let severity = if entry.outcome == "success" { 5 } else { 4 };
    let pri = FACILITY_LOG_AUDIT * 8 + severity;
    let msgid: String = entry
        .action
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(32)
        .collect();
    let mut sd = format!("[{SD_ID} seq=\"{}\"", entry.seq);
    for (name, value) in [
        ("tenant", entry.tenant.as_deref()),
        ("actor", Some(entry.actor.as_str())),
        ("src", entry.source_ip.as_deref()),
        ("action", Some(entry.action.as_str())),
        ("outcome", Some(entry.outcome.as_str())),
        ("hash", Some(entry.hash.as_str())),
    ] {
        if let Some(v) = value {
            sd.push_str(&format!(" {name}=\"{}\"", sd_escape(v)));
        }
    }
    sd.push(']');
    let msg = serde_json::to_string(entry).unwrap_or_default();
    format!(
        "<{pri}>1 {} {host} veil-sink-service {pid} {msgid} {sd} {msg}",
        syslog_time(&entry.time)
    )
}

/// The bytes one entry takes on the wire for a target.
pub fn frame(format: Format, entry: &AuditEntry, host: &str, pid: u32) -> Vec<u8> {
    match format {
        Format::Jsonl => {
            let mut line = serde_json::to_vec(entry).unwrap_or_default();
            line.push(b'\n');
            line
        }
        Format::Rfc5424 => {
            let msg = rfc5424(entry, host, pid);
            format!("{} {msg}", msg.len()).into_bytes()
        }
    }
}

fn tls_config(target: &Target) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let ca = target
        .ca
        .as_ref()
        .context("a tls target needs `ca` (the PEM file of its CA)")?;
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.context("a CA certificate")?)?;
    }
    // An explicit provider: Zenoh installs one process-wide, ours must not depend on it.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// A connected target.
enum Sink {
    File(std::fs::File),
    Tcp(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Sink {
    fn open(target: &Target) -> anyhow::Result<Sink> {
        let connect = || -> anyhow::Result<TcpStream> {
            let address = target
                .address
                .as_deref()
                .context("a tcp or tls target needs `address` (host:port)")?;
            let stream =
                TcpStream::connect(address).with_context(|| format!("connecting to {address}"))?;
            stream.set_write_timeout(Some(Duration::from_secs(10)))?;
            Ok(stream)
        };
        Ok(match target.transport {
            Transport::File => {
                let path = target.path.as_ref().context("a file target needs `path`")?;
                Sink::File(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .with_context(|| format!("opening {}", path.display()))?,
                )
            }
            Transport::Tcp => Sink::Tcp(connect()?),
            Transport::Tls => {
                let host = target.server_name.clone().unwrap_or_else(|| {
                    let a = target.address.clone().unwrap_or_default();
                    a.rsplit_once(':').map(|(h, _)| h.to_owned()).unwrap_or(a)
                });
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .with_context(|| format!("{host:?} is not a server name"))?;
                let conn = rustls::ClientConnection::new(tls_config(target)?, name)?;
                let mut tls = rustls::StreamOwned::new(conn, connect()?);
                // Handshake now, so a wrong CA shows here and not as silent loss.
                while tls.conn.is_handshaking() {
                    tls.conn
                        .complete_io(&mut tls.sock)
                        .context("TLS handshake with the SIEM")?;
                }
                Sink::Tls(Box::new(tls))
            }
        })
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::File(f) => f.write_all(bytes),
            Sink::Tcp(s) => s.write_all(bytes),
            Sink::Tls(s) => s.write_all(bytes),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::File(f) => f.sync_data(),
            Sink::Tcp(s) => s.flush(),
            Sink::Tls(s) => s.flush(),
        }
    }
}

fn cursor_key(name: &str) -> String {
    format!("siem-cursor/{name}")
}

/// The last seq a target has sent.
pub fn cursor(store: &Store, name: &str) -> u64 {
    store
        .db()
        .open_tree("meta")
        .ok()
        .and_then(|m| m.get(cursor_key(name)).ok().flatten())
        .map(|v| crate::store::key_seq(&v))
        .unwrap_or(0)
}

/// The lowest cursor over all targets (entries after it are kept by retention).
pub fn low_water(store: &Store, targets: &[Target]) -> u64 {
    targets
        .iter()
        .map(|t| cursor(store, &t.name))
        .min()
        .unwrap_or(u64::MAX)
}

/// Forwards entries to one target until `stop`, reconnecting with backoff.
pub fn run(store: &Store, target: &Target, stop: &AtomicBool) {
    let (host, pid) = (host_name(), std::process::id());
    let mut sink: Option<Sink> = None;
    let mut wait = Duration::from_millis(200);
    let mut said = false;
    while !stop.load(Ordering::Acquire) {
        let result = (|| -> anyhow::Result<bool> {
            let after = cursor(store, &target.name);
            let batch = entries(store, after, 256, None)?;
            let Some(last) = batch.last().map(|e| e.seq) else {
                return Ok(false);
            };
            let sink = match &mut sink {
                Some(s) => s,
                None => sink.insert(Sink::open(target)?),
            };
            for entry in &batch {
                sink.send(&frame(target.format, entry, &host, pid))?;
            }
            sink.flush()?;
            store
                .db()
                .open_tree("meta")?
                .insert(cursor_key(&target.name), &last.to_be_bytes())?;
            Ok(true)
        })();
        match result {
            Ok(sent) => {
                if said {
                    tracing::info!(target = %target.name, "audit forwarding resumed");
                    said = false;
                }
                wait = Duration::from_millis(200);
                if !sent {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            Err(e) => {
                if !said {
                    tracing::warn!(target = %target.name, "audit forwarding: {e:#} (retrying)");
                    said = true;
                }
                sink = None;
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(10));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_become_rfc5424_messages() {
        let mut entry = AuditEntry {
            v: 1,
            seq: 7,
            time: "2026-11-23T10:00:00.123456789Z".into(),
            actor: "anonymous".into(),
            tenant: None,
            source_ip: Some("127.0.0.1".into()),
            action: "auth.failure".into(),
            outcome: "failure".into(),
            detail: serde_json::json!({"reason": "a \"quoted\" ] reason"}),
            prev: veil_wire::GENESIS.into(),
            hash: String::new(),
        };
        entry.hash = entry.compute_hash().unwrap();
        let msg = rfc5424(&entry, "host-1", 42);
        let head = format!(
            "<108>1 2026-11-23T10:00:00.123456Z host-1 veil-sink-service 42 auth.failure [veil@32473 seq=\"7\" actor=\"anonymous\" src=\"127.0.0.1\" action=\"auth.failure\" outcome=\"failure\" hash=\"{}\"] {{",
            entry.hash
        );
        assert!(msg.starts_with(&head), "{msg}");
        let framed = String::from_utf8(frame(Format::Rfc5424, &entry, "host-1", 42)).unwrap();
        let (len, rest) = framed.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), rest.len());
        assert_eq!(sd_escape(r#"a"b\c]d"#), r#"a\"b\\c\]d"#);
        let line = frame(Format::Jsonl, &entry, "h", 1);
        assert_eq!(line.last(), Some(&b'\n'));
        let back: AuditEntry = serde_json::from_slice(&line).unwrap();
        assert_eq!(back, entry);
    }
}
