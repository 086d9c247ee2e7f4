// SPDX-License-Identifier: MIT OR Apache-2.0
//! Webhooks: subscriptions per event type, deliveries signed in the Standard Webhooks format,
//! retried with exponential backoff from a queue in the store (it survives a restart), and a
//! delivery log per subscription.
//!
//! Event types: `window.closed` (a metrics window became valid), `integrity.alert` (a device's
//! `integrity` record, or something the service found: gap, conflict, chain break, untrusted
//! key), `inspection.ng` (an `inspection` record whose `decision` is `NG`),
//! `compliance.violation` (a `compliance` record whose `status` is not `in_order`).
//!
//! Signing: `webhook-signature: v1,<base64 HMAC-SHA256(secret, "<webhook-id>.<webhook-timestamp>.<body>")>`
//! with the secret shown once at creation as `whsec_<base64>`. Each attempt is signed anew
//! (fresh timestamp); the `webhook-id` stays the same across retries, so a receiver can drop
//! duplicates (delivery is at least once).
//!
//! Trees: `webhooks/<t>` subscriptions (sealed, the secret included), `webhook-log/<t>` the
//! attempts, `webhook-queue/.service` the deliveries due (key: due time ‖ id; value: tenant id ␀
//! sealed delivery).

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use veil_wire::event::{ComplianceCycle, CycleStatus, Decision, InspectionRecord};
use veil_wire::record::format_time;
use veil_wire::{Kind, Record};

use crate::stations::Stations;
use crate::store::{Entry, SERVICE_TENANT, Store, now_ns, seq_key};

pub const EVENT_TYPES: [&str; 4] = [
    "window.closed",
    "integrity.alert",
    "inspection.ng",
    "compliance.violation",
];
const SUBS: &str = "webhooks";
const LOG: &str = "webhook-log";
const QUEUE: &str = "webhook-queue";

/// How many deliveries are queued (due now or later).
///
/// Errors: the store's.
pub fn queued(store: &Store) -> anyhow::Result<usize> {
    Ok(store.tree(QUEUE, SERVICE_TENANT)?.len())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    pub id: String,
    pub tenant: String,
    pub url: String,
    pub events: BTreeSet<String>,
    pub description: String,
    pub created: String,
    /// `whsec_<base64>`; never shown after creation.
    pub secret: String,
    /// Only events of these sites, devices, streams (the creating key's scope or narrower;
    /// subscriptions stored before scopes existed read as the whole tenant).
    #[serde(default, skip_serializing_if = "Stations::is_whole_tenant")]
    pub stations: Stations,
}

impl Subscription {
    pub fn public(&self) -> Value {
        json!({"id": self.id, "url": self.url, "events": self.events,
               "description": self.description, "created": self.created,
               "stations": self.stations.public()})
    }
}

/// What a new subscription is to be.
pub struct NewSubscription<'a> {
    pub url: &'a str,
    pub events: BTreeSet<String>,
    pub description: &'a str,
    pub stations: Stations,
}

/// A delivery waiting in the queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    /// `msg_<hex>`: the `webhook-id`.
    pub id: String,
    pub tenant: String,
    pub subscription: String,
    pub event: String,
    pub body: String,
    pub attempts: u32,
    pub created: String,
}

/// How deliveries are retried, and which targets are allowed.
#[derive(Debug, Clone)]
pub struct Policy {
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub timeout: Duration,
    /// Plain `http://` targets (development only).
    pub allow_http: bool,
    /// Targets on loopback, private and link-local addresses.
    pub allow_private: bool,
}

/// The wait before attempt `attempts + 1` (after `attempts` failures): base · 2^(attempts−1),
/// at most `max`.
pub fn backoff(policy: &Policy, attempts: u32) -> Duration {
    let factor = 1u32
        .checked_shl(attempts.saturating_sub(1).min(31))
        .unwrap_or(u32::MAX);
    policy
        .backoff_base
        .saturating_mul(factor)
        .min(policy.backoff_max)
}

/// The Standard Webhooks signature header value.
pub fn sign(secret: &str, id: &str, timestamp: u64, body: &str) -> anyhow::Result<String> {
    let key = B64
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .context("webhook secret is not base64")?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&key).map_err(|_| anyhow::anyhow!("webhook secret"))?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Ok(format!("v1,{}", B64.encode(mac.finalize().into_bytes())))
}

fn random_hex(n: usize) -> anyhow::Result<String> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no random numbers: {e}"))?;
    Ok(hex::encode(b))
}

/// A URL with a scheme the policy allows (https; http only under `allow_http`). Deliveries
/// check only this: the agent's resolver checks the addresses as it connects.
fn check_scheme(url: &str, policy: &Policy) -> Result<http::Uri, String> {
    let uri: http::Uri = url.parse().map_err(|_| format!("{url:?} is not a URL"))?;
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if policy.allow_http => Ok(uri),
        Some("http") => Err("webhook URLs must be https".into()),
        _ => Err(format!("{url:?} is not an https URL")),
    }
}

/// Checks a target URL against the policy, at creation: scheme, then every address its host
/// resolves to.
pub fn check_url(url: &str, policy: &Policy) -> Result<(), String> {
    let uri = check_scheme(url, policy)?;
    let host = uri.host().ok_or(format!("{url:?} has no host"))?;
    if !policy.allow_private {
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("http") {
                80
            } else {
                443
            });
        // A name that does not resolve now is accepted: every delivery resolves it again and
        // refuses it then if it points inside.
        match crate::webhook_target::resolve_checked(host, port) {
            Ok(_) | Err(crate::webhook_target::Refused::Unresolved(_)) => {}
            Err(refused) => return Err(refused.to_string()),
        }
    }
    Ok(())
}

pub fn create(
    store: &Store,
    tenant: &str,
    new: NewSubscription<'_>,
    policy: &Policy,
) -> anyhow::Result<Result<Subscription, String>> {
    let NewSubscription {
        url,
        events,
        description,
        stations,
    } = new;
    if let Err(e) = check_url(url, policy) {
        return Ok(Err(e));
    }
    if events.is_empty() {
        return Ok(Err("events must name at least one event type".into()));
    }
    if let Some(e) = events.iter().find(|e| !EVENT_TYPES.contains(&e.as_str())) {
        return Ok(Err(format!(
            "unknown event type {e:?}: use {}",
            EVENT_TYPES.join(", ")
        )));
    }
    let mut secret = [0u8; 24];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no random numbers: {e}"))?;
    let sub = Subscription {
        id: format!("wh_{}", random_hex(8)?),
        tenant: tenant.to_owned(),
        url: url.to_owned(),
        events,
        description: description.to_owned(),
        created: format_time(now_ns()),
        secret: format!("whsec_{}", B64.encode(secret)),
        stations,
    };
    store.put(tenant, SUBS, sub.id.as_bytes(), &serde_json::to_vec(&sub)?)?;
    store.flush()?;
    Ok(Ok(sub))
}

pub fn list(store: &Store, tenant: &str) -> anyhow::Result<Vec<Subscription>> {
    let mut out = Vec::new();
    for item in store.tree(SUBS, tenant)?.iter() {
        let (k, _) = item?;
        if let Some(bytes) = store.get(tenant, SUBS, &k)? {
            out.push(serde_json::from_slice(&bytes)?);
        }
    }
    Ok(out)
}

pub fn get(store: &Store, tenant: &str, id: &str) -> anyhow::Result<Option<Subscription>> {
    Ok(match store.get(tenant, SUBS, id.as_bytes())? {
        Some(b) => Some(serde_json::from_slice(&b)?),
        None => None,
    })
}

pub fn delete(store: &Store, tenant: &str, id: &str) -> anyhow::Result<bool> {
    let removed = store.tree(SUBS, tenant)?.remove(id.as_bytes())?.is_some();
    store.flush()?;
    Ok(removed)
}

/// The delivery attempts of a subscription, newest first, at most `limit`.
pub fn deliveries(
    store: &Store,
    tenant: &str,
    subscription: &str,
    limit: usize,
) -> anyhow::Result<Vec<Value>> {
    let prefix = [subscription.as_bytes(), &[0]].concat();
    let mut out = Vec::new();
    for item in store.tree(LOG, tenant)?.scan_prefix(&prefix).rev() {
        if out.len() >= limit {
            break;
        }
        let (k, _) = item?;
        if let Some(bytes) = store.get(tenant, LOG, &k)? {
            out.push(serde_json::from_slice(&bytes)?);
        }
    }
    Ok(out)
}

fn queue_key(due_ns: u64, id: &str) -> Vec<u8> {
    [&due_ns.to_be_bytes()[..], id.as_bytes()].concat()
}

fn put_queued(store: &Store, due_ns: u64, d: &Delivery) -> anyhow::Result<()> {
    let sealed = store.seal(&d.tenant, QUEUE, d.id.as_bytes(), &serde_json::to_vec(d)?)?;
    // The tenant by its id: the service's tree names no tenant.
    let value = [store.tenant_id(&d.tenant).as_bytes(), &[0], &sealed].concat();
    store
        .tree(QUEUE, SERVICE_TENANT)?
        .insert(queue_key(due_ns, &d.id), value)?;
    Ok(())
}

/// Where an event comes from: site, device, stream, as far as known.
pub type Origin<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);

/// Queues `event` with `data` for every subscription of the tenant that wants it and whose
/// stations hold `origin` (durable with the store's next flush). Returns how many deliveries
/// were queued.
pub fn enqueue(
    store: &Store,
    tenant: &str,
    origin: Origin<'_>,
    event: &str,
    data: Value,
) -> anyhow::Result<usize> {
    let (site, device, stream) = origin;
    let subs: Vec<Subscription> = list(store, tenant)?
        .into_iter()
        .filter(|s| s.events.contains(event) && s.stations.admits_known(site, device, stream))
        .collect();
    for sub in &subs {
        let id = format!("msg_{}", random_hex(12)?);
        let body = json!({"type": event, "timestamp": format_time(now_ns()), "data": data});
        put_queued(
            store,
            now_ns(),
            &Delivery {
                id,
                tenant: tenant.to_owned(),
                subscription: sub.id.clone(),
                event: event.to_owned(),
                body: body.to_string(),
                attempts: 0,
                created: format_time(now_ns()),
            },
        )?;
    }
    Ok(subs.len())
}

pub use crate::notice::Notice;

/// The event type of a valid record, if it has one.
pub fn event_of(record: &Record) -> Option<&'static str> {
    match record.kind {
        Kind::Metrics => Some("window.closed"),
        Kind::Integrity => Some("integrity.alert"),
        Kind::Inspection
            if InspectionRecord::deserialize(&record.body)
                .is_ok_and(|i| i.decision == Decision::Ng) =>
        {
            Some("inspection.ng")
        }
        Kind::Compliance
            if ComplianceCycle::deserialize(&record.body)
                .is_ok_and(|c| c.status != CycleStatus::InOrder) =>
        {
            Some("compliance.violation")
        }
        _ => None,
    }
}

/// Turns notices into queued deliveries (only tenants with subscriptions cost anything).
pub fn dispatch(store: &Store, notices: Vec<Notice>) -> anyhow::Result<usize> {
    let mut n = 0;
    for notice in notices {
        match notice {
            Notice::Integrity { tenant, event } => {
                if !store.tree(SUBS, &tenant)?.is_empty() {
                    let device = event.get("device").and_then(Value::as_str);
                    let stream = event.get("stream").and_then(Value::as_str);
                    let site = match (event.get("site").and_then(Value::as_str), device, stream) {
                        (Some(site), _, _) => Some(site.to_owned()),
                        (None, Some(d), Some(s)) => {
                            store.unit_state(&tenant, d, s, 0)?.map(|u| u.site)
                        }
                        _ => None,
                    };
                    n += enqueue(
                        store,
                        &tenant,
                        (site.as_deref(), device, stream),
                        "integrity.alert",
                        json!({"source": "service", "tenant": tenant, "event": event}),
                    )?;
                }
            }
            Notice::Valid {
                tenant,
                device,
                stream,
                epoch,
                from,
                to,
            } => {
                if store.tree(SUBS, &tenant)?.is_empty() {
                    continue;
                }
                let index = store.tree("index", &tenant)?;
                let unit = store.unit_id(&tenant, &device, &stream, epoch);
                for seq in from..=to {
                    let Some(Entry::Live(_, rkey)) = index
                        .get(seq_key(&unit, seq))?
                        .and_then(|v| Entry::decode(&v))
                    else {
                        continue;
                    };
                    let Some(bytes) = store.get(&tenant, "records", &rkey)? else {
                        continue;
                    };
                    let record = Record::from_slice(&bytes)?;
                    if let Some(event) = event_of(&record) {
                        n += enqueue(
                            store,
                            &tenant,
                            (
                                Some(record.site.as_str()),
                                Some(record.device.as_str()),
                                Some(record.stream.as_str()),
                            ),
                            event,
                            json!({"source": "device", "record": record}),
                        )?;
                    }
                }
            }
        }
    }
    Ok(n)
}

fn log_attempt(
    store: &Store,
    d: &Delivery,
    status: Option<u16>,
    error: Option<String>,
    outcome: &str,
) -> anyhow::Result<()> {
    static COUNTER: Mutex<u64> = Mutex::new(0);
    let counter = COUNTER.lock().map(|mut c| {
        *c += 1;
        *c
    });
    let key = [
        d.subscription.as_bytes(),
        &[0],
        &now_ns().to_be_bytes(),
        &counter.unwrap_or(0).to_be_bytes(),
    ]
    .concat();
    let entry = json!({"webhook_id": d.id, "event": d.event, "attempt": d.attempts,
        "time": format_time(now_ns()), "status": status, "error": error, "outcome": outcome});
    store.put(&d.tenant, LOG, &key, &serde_json::to_vec(&entry)?)
}

/// Sends one delivery; `Ok(status)` when the receiver answered.
fn send(agent: &ureq::Agent, sub: &Subscription, d: &Delivery) -> Result<u16, String> {
    let timestamp = now_ns() / 1_000_000_000;
    let signature = sign(&sub.secret, &d.id, timestamp, &d.body).map_err(|e| e.to_string())?;
    agent
        .post(&sub.url)
        .header("content-type", "application/json")
        .header("webhook-id", &d.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .send(d.body.as_bytes())
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

/// The HTTP client of the deliveries: no redirects, the policy's timeout, and unless
/// `allow_private`, a resolver that refuses a target any of whose addresses is inside and makes
/// the connection go to the addresses it checked.
pub fn agent(policy: &Policy) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(policy.timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        // Never a proxy from the environment: the proxy would resolve the target itself, past
        // the address check below.
        .proxy(None)
        .user_agent("veil-sink-service-webhooks")
        .build();
    if policy.allow_private {
        config.into()
    } else {
        ureq::Agent::with_parts(
            config,
            ureq::unversioned::transport::DefaultConnector::default(),
            crate::webhook_target::GuardedResolver::default(),
        )
    }
}

/// The delivery loop: the earliest due delivery, sent, then removed (2xx), rescheduled with
/// backoff, or given up after `max_attempts` (logged). Runs until `stop`.
pub fn run(store: &Store, policy: &Policy, stop: &std::sync::atomic::AtomicBool) {
    let agent = agent(policy);
    while !stop.load(std::sync::atomic::Ordering::Acquire) {
        match step(store, policy, &agent) {
            Ok(true) => {}
            Ok(false) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => {
                tracing::error!("webhooks: {e:#}");
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

/// One delivery if one is due; false when none is.
pub fn step(store: &Store, policy: &Policy, agent: &ureq::Agent) -> anyhow::Result<bool> {
    let queue = store.tree(QUEUE, SERVICE_TENANT)?;
    let Some((key, value)) = queue.first()? else {
        return Ok(false);
    };
    let due = crate::store::key_seq(&key[..8.min(key.len())]);
    if due > now_ns() {
        return Ok(false);
    }
    let Some(split) = value.iter().position(|&b| b == 0) else {
        queue.remove(&key)?;
        bail!("a queued delivery without a tenant was dropped");
    };
    // A delivery whose tenant cannot be found is dropped, not retried: it would block the
    // queue for every tenant.
    let Ok(Some(tenant)) = store.tenant_by_id(&String::from_utf8_lossy(&value[..split])) else {
        queue.remove(&key)?;
        bail!("a queued delivery of an unknown tenant was dropped");
    };
    let id = &key[8..];
    let Some(plain) = store.open_value(&tenant, QUEUE, id, &value[split + 1..])? else {
        queue.remove(&key)?;
        bail!("a queued delivery does not decrypt; dropped");
    };
    let mut d: Delivery = serde_json::from_slice(&plain)?;
    let Some(sub) = get(store, &tenant, &d.subscription)? else {
        // Unsubscribed meanwhile.
        queue.remove(&key)?;
        return Ok(true);
    };
    d.attempts += 1;
    let _span = tracing::info_span!(
        "webhook_delivery",
        id = %d.id,
        tenant = %d.tenant,
        subscription = %d.subscription,
        event = %d.event,
        attempt = d.attempts
    )
    .entered();
    // The scheme is checked again against today's policy (the subscription may have been made
    // under a laxer one); the addresses are checked once, by the agent's resolver as it
    // connects.
    let attempt = check_scheme(&sub.url, policy).and_then(|_| send(agent, &sub, &d));
    let (status, error) = match attempt {
        Ok(s) => (Some(s), None),
        Err(e) => (None, Some(e)),
    };
    let delivered = status.is_some_and(|s| (200..300).contains(&s));
    let outcome = if delivered {
        "delivered"
    } else if d.attempts >= policy.max_attempts {
        "failed"
    } else {
        "retrying"
    };
    tracing::debug!(status, outcome, "delivery attempt");
    if !delivered {
        crate::prometheus::telemetry().webhook_failed(outcome);
    }
    log_attempt(store, &d, status, error, outcome)?;
    if !delivered && d.attempts < policy.max_attempts {
        let due = now_ns().saturating_add(backoff(policy, d.attempts).as_nanos() as u64);
        put_queued(store, due, &d)?;
    }
    queue.remove(&key)?;
    store.flush()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            max_attempts: 8,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            allow_http: false,
            allow_private: false,
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = policy();
        let waits: Vec<u64> = (1..=7).map(|a| backoff(&p, a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff(&p, 1000).as_secs(), 30);
    }

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification.
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn targets_are_checked() {
        let mut p = policy();
        assert!(check_url("https://hooks.example.com/veil", &p).is_ok());
        assert!(check_url("http://hooks.example.com/veil", &p).is_err());
        assert!(check_url("https://127.0.0.1:9000/", &p).is_err());
        assert!(check_url("https://10.1.2.3/", &p).is_err());
        assert!(check_url("https://[::1]/", &p).is_err());
        assert!(check_url("https://localhost/", &p).is_err());
        assert!(check_url("ftp://example.com/", &p).is_err());
        // The spellings that passed a check of the literal host.
        for url in [
            "https://[::ffff:127.0.0.1]/",
            "https://2130706433/",
            "https://127.1/",
            "https://localhost./",
            "https://100.64.0.1/",
            "https://0x7f.1/",
            "https://[64:ff9b::a00:1]/",
            "https://[2002:7f00:1::]/",
            "https://169.254.169.254/latest/meta-data/",
        ] {
            assert!(check_url(url, &p).is_err(), "{url} accepted");
        }
        assert!(check_url("https://8.8.8.8/hook", &p).is_ok());
        assert!(check_url("not a url", &p).is_err());
        p.allow_http = true;
        p.allow_private = true;
        assert!(check_url("http://127.0.0.1:9000/hook", &p).is_ok());
    }

    /// At delivery: a target that points inside however it is spelt (a subscription made
    /// before the policy changed, or a name that now resolves inside) gets no connection at all;
    /// the control, an agent that allows private targets, does reach the same listener.
    #[test]
    fn deliveries_never_connect_inside() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let strict = agent(&policy());
        for host in [
            "127.0.0.1",
            "127.1",
            "2130706433",
            "0x7f.1",
            "[::ffff:127.0.0.1]",
            "localhost",
        ] {
            let url = format!("http://{host}:{port}/hook");
            let refused = strict.post(&url).send("{}");
            let text = format!("{refused:?}");
            assert!(text.contains("address"), "{host}: {text}");
            std::thread::sleep(Duration::from_millis(20));
            assert!(listener.accept().is_err(), "{host}: a connection was made");
        }
        let mut open = policy();
        open.allow_private = true;
        let open = agent(&open);
        let url = format!("http://127.0.0.1:{port}/hook");
        std::thread::spawn(move || open.post(&url).send("{}"));
        let start = std::time::Instant::now();
        while listener.accept().is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "the control never connected"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
