// SPDX-License-Identifier: MIT OR Apache-2.0
//! The store: sled, one set of trees per tenant, every value sealed with the tenant's data key.
//!
//! Trees (`<t>` = tenant):
//! - `records/<t>`: `site␀device␀stream␀kind␀` + capture ns (BE) + seq (BE) → sealed record
//!   bytes, so a time range of one stream and kind is one range scan. A chained record is
//!   written here once, when its hash chain verifies, and is *valid* — served, counted — only
//!   once a checkpoint signed by a key trusted for its tenant vouches for it, i.e. while
//!   `seq <= signed_upto + 1` of its unit (the `+ 1` being that checkpoint); before, it is staged.
//!   A chain whose checkpoint is untrusted is moved to the quarantine.
//! - `index/<t>`: `device␀stream␀` + seq → tag + SHA-256 + where: `L` in records (+ its key),
//!   `T` deleted by retention, `Q` quarantined. The chain in sequence order: deduplication,
//!   verification and retention use it, and a deleted record's hash keeps the chain verifiable
//!   across the cut.
//! - `chains/<t>`: `device␀stream` → the unit's state (JSON): the chain state after the last
//!   record taken (the commit point), the site, and the state at the retention cut.
//! - `events/<t>`: integrity events; `quarantine`: what could not be taken, with the reason.
//! - `keys`: `dek/<t>` → data key wrapped by the KEK; `pin/<t>/<device>` and `owner/<key>` for
//!   trust on first use. `meta`: the KEK's fingerprint.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use veil_wire::{ChainState, Kind};

use crate::crypto::{DataKey, SecretKey};

/// Pseudo-tenant of the quarantine and of service-wide events (not a valid tenant name).
pub const SERVICE_TENANT: &str = ".service";
const KEK_FINGERPRINT: &[u8] = b"kek-fingerprint";

pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// `device␀stream␀`.
pub fn unit_prefix(device: &str, stream: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(device.len() + stream.len() + 2);
    k.extend_from_slice(device.as_bytes());
    k.push(0);
    k.extend_from_slice(stream.as_bytes());
    k.push(0);
    k
}

pub fn seq_key(device: &str, stream: &str, seq: u64) -> Vec<u8> {
    let mut k = unit_prefix(device, stream);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// `site␀device␀stream␀kind␀`.
pub fn series_prefix(site: &str, device: &str, stream: &str, kind: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(site.len() + device.len() + stream.len() + kind.len() + 4);
    for part in [site, device, stream, kind] {
        k.extend_from_slice(part.as_bytes());
        k.push(0);
    }
    k
}

pub fn record_key(
    site: &str,
    device: &str,
    stream: &str,
    kind: &str,
    capture_ns: u64,
    seq: u64,
) -> Vec<u8> {
    let mut k = series_prefix(site, device, stream, kind);
    k.extend_from_slice(&capture_ns.to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The parts of a records key: site, device, stream, kind, capture ns, seq.
/// The sequence number at the end of a records or index key.
pub fn key_seq(key: &[u8]) -> u64 {
    key.len()
        .checked_sub(8)
        .and_then(|at| key[at..].try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

/// Whether a stored record is valid (vouched for by a trusted checkpoint) given its unit's state.
pub fn is_valid(kind: Kind, seq: u64, state: Option<&UnitState>) -> bool {
    !kind.chained()
        || state.is_some_and(|s| s.chain.signed_upto > 0 && seq <= s.chain.signed_upto + 1)
}

pub fn parse_record_key(key: &[u8]) -> Option<(String, String, String, String, u64, u64)> {
    let mut parts = Vec::new();
    let mut rest = key;
    for _ in 0..4 {
        let end = rest.iter().position(|&b| b == 0)?;
        parts.push(String::from_utf8(rest[..end].to_vec()).ok()?);
        rest = &rest[end + 1..];
    }
    if rest.len() != 16 {
        return None;
    }
    let capture = u64::from_be_bytes(rest[..8].try_into().ok()?);
    let seq = u64::from_be_bytes(rest[8..].try_into().ok()?);
    let [site, device, stream, kind] = <[String; 4]>::try_from(parts).ok()?;
    Some((site, device, stream, kind, capture, seq))
}

/// An index entry: where a chained record is, and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Live([u8; 32], Vec<u8>),
    Deleted([u8; 32]),
    Quarantined([u8; 32]),
}

impl Entry {
    pub fn hash(&self) -> [u8; 32] {
        match self {
            Entry::Live(h, _) | Entry::Deleted(h) | Entry::Quarantined(h) => *h,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let (tag, rest): (u8, &[u8]) = match self {
            Entry::Live(_, key) => (b'L', key),
            Entry::Deleted(_) => (b'T', &[]),
            Entry::Quarantined(_) => (b'Q', &[]),
        };
        [&[tag][..], &self.hash(), rest].concat()
    }

    pub fn decode(bytes: &[u8]) -> Option<Entry> {
        if bytes.len() < 33 {
            return None;
        }
        let hash: [u8; 32] = bytes[1..33].try_into().ok()?;
        Some(match bytes[0] {
            b'L' => Entry::Live(hash, bytes[33..].to_vec()),
            b'T' => Entry::Deleted(hash),
            b'Q' => Entry::Quarantined(hash),
            _ => return None,
        })
    }
}

/// What the store keeps per chain unit (written by ingest only; the retention cut lives apart
/// in `cuts/<t>`, written by the sweeper only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnitState {
    pub site: String,
    /// After the last record taken: the commit point (acknowledged = `chain.next_seq - 1`).
    pub chain: ChainState,
    /// Where the device was re-keyed (`devices rekey`): from which checkpoint on its chain is
    /// signed by which key, so that `verify` follows the change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_changes: Vec<KeyChange>,
}

/// A re-key of a chain: checkpoints from `from_seq` on may be signed by `key` (hex).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyChange {
    pub from_seq: u64,
    pub key: String,
}

pub struct Store {
    pub path: PathBuf,
    db: sled::Db,
    keys: sled::Tree,
    kek: SecretKey,
    deks: Mutex<HashMap<String, DataKey>>,
    /// Open trees by name: opening one costs a lookup under sled's lock each time.
    trees: Mutex<HashMap<String, HashMap<String, sled::Tree>>>,
    counter: AtomicU64,
    /// What webhooks want to hear about, collected while `notify` is on (the API serves).
    notify: AtomicBool,
    notices: Mutex<Vec<crate::notice::Notice>>,
}

/// sled's lock error, said plainly.
fn open_error(path: &Path, e: sled::Error) -> anyhow::Error {
    let text = e.to_string();
    if text.contains("lock")
        || text.contains("WouldBlock")
        || text.contains("temporarily unavailable")
    {
        anyhow::anyhow!(
            "the store {} is in use by another process — a running `sink-service serve`? sled allows one \
             process: ask the running service instead (Zenoh get on veil-admin/sink/verify), or stop it",
            path.display()
        )
    } else {
        anyhow::anyhow!("opening the store {}: {text}", path.display())
    }
}

/// Opens the sled database. sled's I/O threads may hold the file lock for a moment after the
/// last handle of a previous opening (this process's or a stopped one's) is dropped: a lock
/// still held is retried for up to two seconds before it counts as another process's.
fn open_db(path: &Path) -> anyhow::Result<sled::Db> {
    let since = std::time::Instant::now();
    loop {
        let opened = sled::Config::new()
            .path(path)
            // No background flusher: ingest flushes at every group commit (and a flusher thread
            // would keep the file lock for a while after the store is dropped).
            .flush_every_ms(None)
            .open();
        match opened {
            Ok(db) => return Ok(db),
            Err(e) => {
                let e = open_error(path, e);
                if !e.to_string().contains("in use by another process")
                    || since.elapsed() > std::time::Duration::from_secs(2)
                {
                    return Err(e);
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

impl Store {
    /// Opens (or creates) the store with the KEK from `kek_file`. Finishes an interrupted KEK
    /// rotation (the new key waiting in `<kek_file>.new`).
    pub fn open(path: &Path, kek_file: &Path) -> anyhow::Result<Store> {
        // Before the store is created: a first run without a key says what to do.
        if !kek_file.exists() {
            anyhow::bail!(
                "no key-encryption key at {}: create one with `sink-service keys init` (same --config)",
                kek_file.display()
            );
        }
        let db = open_db(path)?;
        let meta = db.open_tree("meta")?;
        let keys = db.open_tree("keys")?;
        let mut kek = SecretKey::load(kek_file)?;
        match meta.get(KEK_FINGERPRINT)? {
            None => {
                meta.insert(KEK_FINGERPRINT, kek.fingerprint().as_bytes())?;
            }
            Some(f) if f.as_ref() == kek.fingerprint().as_bytes() => {}
            Some(f) => {
                let pending = pending_kek_path(kek_file);
                match SecretKey::load(&pending) {
                    Ok(new) if new.fingerprint().as_bytes() == f.as_ref() => {
                        std::fs::rename(&pending, kek_file)?;
                        kek = new;
                    }
                    _ => bail!(
                        "the key-encryption key {} (fingerprint {}) is not this store's (fingerprint {})",
                        kek_file.display(),
                        kek.fingerprint(),
                        String::from_utf8_lossy(&f)
                    ),
                }
            }
        }
        Ok(Store {
            path: path.to_owned(),
            db,
            keys,
            kek,
            deks: Mutex::new(HashMap::new()),
            trees: Mutex::new(HashMap::new()),
            counter: AtomicU64::new(0),
            notify: AtomicBool::new(false),
            notices: Mutex::new(Vec::new()),
        })
    }

    pub fn tree(&self, kind: &str, tenant: &str) -> anyhow::Result<sled::Tree> {
        let mut trees = self
            .trees
            .lock()
            .map_err(|_| anyhow::anyhow!("tree cache poisoned"))?;
        if let Some(t) = trees.get(kind).and_then(|by_tenant| by_tenant.get(tenant)) {
            return Ok(t.clone());
        }
        let tree = self.db.open_tree(format!("{kind}/{tenant}"))?;
        trees
            .entry(kind.to_owned())
            .or_default()
            .insert(tenant.to_owned(), tree.clone());
        Ok(tree)
    }

    /// Tenants that have data keys.
    pub fn tenants(&self) -> Vec<String> {
        self.keys
            .scan_prefix(b"dek/")
            .keys()
            .filter_map(|k| k.ok())
            .filter_map(|k| String::from_utf8(k[4..].to_vec()).ok())
            .filter(|t| t != SERVICE_TENANT)
            .collect()
    }

    /// The tenant's data key, created on first use.
    pub fn dek(&self, tenant: &str) -> anyhow::Result<DataKey> {
        let mut cache = self
            .deks
            .lock()
            .map_err(|_| anyhow::anyhow!("key cache poisoned"))?;
        if let Some(k) = cache.get(tenant) {
            return Ok(k.clone());
        }
        let name = format!("dek/{tenant}");
        let dek = match self.keys.get(&name)? {
            Some(wrapped) => self.kek.unwrap(tenant, &wrapped)?,
            None => {
                let dek = DataKey::generate()?;
                self.keys.insert(&name, self.kek.wrap(tenant, &dek)?)?;
                dek
            }
        };
        cache.insert(tenant.to_owned(), dek.clone());
        Ok(dek)
    }

    pub fn seal(
        &self,
        tenant: &str,
        tree: &str,
        key: &[u8],
        plaintext: &[u8],
    ) -> anyhow::Result<Vec<u8>> {
        self.dek(tenant)?.seal(tenant, tree, key, plaintext)
    }

    pub fn open_value(
        &self,
        tenant: &str,
        tree: &str,
        key: &[u8],
        sealed: &[u8],
    ) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self.dek(tenant)?.open(tenant, tree, key, sealed))
    }

    /// Inserts a sealed value.
    pub fn put(
        &self,
        tenant: &str,
        tree: &str,
        key: &[u8],
        plaintext: &[u8],
    ) -> anyhow::Result<()> {
        let sealed = self.seal(tenant, tree, key, plaintext)?;
        self.tree(tree, tenant)?.insert(key, sealed)?;
        Ok(())
    }

    /// Reads and opens a sealed value: `Ok(None)` when absent, an error naming it when it does
    /// not open (tampered with, or moved from another tenant, tree or key).
    pub fn get(&self, tenant: &str, tree: &str, key: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
        let Some(sealed) = self.tree(tree, tenant)?.get(key)? else {
            return Ok(None);
        };
        match self.open_value(tenant, tree, key, &sealed)? {
            Some(p) => Ok(Some(p)),
            None => bail!(
                "{tree}/{tenant}: a value does not decrypt (altered, or moved from another tenant or key)"
            ),
        }
    }

    pub fn unit_state(
        &self,
        tenant: &str,
        device: &str,
        stream: &str,
    ) -> anyhow::Result<Option<UnitState>> {
        let key = unit_prefix(device, stream);
        match self.tree("chains", tenant)?.get(&key[..key.len() - 1])? {
            Some(v) => Ok(Some(serde_json::from_slice(&v).context("chain state")?)),
            None => Ok(None),
        }
    }

    pub fn set_unit_state(
        &self,
        tenant: &str,
        device: &str,
        stream: &str,
        state: &UnitState,
    ) -> anyhow::Result<()> {
        let key = unit_prefix(device, stream);
        self.tree("chains", tenant)?
            .insert(&key[..key.len() - 1], serde_json::to_vec(state)?)?;
        Ok(())
    }

    /// The chain state just before the oldest record still indexed (the retention cut).
    pub fn cut(&self, tenant: &str, device: &str, stream: &str) -> anyhow::Result<ChainState> {
        let key = unit_prefix(device, stream);
        match self.tree("cuts", tenant)?.get(&key[..key.len() - 1])? {
            Some(v) => Ok(serde_json::from_slice(&v).context("cut state")?),
            None => Ok(ChainState::default()),
        }
    }

    pub fn set_cut(
        &self,
        tenant: &str,
        device: &str,
        stream: &str,
        cut: &ChainState,
    ) -> anyhow::Result<()> {
        let key = unit_prefix(device, stream);
        self.tree("cuts", tenant)?
            .insert(&key[..key.len() - 1], serde_json::to_vec(cut)?)?;
        Ok(())
    }

    /// Every chain unit of a tenant: (device, stream, state).
    pub fn units(&self, tenant: &str) -> anyhow::Result<Vec<(String, String, UnitState)>> {
        let mut out = Vec::new();
        for item in self.tree("chains", tenant)?.iter() {
            let (k, v) = item?;
            let text = String::from_utf8(k.to_vec()).context("unit key")?;
            let (device, stream) = text.split_once('\0').context("unit key")?;
            out.push((
                device.to_owned(),
                stream.to_owned(),
                serde_json::from_slice(&v)?,
            ));
        }
        Ok(out)
    }

    fn unique_key(&self) -> Vec<u8> {
        let mut k = now_ns().to_be_bytes().to_vec();
        k.extend_from_slice(&self.counter.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        k
    }

    /// Stores an integrity event under the tenant (or the service) and logs it.
    pub fn integrity_event(&self, tenant: &str, event: serde_json::Value) -> anyhow::Result<()> {
        tracing::warn!(tenant, %event, "integrity event");
        let key = self.unique_key();
        self.put(tenant, "events", &key, &serde_json::to_vec(&event)?)?;
        self.notice(crate::notice::Notice::Integrity {
            tenant: tenant.to_owned(),
            event,
        });
        Ok(())
    }

    /// Starts collecting notices for the webhooks.
    pub fn set_notify(&self, on: bool) {
        self.notify.store(on, Ordering::Release);
    }

    pub fn notice(&self, notice: crate::notice::Notice) {
        if self.notify.load(Ordering::Acquire)
            && let Ok(mut n) = self.notices.lock()
        {
            n.push(notice);
        }
    }

    pub fn take_notices(&self) -> Vec<crate::notice::Notice> {
        self.notices
            .lock()
            .map(|mut n| std::mem::take(&mut *n))
            .unwrap_or_default()
    }

    /// Keeps what could not be taken, with the reason (sealed with the service's key).
    pub fn quarantine(
        &self,
        reason: &str,
        key_expr: &str,
        payload: &[u8],
        max: usize,
    ) -> anyhow::Result<()> {
        let kept = &payload[..payload.len().min(max)];
        let value = serde_json::json!({
            "reason": reason,
            "key_expr": key_expr,
            "received": veil_wire::record::format_time(now_ns()),
            "bytes": payload.len(),
            "payload": String::from_utf8_lossy(kept),
        });
        let key = self.unique_key();
        self.put(
            SERVICE_TENANT,
            "quarantine",
            &key,
            &serde_json::to_vec(&value)?,
        )
    }

    pub fn quarantined(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        let tree = self.tree("quarantine", SERVICE_TENANT)?;
        let mut out = Vec::new();
        for item in tree.iter() {
            let (k, _) = item?;
            if let Some(v) = self.get(SERVICE_TENANT, "quarantine", &k)? {
                out.push(serde_json::from_slice(&v)?);
            }
        }
        Ok(out)
    }

    pub fn events(&self, tenant: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let tree = self.tree("events", tenant)?;
        let mut out = Vec::new();
        for item in tree.iter() {
            let (k, _) = item?;
            if let Some(v) = self.get(tenant, "events", &k)? {
                out.push(serde_json::from_slice(&v)?);
            }
        }
        Ok(out)
    }

    /// Trust on first use: the key pinned for this device, pinning `key` when there is none.
    /// Errors when the key already belongs to another tenant or device.
    pub fn pin_key(
        &self,
        tenant: &str,
        device: &str,
        key: &str,
    ) -> anyhow::Result<Result<(), String>> {
        let owner = format!("owner/{key}");
        let pin = format!("pin/{tenant}/{device}");
        let me = format!("{tenant}/{device}");
        if let Some(o) = self.keys.get(&owner)? {
            return Ok(if o.as_ref() == me.as_bytes() {
                Ok(())
            } else {
                Err(format!(
                    "signed by the key of {}",
                    String::from_utf8_lossy(&o)
                ))
            });
        }
        if let Some(k) = self.keys.get(&pin)? {
            return Ok(Err(format!(
                "signed by another key than the one pinned for {me} ({})",
                String::from_utf8_lossy(&k)
            )));
        }
        self.keys.insert(owner, me.as_bytes())?;
        self.keys.insert(pin, key.as_bytes())?;
        Ok(Ok(()))
    }

    /// Who a key belongs to (trust on first use), if anyone.
    pub fn key_owner(&self, key: &str) -> Option<String> {
        let v = self.keys.get(format!("owner/{key}")).ok()??;
        String::from_utf8(v.to_vec()).ok()
    }

    /// Makes everything so far durable.
    pub fn flush(&self) -> anyhow::Result<()> {
        self.db.flush()?;
        Ok(())
    }

    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    /// Re-wraps every data key under `new` and records its fingerprint, in one batch; the
    /// records themselves are not touched.
    pub fn rewrap(&self, new: &SecretKey) -> anyhow::Result<usize> {
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for item in self.keys.scan_prefix(b"dek/") {
            let (k, wrapped) = item?;
            let tenant = String::from_utf8(k[4..].to_vec()).context("tenant name")?;
            let dek = self.kek.unwrap(&tenant, &wrapped)?;
            batch.insert(k, new.wrap(&tenant, &dek)?);
            n += 1;
        }
        self.keys.apply_batch(batch)?;
        self.db
            .open_tree("meta")?
            .insert(KEK_FINGERPRINT, new.fingerprint().as_bytes())?;
        self.db.flush()?;
        Ok(n)
    }

    /// The raw database (backup, restore, and tests that tamper with it).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    pub fn kek(&self) -> &SecretKey {
        &self.kek
    }
}

pub fn pending_kek_path(kek_file: &Path) -> PathBuf {
    let mut p = kek_file.as_os_str().to_owned();
    p.push(".new");
    PathBuf::from(p)
}

/// The kinds a records key can hold.
pub fn kind_of(text: &str) -> Option<Kind> {
    Kind::parse(text)
}
