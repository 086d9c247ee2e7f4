// SPDX-License-Identifier: MIT OR Apache-2.0
//! Operations metrics in the Prometheus text format (OpenMetrics 1.0, as the
//! `prometheus-client` crate writes it), served on a plain-HTTP listener of their own
//! (`[metrics] listen`, docs/console.md "/metrics").
//!
//! What the service counts as it runs (records received, stored and quarantined by reason,
//! group-commit latency, acknowledgement lag per chain unit, webhook delivery failures, API
//! requests by route and status with their latency) lives in one process-wide [`Telemetry`];
//! what the store already knows (its size on disk, the webhook queue's depth, how far each
//! SIEM target is behind the audit log) is read at each scrape.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::ingest::Stats;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UnitLabel {
    /// `tenant/site/device/stream`.
    pub unit: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabel {
    pub target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route's pattern (`/v1/t/{tenant}/metrics`), `console` or `unmatched`: never a
    /// tenant's name or an id, so the label set stays small.
    pub route: String,
    pub method: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: String,
}

/// The service's metrics.
pub struct Telemetry {
    registry: Registry,
    received: Counter,
    stored: Counter,
    quarantined: Family<ReasonLabel, Counter>,
    commit_seconds: Histogram,
    ack_lag: Family<UnitLabel, Gauge>,
    webhook_failures: Family<ReasonLabel, Counter>,
    api_requests: Family<RequestLabels, Counter>,
    api_seconds: Family<RouteLabel, Histogram>,
    store_bytes: Gauge,
    webhook_queue: Gauge,
    siem_lag: Family<TargetLabel, Gauge>,
    /// The ingest counters last seen (metrics count what changed since).
    seen: Mutex<Stats>,
    /// Per chain unit: (highest stored seq, highest acknowledged seq).
    heads: Mutex<HashMap<String, (u64, u64)>>,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Telemetry {
    fn new() -> Telemetry {
        let mut registry = Registry::with_prefix("veil");
        let t = Telemetry {
            received: Counter::default(),
            stored: Counter::default(),
            quarantined: Family::default(),
            commit_seconds: latency_histogram(),
            ack_lag: Family::default(),
            webhook_failures: Family::default(),
            api_requests: Family::default(),
            api_seconds: Family::new_with_constructor(latency_histogram),
            store_bytes: Gauge::default(),
            webhook_queue: Gauge::default(),
            siem_lag: Family::default(),
            seen: Mutex::new(Stats::default()),
            heads: Mutex::new(HashMap::new()),
            registry: Registry::default(),
        };
        registry.register(
            "records_received",
            "Records received over Zenoh (any outcome)",
            t.received.clone(),
        );
        registry.register(
            "records_stored",
            "Records stored durably (valid, in their chain)",
            t.stored.clone(),
        );
        registry.register(
            "records_quarantined",
            "Records refused and kept in the quarantine, by reason (malformed, oversized, spoofed, chain, other)",
            t.quarantined.clone(),
        );
        registry.register(
            "group_commit_seconds",
            "Time to commit one group of records (sled flush included)",
            t.commit_seconds.clone(),
        );
        registry.register(
            "acknowledgement_lag_records",
            "Records stored but not yet acknowledged to the device, per chain unit (tenant/site/device/stream)",
            t.ack_lag.clone(),
        );
        registry.register(
            "webhook_delivery_failures",
            "Webhook delivery attempts that did not succeed (retrying: will be tried again; failed: given up)",
            t.webhook_failures.clone(),
        );
        registry.register(
            "api_requests",
            "HTTPS API requests by route pattern, method and status",
            t.api_requests.clone(),
        );
        registry.register(
            "api_request_seconds",
            "HTTPS API request latency by route pattern (gate and handler; streamed bodies not included)",
            t.api_seconds.clone(),
        );
        registry.register(
            "store_size_bytes",
            "The store's size on disk (sled)",
            t.store_bytes.clone(),
        );
        registry.register(
            "webhook_queue_depth",
            "Webhook deliveries queued (due now or later)",
            t.webhook_queue.clone(),
        );
        registry.register(
            "siem_lag_entries",
            "Audit entries not yet forwarded, per SIEM target",
            t.siem_lag.clone(),
        );
        Telemetry { registry, ..t }
    }

    /// The ingest counters now: what changed since the last call is counted.
    pub fn ingest(&self, now: &Stats) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        let delta = |new: u64, old: u64| new.saturating_sub(old);
        self.received.inc_by(delta(now.received, seen.received));
        self.stored.inc_by(delta(now.stored, seen.stored));
        let named = [
            ("malformed", now.malformed, seen.malformed),
            ("oversized", now.oversized, seen.oversized),
            ("spoofed", now.spoofed, seen.spoofed),
            ("chain", now.chain_errors, seen.chain_errors),
        ];
        let mut explained = 0;
        for (reason, new, old) in named {
            explained += delta(new, old);
            self.quarantined
                .get_or_create(&ReasonLabel {
                    reason: reason.into(),
                })
                .inc_by(delta(new, old));
        }
        let other = delta(now.quarantined, seen.quarantined).saturating_sub(explained);
        self.quarantined
            .get_or_create(&ReasonLabel {
                reason: "other".into(),
            })
            .inc_by(other);
        *seen = now.clone();
    }

    /// One group commit took `seconds`.
    pub fn committed(&self, seconds: f64) {
        self.commit_seconds.observe(seconds);
    }

    /// A chain unit's records are stored up to `seq`.
    pub fn unit_stored(&self, unit: &str, seq: u64) {
        self.unit_heads(unit, |h| h.0 = h.0.max(seq));
    }

    /// A chain unit's records are acknowledged up to `seq`.
    pub fn unit_acknowledged(&self, unit: &str, seq: u64) {
        self.unit_heads(unit, |h| h.1 = h.1.max(seq));
    }

    fn unit_heads(&self, unit: &str, change: impl FnOnce(&mut (u64, u64))) {
        let Ok(mut heads) = self.heads.lock() else {
            return;
        };
        let h = heads.entry(unit.to_owned()).or_default();
        change(h);
        self.ack_lag
            .get_or_create(&UnitLabel {
                unit: unit.to_owned(),
            })
            .set(h.0.saturating_sub(h.1) as i64);
    }

    /// A webhook delivery attempt that did not succeed (`retrying` or `failed`).
    pub fn webhook_failed(&self, outcome: &str) {
        self.webhook_failures
            .get_or_create(&ReasonLabel {
                reason: outcome.into(),
            })
            .inc();
    }

    /// An API request answered.
    pub fn api_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.api_requests
            .get_or_create(&RequestLabels {
                route: route.into(),
                method: method.into(),
                status: status.to_string(),
            })
            .inc();
        self.api_seconds
            .get_or_create(&RouteLabel {
                route: route.into(),
            })
            .observe(seconds);
    }

    /// The text format, with what the store knows read now.
    ///
    /// Errors: the store's (reading the webhook queue), formatting.
    pub fn render(
        &self,
        store: &crate::store::Store,
        audit_head: u64,
        siem_targets: &[String],
    ) -> anyhow::Result<String> {
        self.store_bytes
            .set(store.db().size_on_disk().unwrap_or(0) as i64);
        self.webhook_queue
            .set(crate::webhooks::queued(store).unwrap_or(0) as i64);
        for target in siem_targets {
            let behind = audit_head.saturating_sub(crate::siem::cursor(store, target));
            self.siem_lag
                .get_or_create(&TargetLabel {
                    target: target.clone(),
                })
                .set(behind as i64);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// The content type of [`Telemetry::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The process's metrics.
pub fn telemetry() -> &'static Telemetry {
    static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();
    TELEMETRY.get_or_init(Telemetry::new)
}

/// Serves `GET /metrics` on `listen` (plain HTTP/1.1 by hyper, a runtime of its own) until
/// `stop`. Returns once listening.
///
/// Errors: binding `listen`, starting the runtime.
pub fn serve(
    listen: &str,
    store: std::sync::Arc<crate::store::Store>,
    audit: std::sync::Arc<crate::audit::AuditLog>,
    siem_targets: Vec<String>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    use anyhow::Context;
    use http_body_util::Full;
    use hyper::{Response, StatusCode};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(listen))
        .with_context(|| format!("metrics: listening on {listen}"))?;
    let local = listener.local_addr()?;
    tracing::info!("metrics on http://{local}/metrics");
    if !local.ip().is_loopback() {
        tracing::warn!(
            "metrics listen on {local}, not loopback: the labels name devices and streams, and nothing authenticates a scrape"
        );
    }
    let answer = move |req: hyper::Request<hyper::body::Incoming>| {
        let reply = |status: StatusCode, content_type: &str, body: String| {
            Response::builder()
                .status(status)
                .header("content-type", content_type)
                .body(Full::new(bytes::Bytes::from(body)))
        };
        let response = if req.uri().path() != "/metrics" {
            reply(
                StatusCode::NOT_FOUND,
                "text/plain",
                "only /metrics here\n".into(),
            )
        } else if req.method() != hyper::Method::GET {
            reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "use GET\n".into(),
            )
        } else {
            match telemetry().render(&store, audit.head_seq(), &siem_targets) {
                Ok(text) => reply(StatusCode::OK, CONTENT_TYPE, text),
                Err(e) => {
                    tracing::error!("metrics: {e:#}");
                    reply(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "text/plain",
                        "see the service log\n".into(),
                    )
                }
            }
        };
        async move { response }
    };
    Ok(std::thread::spawn(move || {
        runtime.block_on(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let answer = answer.clone();
                        tokio::spawn(async move {
                            let service = hyper::service::service_fn(answer);
                            // A slow client cannot hold a connection open for long.
                            let connection = hyper::server::conn::http1::Builder::new()
                                .timer(hyper_util::rt::TokioTimer::new())
                                .header_read_timeout(std::time::Duration::from_secs(5))
                                .keep_alive(false)
                                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                            let _ = tokio::time::timeout(std::time::Duration::from_secs(30), connection)
                                .await;
                        });
                    }
                    _ = tick.tick() => {}
                }
            }
        });
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_counters_count_what_changed_and_quarantine_reasons_add_up() {
        let t = Telemetry::new();
        let mut stats = Stats {
            received: 10,
            stored: 7,
            quarantined: 3,
            malformed: 1,
            spoofed: 1,
            ..Stats::default()
        };
        t.ingest(&stats);
        stats.received = 12;
        stats.stored = 9;
        t.ingest(&stats);
        assert_eq!(t.received.get(), 12);
        assert_eq!(t.stored.get(), 9);
        let reason = |r: &str| {
            t.quarantined
                .get_or_create(&ReasonLabel { reason: r.into() })
                .get()
        };
        assert_eq!(
            (reason("malformed"), reason("spoofed"), reason("other")),
            (1, 1, 1)
        );
        t.unit_stored("acme/hq/cam/door", 10);
        t.unit_acknowledged("acme/hq/cam/door", 7);
        let lag = t
            .ack_lag
            .get_or_create(&UnitLabel {
                unit: "acme/hq/cam/door".into(),
            })
            .get();
        assert_eq!(lag, 3);
        t.api_request("/v1/t/{tenant}/metrics", "GET", 200, 0.01);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &t.registry).unwrap();
        assert!(out.contains("veil_records_received_total 12"), "{out}");
        assert!(
            out.contains("veil_api_requests_total{route=\"/v1/t/{tenant}/metrics\",method=\"GET\",status=\"200\"} 1"),
            "{out}"
        );
        assert!(out.ends_with("# EOF\n"), "{out}");
    }
}
