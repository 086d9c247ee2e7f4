// SPDX-License-Identifier: MIT OR Apache-2.0
//! The publisher thread: sends spooled records in order over Zenoh (reliable, congestion
//! control Block), listens for the store's acknowledgements, drops acknowledged records from
//! the spool and, when acknowledgements stop coming, sends again from the first unacknowledged
//! record. Detections go out best-effort (congestion control Drop) and are never spooled.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use veil_wire::{Ack, Kind, Names, Record};
use zenoh::Wait;
use zenoh::qos::CongestionControl;

use crate::spool::Spool;

/// The element's default when no configuration file is given: a client of a sink service (or
/// router) on loopback, no multicast scouting.
pub const DEFAULT_ENDPOINT: &str = "tcp/127.0.0.1:7447";
/// Detections waiting to be sent beyond this are dropped (oldest first): they are best-effort.
const MAX_DETECTIONS_BACKLOG: usize = 1024;

pub fn load_config(path: Option<&Path>) -> Result<zenoh::Config, String> {
    let mut config = match path {
        Some(p) => zenoh::Config::from_file(p)
            .map_err(|e| format!("Zenoh configuration {}: {e}", p.display()))?,
        None => {
            let mut c = zenoh::Config::default();
            for (key, value) in [
                ("mode", "\"client\"".to_string()),
                ("connect/endpoints", format!("[\"{DEFAULT_ENDPOINT}\"]")),
                ("scouting/multicast/enabled", "false".into()),
            ] {
                c.insert_json5(key, &value)
                    .map_err(|e| format!("default Zenoh configuration {key}: {e}"))?;
            }
            c
        }
    };
    // The device must start (and spool) while the store is down: never fail the open for it,
    // keep retrying in the background instead.
    config
        .insert_json5("connect/exit_on_failure", "false")
        .map_err(|e| format!("Zenoh configuration: {e}"))?;
    Ok(config)
}

/// State shared between the element, the writer's sink and the publisher thread.
#[derive(Default)]
pub struct Shared {
    /// Highest acknowledgement received (applied to the spool by the publisher thread).
    ack_received: AtomicU64,
    /// Highest acknowledgement applied to the spool.
    acked: AtomicU64,
    stop: AtomicBool,
    wake: Mutex<bool>,
    cv: Condvar,
    detections: Mutex<VecDeque<Record>>,
    pub resends: AtomicU64,
    pub detections_dropped: AtomicU64,
    /// The store's public keys (the current one, and the next during a rotation): when set,
    /// only acknowledgements one of them signed for a record this spool holds (same hash)
    /// count.
    store_keys: Option<Vec<veil_wire::VerifyingKey>>,
    /// Acknowledgements refused (unsigned, another key, another record, never queued, garbage).
    pub forged_acks: AtomicU64,
    forged_reason: Mutex<Option<&'static str>>,
}

/// The acknowledged record's hash, if one of `keys` signed `ack` for `names`; otherwise the
/// first key's refusal (all keys refuse for the same reasons: unsigned, another key, garbage).
pub fn verify_by_any<'a>(
    ack: &'a Ack,
    names: &Names,
    keys: &[veil_wire::VerifyingKey],
) -> Result<&'a str, &'static str> {
    let mut refusal = "no store key";
    for (i, key) in keys.iter().enumerate() {
        match ack.verify(names, key) {
            Ok(hash) => return Ok(hash),
            Err(e) if i == 0 => refusal = e,
            Err(_) => {}
        }
    }
    Err(refusal)
}

/// Parses `store-public-key`: one key, or several separated by commas or spaces (a rotation:
/// the current key and the next), each 64 hex digits.
///
/// Errors: a key that is not an Ed25519 public key, or no key at all.
pub fn parse_store_keys(text: &str) -> Result<Vec<veil_wire::VerifyingKey>, String> {
    let keys = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|k| !k.is_empty())
        .map(veil_wire::checkpoint::parse_public_key)
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err("no key given".into());
    }
    Ok(keys)
}

impl Shared {
    /// Starts from what the spool says was acknowledged before.
    pub fn new(acked: u64, store_keys: Option<Vec<veil_wire::VerifyingKey>>) -> Self {
        let shared = Shared {
            store_keys,
            ..Shared::default()
        };
        shared.acked.store(acked, Ordering::Release);
        shared
    }

    /// Whether an acknowledgement may drop records from `spool`: without store keys, any
    /// (the development default, warned about at start); with them, only one a store key
    /// signed for this chain unit whose hash is the spooled record's at that sequence number.
    pub fn check_ack(&self, ack: &Ack, names: &Names, spool: &Spool) -> Result<(), &'static str> {
        let Some(keys) = &self.store_keys else {
            return Ok(());
        };
        let hash = verify_by_any(ack, names, keys)?;
        if ack.seq <= spool.acked() {
            return Ok(());
        }
        let spooled = spool
            .get(ack.seq)
            .ok()
            .flatten()
            .ok_or("acknowledges a record this device never queued")?;
        match Record::from_slice(&spooled.1) {
            Ok(r) if r.hash == hash => Ok(()),
            _ => Err("names another record than the one spooled at that sequence number"),
        }
    }

    fn refuse_ack(&self, reason: &'static str) {
        self.forged_acks.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut r) = self.forged_reason.lock() {
            r.get_or_insert(reason);
        }
        self.wake();
    }

    pub fn wake(&self) {
        if let Ok(mut w) = self.wake.lock() {
            *w = true;
            self.cv.notify_all();
        }
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake();
    }

    pub fn push_detections(&self, records: Vec<Record>) {
        if let Ok(mut q) = self.detections.lock() {
            for r in records {
                if q.len() >= MAX_DETECTIONS_BACKLOG {
                    q.pop_front();
                    self.detections_dropped.fetch_add(1, Ordering::Relaxed);
                }
                q.push_back(r);
            }
        }
        self.wake();
    }

    fn on_ack(&self, seq: u64) {
        self.ack_received.fetch_max(seq, Ordering::AcqRel);
        self.wake();
    }

    /// Waits until the store acknowledged `seq` (true) or `timeout` passed (false).
    pub fn wait_acked(&self, seq: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let Ok(mut guard) = self.wake.lock() else {
            return false;
        };
        loop {
            if self.acked.load(Ordering::Acquire) >= seq {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stop.load(Ordering::Acquire) {
                return false;
            }
            match self
                .cv
                .wait_timeout(guard, left.min(Duration::from_millis(50)))
            {
                Ok((g, _)) => guard = g,
                Err(_) => return false,
            }
        }
    }

    pub fn sleep(&self, timeout: Duration) {
        if let Ok(guard) = self.wake.lock()
            && let Ok((mut g, _)) = self.cv.wait_timeout_while(guard, timeout, |woken| !*woken)
        {
            *g = false;
        }
    }
}

#[derive(Debug, Clone)]
pub struct PublisherSettings {
    /// Without acknowledgement progress for this long, send again from the first
    /// unacknowledged record.
    pub ack_timeout: Duration,
    /// At most this many records sent and not yet acknowledged.
    pub window: u64,
}

pub trait PublisherEvents: Send {
    fn acked(&self, seq: u64);
    /// No session yet: the store (or router) cannot be reached. Records keep being spooled.
    fn unreachable(&self, reason: String);
    fn connected(&self);
    fn error(&self, message: String);
    /// The first refused acknowledgement (said once; the count is in the EOS message).
    fn forged(&self, reason: &str);
}

/// Opens the Zenoh session, retrying until it opens or `shared` is stopped: a device starts,
/// and spools, while its store is down (a Zenoh client's open fails when nothing answers).
pub fn connect(
    config: &zenoh::Config,
    shared: &Shared,
    events: &dyn PublisherEvents,
) -> Option<zenoh::Session> {
    let mut backoff = Duration::from_millis(250);
    let mut reported = false;
    loop {
        match zenoh::open(config.clone()).wait() {
            Ok(session) => {
                if reported {
                    events.connected();
                }
                return Some(session);
            }
            Err(e) => {
                if !reported {
                    events.unreachable(e.to_string());
                    reported = true;
                }
            }
        }
        shared.sleep(backoff);
        if shared.stop.load(Ordering::Acquire) {
            return None;
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

pub struct Publisher {
    session: zenoh::Session,
    names: Names,
    spool: Arc<Spool>,
    shared: Arc<Shared>,
    settings: PublisherSettings,
    events: Box<dyn PublisherEvents>,
    publishers: HashMap<Kind, zenoh::pubsub::Publisher<'static>>,
    _ack_subscriber: zenoh::pubsub::Subscriber<()>,
}

impl Publisher {
    pub fn new(
        session: zenoh::Session,
        names: Names,
        spool: Arc<Spool>,
        shared: Arc<Shared>,
        settings: PublisherSettings,
        events: Box<dyn PublisherEvents>,
    ) -> Result<Publisher, String> {
        let (on_ack, ack_names, ack_spool) = (shared.clone(), names.clone(), spool.clone());
        let ack_subscriber = session
            .declare_subscriber(names.ack_key())
            .callback(move |sample| {
                let Some(ack) = Ack::from_slice(&sample.payload().to_bytes()) else {
                    on_ack.refuse_ack("not an acknowledgement");
                    return;
                };
                match on_ack.check_ack(&ack, &ack_names, &ack_spool) {
                    Ok(()) => on_ack.on_ack(ack.seq),
                    Err(reason) => on_ack.refuse_ack(reason),
                }
            })
            .wait()
            .map_err(|e| format!("subscribing to {}: {e}", names.ack_key()))?;
        Ok(Publisher {
            session,
            names,
            spool,
            shared,
            settings,
            events,
            publishers: HashMap::new(),
            _ack_subscriber: ack_subscriber,
        })
    }

    fn publisher(&mut self, kind: Kind) -> Result<&zenoh::pubsub::Publisher<'static>, String> {
        if !self.publishers.contains_key(&kind) {
            let key = self.names.record_key(kind.as_str());
            let congestion = if kind.chained() {
                CongestionControl::Block
            } else {
                CongestionControl::Drop
            };
            let p = self
                .session
                .declare_publisher(key.clone())
                .congestion_control(congestion)
                .encoding(zenoh::bytes::Encoding::APPLICATION_JSON)
                .wait()
                .map_err(|e| format!("declaring a publisher on {key}: {e}"))?;
            self.publishers.insert(kind, p);
        }
        self.publishers
            .get(&kind)
            .ok_or_else(|| "publisher vanished".to_string())
    }

    fn put(&mut self, kind: Kind, bytes: Vec<u8>) {
        let result = self
            .publisher(kind)
            .and_then(|p| p.put(bytes).wait().map_err(|e| e.to_string()));
        if let Err(e) = result {
            self.events
                .error(format!("publishing a {} record: {e}", kind.as_str()));
        }
    }

    fn apply_acks(&mut self, last_progress: &mut Instant) {
        let received = self.shared.ack_received.load(Ordering::Acquire);
        match self.spool.ack(received) {
            Ok(true) => {
                self.shared.acked.store(received, Ordering::Release);
                self.shared.wake();
                *last_progress = Instant::now();
                self.events.acked(received);
            }
            Ok(false) => {}
            Err(e) => self.events.error(e.to_string()),
        }
    }

    pub fn run(mut self) {
        let mut next = self.spool.acked() + 1;
        let mut last_progress = Instant::now();
        let mut forged_said = false;
        while !self.shared.stop.load(Ordering::Acquire) {
            if !forged_said && self.shared.forged_acks.load(Ordering::Acquire) > 0 {
                forged_said = true;
                let reason = self
                    .shared
                    .forged_reason
                    .lock()
                    .ok()
                    .and_then(|r| *r)
                    .unwrap_or("refused");
                self.events.forged(reason);
            }
            self.apply_acks(&mut last_progress);
            let acked = self.spool.acked();
            next = next.max(acked + 1);
            if next > acked + 1 && last_progress.elapsed() >= self.settings.ack_timeout {
                // Sent, never acknowledged: the store was away or lost them. Again, in order.
                next = acked + 1;
                last_progress = Instant::now();
                self.shared.resends.fetch_add(1, Ordering::Relaxed);
            }
            while next <= self.spool.last_seq()
                && next - acked <= self.settings.window
                && !self.shared.stop.load(Ordering::Acquire)
            {
                if next == acked + 1 {
                    last_progress = Instant::now();
                }
                match self.spool.get(next) {
                    Ok(Some((kind, bytes))) => self.put(kind, bytes),
                    // Acknowledged meanwhile.
                    Ok(None) => {}
                    Err(e) => self.events.error(e.to_string()),
                }
                next += 1;
            }
            let detections: Vec<Record> = self
                .shared
                .detections
                .lock()
                .map(|mut q| q.drain(..).collect())
                .unwrap_or_default();
            for r in detections {
                self.put(Kind::Detections, r.to_vec());
            }
            self.shared.sleep(Duration::from_millis(20));
        }
        self.apply_acks(&mut last_progress);
        drop(self.publishers);
        let _ = self.session.close().wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_wire::DeviceKey;

    /// During a rotation a device holds both store keys: an acknowledgement of either counts,
    /// one of a third key does not; once only the new key is configured, the old one's do not.
    #[test]
    fn acknowledgements_verify_against_any_configured_store_key() {
        let names = Names::new("acme", "hq", "cam-1", "door").unwrap();
        let (old, new, rogue) = (
            DeviceKey::from_seed([1; 32]),
            DeviceKey::from_seed([2; 32]),
            DeviceKey::from_seed([3; 32]),
        );
        let hash = "ab".repeat(32);
        let both =
            parse_store_keys(&format!("{}, {}", old.public_hex(), new.public_hex())).unwrap();
        for signer in [&old, &new] {
            let ack = signer.sign_ack(&names, 5, &hash);
            assert_eq!(verify_by_any(&ack, &names, &both), Ok(hash.as_str()));
        }
        assert!(verify_by_any(&rogue.sign_ack(&names, 5, &hash), &names, &both).is_err());
        let only_new = parse_store_keys(&new.public_hex()).unwrap();
        assert!(verify_by_any(&old.sign_ack(&names, 5, &hash), &names, &only_new).is_err());
        assert!(parse_store_keys(" , ").is_err());
        assert!(parse_store_keys(&format!("{},nothex", new.public_hex())).is_err());
    }
}
