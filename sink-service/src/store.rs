// SPDX-License-Identifier: MIT OR Apache-2.0
//! The store: sled, one set of trees per tenant, every value sealed with the tenant's data key,
//! and no tenant, site, device or stream spelled out on disk (layout 2).
//!
//! Names are opaque: a tenant's trees are named by its *tenant id* and a chain unit (device +
//! stream) by its *unit id*, each the first 16 bytes of HMAC-SHA256 under the store's names key
//! (a random key wrapped by the KEK like a data key, `keys` entry `dek/.names`) over a label and
//! the names. The names themselves are only in sealed values: the tenant registry
//! (`tenants/.service`: tenant id → name) and each unit's state (`chains/<t>`: unit id → sealed
//! state with device, stream and site). A store of layout 1 (names in tree names and keys) is
//! migrated when it is opened ([`crate::migrate`]).
//!
//! Trees (`<t>` = tenant id, `<u>` = unit id):
//! - `records/<t>`: `<u>` + `kind␀` + capture ns (BE) + seq (BE) → sealed record
//!   bytes, so a time range of one stream and kind is one range scan. A chained record is
//!   written here once, when its hash chain verifies, and is *valid* — served, counted — only
//!   once a checkpoint signed by a key trusted for its tenant vouches for it, i.e. while
//!   `seq <= signed_upto + 1` of its unit (the `+ 1` being that checkpoint); before, it is staged.
//!   A chain whose checkpoint is untrusted is moved to the quarantine.
//! - `index/<t>`: `<u>` + seq → tag + SHA-256 + where: `L` in records (+ its key),
//!   `T` deleted by retention, `Q` quarantined. The chain in sequence order: deduplication,
//!   verification and retention use it, and a deleted record's hash keeps the chain verifiable
//!   across the cut.
//! - `chains/<t>`: `<u>` → the unit's state (sealed JSON): its names, the chain state after the
//!   last record taken (the commit point), the site; `cuts/<t>`: `<u>` → the state at the
//!   retention cut (sealed).
//! - `events/<t>`: integrity events; `quarantine`: what could not be taken, with the reason.
//! - `keys`: `dek/<t>` → data key wrapped by the KEK (bound to the tenant id), `dek/.names` the
//!   names key. `pins/.service`: `pin/<device id>` and `owner/<key>` (sealed) for trust on first
//!   use. `meta`: the KEK's fingerprint and the layout.

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
const STORE_ID: &[u8] = b"store-id";
/// `meta` entry: the on-disk layout (absent: layout 1, names spelled out).
pub const LAYOUT: &[u8] = b"layout";
pub const LAYOUT_VERSION: &[u8] = b"2";
/// The `keys` entry of the names key (wrapped like a data key, bound to `.names`).
const NAMES_KEY: &str = ".names";
/// Tree of the tenant registry (under the service's pseudo-tenant).
const TENANTS: &str = "tenants";
/// Tree of the trust-on-first-use pins (sealed; under the service's pseudo-tenant):
/// `pin/<device id>` → key, `owner/<key>` → `tenant/device`.
pub(crate) const PINS: &str = "pins";

/// A chain unit's opaque id: 16 bytes of HMAC-SHA256(names key, `unit␀tenant␀device␀stream`).
pub type UnitId = [u8; 16];

pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// `index` key: unit id ‖ seq (BE).
pub fn seq_key(unit: &UnitId, seq: u64) -> Vec<u8> {
    [&unit[..], &seq.to_be_bytes()].concat()
}

/// `records` key prefix of one series: unit id ‖ `kind␀`.
pub fn series_prefix(unit: &UnitId, kind: &str) -> Vec<u8> {
    [&unit[..], kind.as_bytes(), &[0]].concat()
}

/// `records` key: unit id ‖ `kind␀` ‖ capture ns (BE) ‖ seq (BE).
pub fn record_key(unit: &UnitId, kind: &str, capture_ns: u64, seq: u64) -> Vec<u8> {
    [
        &series_prefix(unit, kind)[..],
        &capture_ns.to_be_bytes(),
        &seq.to_be_bytes(),
    ]
    .concat()
}

/// The parts of a `records` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordKey {
    pub unit: UnitId,
    pub kind: String,
    pub capture_ns: u64,
    pub seq: u64,
}

/// Splits a `records` key; `None` when it is not one.
pub fn parse_record_key(key: &[u8]) -> Option<RecordKey> {
    let unit: UnitId = key.get(..16)?.try_into().ok()?;
    let rest = &key[16..];
    let end = rest.iter().position(|&b| b == 0)?;
    let kind = String::from_utf8(rest[..end].to_vec()).ok()?;
    let tail = &rest[end + 1..];
    if tail.len() != 16 {
        return None;
    }
    Some(RecordKey {
        unit,
        kind,
        capture_ns: u64::from_be_bytes(tail[..8].try_into().ok()?),
        seq: u64::from_be_bytes(tail[8..].try_into().ok()?),
    })
}

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

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What the store keeps per chain unit (written by ingest only; the retention cut lives apart
/// in `cuts/<t>`, written by the sweeper only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnitState {
    /// The unit's names (its key is opaque).
    #[serde(default)]
    pub device: String,
    #[serde(default)]
    pub stream: String,
    /// The chain epoch (0: the device's first chain; see [`Store::unit_id`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub epoch: u32,
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
    /// [`Store::id`].
    id: String,
    db: sled::Db,
    keys: sled::Tree,
    kek: SecretKey,
    /// HMAC key of the opaque names.
    names: DataKey,
    /// Tenant ids already registered (tenant → id).
    tenant_ids: Mutex<HashMap<String, String>>,
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
pub(crate) fn open_db(path: &Path) -> anyhow::Result<sled::Db> {
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
        crate::migrate::recover(path)?;
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
        match meta.get(LAYOUT)? {
            Some(v) if v.as_ref() == LAYOUT_VERSION => {}
            Some(v) => bail!(
                "the store {} has layout {}, which this version does not know",
                path.display(),
                String::from_utf8_lossy(&v)
            ),
            None if crate::migrate::holds_data(&db)? => {
                // Layout 1: names spelled out. Rewritten into a fresh database, then reopened.
                drop((meta, keys, db));
                crate::migrate::v1_to_v2(path, &kek)?;
                return Store::open(path, kek_file);
            }
            None => {
                meta.insert(LAYOUT, LAYOUT_VERSION)?;
            }
        }
        Store::finish(path, db, keys, kek)
    }

    /// A new, empty store of layout 2 under `kek` given in memory (the migration's target: the
    /// KEK is never copied to a file beside the store).
    pub(crate) fn create_with_kek(path: &Path, kek: &SecretKey) -> anyhow::Result<Store> {
        let db = open_db(path)?;
        let meta = db.open_tree("meta")?;
        anyhow::ensure!(
            !crate::migrate::holds_data(&db)?,
            "{} is not empty",
            path.display()
        );
        meta.insert(KEK_FINGERPRINT, kek.fingerprint().as_bytes())?;
        meta.insert(LAYOUT, LAYOUT_VERSION)?;
        let keys = db.open_tree("keys")?;
        Store::finish(path, db, keys, SecretKey(kek.0))
    }

    /// The names key (made on first use) and the handle, on a database of layout 2.
    fn finish(
        path: &Path,
        db: sled::Db,
        keys: sled::Tree,
        kek: SecretKey,
    ) -> anyhow::Result<Store> {
        let names = match keys.get(format!("dek/{NAMES_KEY}"))? {
            Some(wrapped) => kek.unwrap(NAMES_KEY, &wrapped)?,
            None => {
                let names = DataKey::generate()?;
                keys.insert(format!("dek/{NAMES_KEY}"), kek.wrap(NAMES_KEY, &names)?)?;
                db.flush()?;
                names
            }
        };
        // The store's own name, kept in `meta` (never in a backup): a store restored from
        // another's backup, or a replica seeded from its owner's, gets its own.
        let meta = db.open_tree("meta")?;
        let id = match meta.get(STORE_ID)? {
            Some(id) => hex::encode(id),
            None => {
                let mut id = [0u8; 16];
                getrandom::fill(&mut id).map_err(|e| anyhow::anyhow!("no random numbers: {e}"))?;
                meta.insert(STORE_ID, id.as_slice())?;
                db.flush()?;
                hex::encode(id)
            }
        };
        Ok(Store {
            path: path.to_owned(),
            id,
            db,
            keys,
            kek,
            names,
            tenant_ids: Mutex::new(HashMap::new()),
            deks: Mutex::new(HashMap::new()),
            trees: Mutex::new(HashMap::new()),
            counter: AtomicU64::new(0),
            notify: AtomicBool::new(false),
            notices: Mutex::new(Vec::new()),
        })
    }

    /// This store's name among the services sharing a Zenoh key space: 32 hex digits, random,
    /// made when the store is created and kept in its `meta` tree (stable across restarts,
    /// different for every store even when two share a key file directory and with it an
    /// acknowledgement key; not carried by backups, so a restored copy gets its own).
    pub fn id(&self) -> String {
        self.id.clone()
    }

    /// 16 bytes of HMAC-SHA256(names key, `label␀part␀part…`): an opaque name.
    fn opaque(&self, label: &str, parts: &[&str]) -> [u8; 16] {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.names.0)
            .expect("HMAC takes any key length");
        mac.update(label.as_bytes());
        for part in parts {
            mac.update(&[0]);
            mac.update(part.as_bytes());
        }
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    /// The tenant's id in tree names (32 hex digits; the service's pseudo-tenant is itself).
    pub fn tenant_id(&self, tenant: &str) -> String {
        if tenant == SERVICE_TENANT {
            return tenant.to_owned();
        }
        if let Some(id) = self
            .tenant_ids
            .lock()
            .ok()
            .and_then(|m| m.get(tenant).cloned())
        {
            return id;
        }
        let id = hex::encode(self.opaque("tenant", &[tenant]));
        if let Ok(mut m) = self.tenant_ids.lock() {
            m.insert(tenant.to_owned(), id.clone());
        }
        id
    }

    /// A chain unit's id: device and stream of a tenant, in a chain epoch (0: the device's
    /// first chain; one more at each `devices rekey --new-chain`).
    pub fn unit_id(&self, tenant: &str, device: &str, stream: &str, epoch: u32) -> UnitId {
        if epoch == 0 {
            self.opaque("unit", &[tenant, device, stream])
        } else {
            self.opaque("unit", &[tenant, device, stream, &epoch.to_string()])
        }
    }

    /// The id of the unit a state belongs to.
    pub fn unit_of(&self, tenant: &str, state: &UnitState) -> UnitId {
        self.unit_id(tenant, &state.device, &state.stream, state.epoch)
    }

    /// A device's id (enrollment and trust-on-first-use keys).
    pub fn device_id(&self, tenant: &str, device: &str) -> [u8; 16] {
        self.opaque("device", &[tenant, device])
    }

    pub fn tree(&self, kind: &str, tenant: &str) -> anyhow::Result<sled::Tree> {
        let mut trees = self
            .trees
            .lock()
            .map_err(|_| anyhow::anyhow!("tree cache poisoned"))?;
        if let Some(t) = trees.get(kind).and_then(|by_tenant| by_tenant.get(tenant)) {
            return Ok(t.clone());
        }
        let tree = self
            .db
            .open_tree(format!("{kind}/{}", self.tenant_id(tenant)))?;
        trees
            .entry(kind.to_owned())
            .or_default()
            .insert(tenant.to_owned(), tree.clone());
        Ok(tree)
    }

    /// Tenants that have data keys (from the sealed tenant registry), by name. An entry that
    /// does not open is logged as an error (and `verify` reports it): the tenant would
    /// otherwise vanish silently.
    pub fn tenants(&self) -> Vec<String> {
        match self.registered_tenants() {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("the tenant registry: {e:#}");
                Vec::new()
            }
        }
    }

    /// [`Store::tenants`], failing on an entry that does not open.
    pub fn registered_tenants(&self) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        for key in self.tree(TENANTS, SERVICE_TENANT)?.iter().keys() {
            let key = key?;
            let name = self
                .get(SERVICE_TENANT, TENANTS, &key)?
                .context("a tenant registry entry vanished")?;
            out.push(String::from_utf8(name).context("a tenant name")?);
        }
        out.sort();
        Ok(out)
    }

    /// Whether the tenant has a data key (is registered); asking creates nothing.
    pub fn knows_tenant(&self, tenant: &str) -> anyhow::Result<bool> {
        Ok(tenant == SERVICE_TENANT
            || self
                .tree(TENANTS, SERVICE_TENANT)?
                .contains_key(self.tenant_id(tenant).as_bytes())?)
    }

    /// An opaque id of a device's public key (the reverse indexes of enrollment and trust on
    /// first use are keyed by it).
    pub fn key_id(&self, public_key: &str) -> String {
        hex::encode(self.opaque("public-key", &[public_key]))
    }

    /// A tenant's name by its id, if it is registered.
    pub fn tenant_by_id(&self, id: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .get(SERVICE_TENANT, TENANTS, id.as_bytes())?
            .and_then(|name| String::from_utf8(name).ok()))
    }

    /// The tenant's data key, created on first use (and the tenant registered).
    pub fn dek(&self, tenant: &str) -> anyhow::Result<DataKey> {
        let cached = self
            .deks
            .lock()
            .map_err(|_| anyhow::anyhow!("key cache poisoned"))?
            .get(tenant)
            .cloned();
        if let Some(k) = cached {
            return Ok(k);
        }
        let id = self.tenant_id(tenant);
        let name = format!("dek/{id}");
        let dek = match self.keys.get(&name)? {
            Some(wrapped) => self.kek.unwrap(&id, &wrapped)?,
            None => {
                let dek = DataKey::generate()?;
                match self.keys.compare_and_swap(
                    &name,
                    None as Option<&[u8]>,
                    Some(self.kek.wrap(&id, &dek)?),
                )? {
                    Ok(()) => dek,
                    // Another thread made it first: that one.
                    Err(e) => self
                        .kek
                        .unwrap(&id, &e.current.context("a data key vanished while made")?)?,
                }
            }
        };
        // Registered before it is cached: a failed registration is retried at the next use.
        if tenant != SERVICE_TENANT
            && !self
                .tree(TENANTS, SERVICE_TENANT)?
                .contains_key(id.as_bytes())?
        {
            self.put(SERVICE_TENANT, TENANTS, id.as_bytes(), tenant.as_bytes())?;
        }
        self.deks
            .lock()
            .map_err(|_| anyhow::anyhow!("key cache poisoned"))?
            .insert(tenant.to_owned(), dek.clone());
        Ok(dek)
    }

    /// Makes `dek` the tenant's data key (a migration keeps each tenant's key).
    pub(crate) fn adopt_dek(&self, tenant: &str, dek: &DataKey) -> anyhow::Result<()> {
        let id = self.tenant_id(tenant);
        self.keys
            .insert(format!("dek/{id}"), self.kek.wrap(&id, dek)?)?;
        self.deks
            .lock()
            .map_err(|_| anyhow::anyhow!("key cache poisoned"))?
            .insert(tenant.to_owned(), dek.clone());
        if tenant != SERVICE_TENANT {
            self.put(SERVICE_TENANT, TENANTS, id.as_bytes(), tenant.as_bytes())?;
        }
        Ok(())
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
        epoch: u32,
    ) -> anyhow::Result<Option<UnitState>> {
        self.unit_state_by_id(tenant, &self.unit_id(tenant, device, stream, epoch))
    }

    /// A unit's state by its id (names included), if it has one.
    pub fn unit_state_by_id(
        &self,
        tenant: &str,
        unit: &UnitId,
    ) -> anyhow::Result<Option<UnitState>> {
        match self.get(tenant, "chains", unit)? {
            Some(v) => Ok(Some(serde_json::from_slice(&v).context("chain state")?)),
            None => Ok(None),
        }
    }

    /// Saves a unit's state (its epoch is the state's).
    pub fn set_unit_state(
        &self,
        tenant: &str,
        device: &str,
        stream: &str,
        state: &UnitState,
    ) -> anyhow::Result<()> {
        let mut state = state.clone();
        state.device = device.to_owned();
        state.stream = stream.to_owned();
        self.put(
            tenant,
            "chains",
            &self.unit_of(tenant, &state),
            &serde_json::to_vec(&state)?,
        )
    }

    /// The chain state just before the oldest record still indexed (the retention cut).
    pub fn cut(&self, tenant: &str, unit: &UnitId) -> anyhow::Result<ChainState> {
        match self.get(tenant, "cuts", unit)? {
            Some(v) => Ok(serde_json::from_slice(&v).context("cut state")?),
            None => Ok(ChainState::default()),
        }
    }

    pub fn set_cut(&self, tenant: &str, unit: &UnitId, cut: &ChainState) -> anyhow::Result<()> {
        self.put(tenant, "cuts", unit, &serde_json::to_vec(cut)?)
    }

    /// Every chain unit of a tenant: (device, stream, state).
    pub fn units(&self, tenant: &str) -> anyhow::Result<Vec<(String, String, UnitState)>> {
        let mut out = Vec::new();
        for item in self.tree("chains", tenant)?.iter() {
            let (k, _) = item?;
            let Some(v) = self.get(tenant, "chains", &k)? else {
                continue;
            };
            let state: UnitState = serde_json::from_slice(&v).context("chain state")?;
            out.push((state.device.clone(), state.stream.clone(), state));
        }
        out.sort_by(|a, b| {
            (&a.2.site, &a.0, &a.1, a.2.epoch).cmp(&(&b.2.site, &b.0, &b.1, b.2.epoch))
        });
        Ok(out)
    }

    fn unique_key(&self) -> Vec<u8> {
        let mut k = now_ns().to_be_bytes().to_vec();
        k.extend_from_slice(&self.counter.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        k
    }

    /// Stores an integrity event under the tenant (or the service) and logs it. An event about
    /// a tenant the store does not know (a stranger's names) goes to the service's events with
    /// the tenant's name in it: nobody creates tenants by publishing.
    pub fn integrity_event(&self, tenant: &str, event: serde_json::Value) -> anyhow::Result<()> {
        tracing::warn!(tenant, %event, "integrity event");
        let key = self.unique_key();
        if !self.knows_tenant(tenant)? {
            let mut event = event;
            if let Some(fields) = event.as_object_mut() {
                fields.insert("tenant".into(), tenant.into());
            }
            return self.put(SERVICE_TENANT, "events", &key, &serde_json::to_vec(&event)?);
        }
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
        let owner = format!("owner/{}", self.key_id(key));
        let me = format!("{tenant}/{device}");
        let pin = format!("pin/{}", hex::encode(self.device_id(tenant, device)));
        if let Some(o) = self.get(SERVICE_TENANT, PINS, owner.as_bytes())? {
            return Ok(if o == me.as_bytes() {
                Ok(())
            } else {
                Err(format!(
                    "signed by the key of {}",
                    String::from_utf8_lossy(&o)
                ))
            });
        }
        if let Some(k) = self.get(SERVICE_TENANT, PINS, pin.as_bytes())? {
            return Ok(Err(format!(
                "signed by another key than the one pinned for {me} ({})",
                String::from_utf8_lossy(&k)
            )));
        }
        self.put(SERVICE_TENANT, PINS, owner.as_bytes(), me.as_bytes())?;
        self.put(SERVICE_TENANT, PINS, pin.as_bytes(), key.as_bytes())?;
        Ok(Ok(()))
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

/// A new store with a new KEK in a fresh temporary directory (unit tests): (directory, store).
#[cfg(test)]
pub(crate) fn temp_store(name: &str) -> (PathBuf, Store) {
    let dir = std::env::temp_dir().join(format!("veil-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    SecretKey::generate()
        .and_then(|k| k.save(&dir.join("kek")))
        .expect("a KEK");
    let store = Store::open(&dir.join("store"), &dir.join("kek")).expect("a new store");
    (dir, store)
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
