// SPDX-License-Identifier: MIT OR Apache-2.0
//! API keys, scopes and roles.
//!
//! A key reads `veil_<id>_<secret>`: `id` (16 hex digits) names it in logs and in the API,
//! `secret` (64 hex digits, 256 random bits) is shown once, at creation or rotation. The store
//! keeps only the SHA-256 of the whole key, sealed with the service's data key in the tree
//! `apikeys/.service`; a presented key is hashed and compared in constant time.

use std::collections::{BTreeSet, HashMap};
use std::sync::RwLock;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use veil_wire::record::{format_time, parse_time};

use crate::stations::Stations;
use crate::store::{SERVICE_TENANT, Store};

const TREE: &str = "apikeys";
pub const PREFIX: &str = "veil_";

/// What a key may do. Each endpoint needs exactly one scope (documented per operation in the
/// OpenAPI document as `x-veil-scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Stored records: metrics windows, events, inspection decisions, integrity events, streams.
    Read,
    /// Changes to what is stored about the tenant's streams: acknowledging integrity alerts.
    Write,
    /// Roll-ups (per hour of day, day of week, day, zone).
    Analytics,
    /// Streamed exports (CSV, JSON Lines).
    Export,
    /// Webhook subscriptions and their delivery log.
    Webhooks,
    /// Stored inspection images (failures-only retention); served with the industrial modes.
    Images,
    /// API keys and the audit log.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::Read,
        Scope::Write,
        Scope::Analytics,
        Scope::Export,
        Scope::Webhooks,
        Scope::Images,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Analytics => "analytics",
            Scope::Export => "export",
            Scope::Webhooks => "webhooks",
            Scope::Images => "images",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Roles: named sets of scopes, least privilege first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Watches dashboards and handles alerts: read, analytics, write.
    Operator,
    /// Integrates and investigates: operator + export, webhooks, images.
    Engineer,
    /// Everything, including keys and the audit log.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Operator, Role::Engineer, Role::Admin];

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "operator" => Some(Role::Operator),
            "engineer" => Some(Role::Engineer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Engineer => "engineer",
            Role::Admin => "admin",
        }
    }

    pub fn scopes(self) -> BTreeSet<Scope> {
        use Scope::*;
        match self {
            Role::Operator => [Read, Analytics, Write].into(),
            Role::Engineer => [Read, Analytics, Write, Export, Webhooks, Images].into(),
            Role::Admin => Scope::ALL.into(),
        }
    }
}

/// A stored key (never the secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub role: Option<Role>,
    pub scopes: BTreeSet<Scope>,
    /// The rate-limit tier (`[api.tiers]` in the configuration).
    pub tier: String,
    pub created: String,
    pub expires: Option<String>,
    pub revoked: Option<String>,
    pub rotated: Option<String>,
    /// Lowercase hex SHA-256 of the whole key.
    pub hash: String,
    /// The sites, devices and streams of its tenant the key may see (keys stored before
    /// station scopes existed read as the whole tenant).
    #[serde(default, skip_serializing_if = "Stations::is_whole_tenant")]
    pub stations: Stations,
}

impl ApiKey {
    pub fn expired(&self, now_ns: u64) -> bool {
        self.expires
            .as_deref()
            .and_then(parse_time)
            .is_some_and(|t| now_ns >= t)
    }

    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// Whether history queries (Zenoh) may return records of `kind` to this key, by the same
    /// rules as the HTTPS API: `read` for the structure, `images` for kept frames (`image`),
    /// `export` for per-frame boxes (`detections`, which the HTTPS API only exports).
    pub fn may_read(&self, kind: veil_wire::Kind) -> bool {
        match kind {
            veil_wire::Kind::Image => self.has(Scope::Images),
            veil_wire::Kind::Detections => self.has(Scope::Export),
            _ => self.has(Scope::Read),
        }
    }

    /// What the API shows of a key.
    pub fn public(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id, "tenant": self.tenant, "name": self.name, "role": self.role,
            "scopes": self.scopes, "tier": self.tier, "created": self.created,
            "expires": self.expires, "revoked": self.revoked, "rotated": self.rotated,
            "stations": self.stations.public(),
        })
    }
}

/// What a new key is to be.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub tenant: String,
    pub name: String,
    pub role: Option<Role>,
    /// When no role is given (or to narrow one).
    pub scopes: Option<BTreeSet<Scope>>,
    pub tier: String,
    pub expires: Option<String>,
    /// Limits to sites, devices, streams (default: the whole tenant).
    pub stations: Stations,
}

/// Why a presented key was refused (for the audit log; the client only hears "invalid").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Malformed,
    Unknown(String),
    WrongSecret(String),
    Revoked(String),
    Expired(String),
    /// A console session cookie that names no live session (expired, signed out, its key
    /// revoked, expired or rotated since, or made up).
    Session,
}

impl Refusal {
    pub fn reason(&self) -> String {
        match self {
            Refusal::Missing => "no API key".into(),
            Refusal::Malformed => "not a Veil API key".into(),
            Refusal::Unknown(id) => format!("unknown key id {id}"),
            Refusal::WrongSecret(id) => format!("wrong secret for key {id}"),
            Refusal::Revoked(id) => format!("key {id} is revoked"),
            Refusal::Expired(id) => format!("key {id} has expired"),
            Refusal::Session => "no live console session for this cookie".into(),
        }
    }

    pub fn key_id(&self) -> Option<&str> {
        match self {
            Refusal::Unknown(id)
            | Refusal::WrongSecret(id)
            | Refusal::Revoked(id)
            | Refusal::Expired(id) => Some(id),
            _ => None,
        }
    }
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("no random numbers: {e}"))?;
    Ok(hex::encode(buf))
}

/// Splits `veil_<id>_<secret>`; `None` when it is not shaped like one.
pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex16 = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex16(id, 16) && hex16(secret, 64)).then_some((id, secret))
}

/// The keys, cached in memory (every change goes through here; sled allows one process).
pub struct KeyStore {
    cache: RwLock<HashMap<String, ApiKey>>,
}

impl KeyStore {
    pub fn open(store: &Store) -> anyhow::Result<KeyStore> {
        let mut cache = HashMap::new();
        for item in store.tree(TREE, SERVICE_TENANT)?.iter() {
            let (k, _) = item?;
            let bytes = store
                .get(SERVICE_TENANT, TREE, &k)?
                .context("an API key vanished")?;
            let key: ApiKey = serde_json::from_slice(&bytes).context("an API key")?;
            cache.insert(key.id.clone(), key);
        }
        Ok(KeyStore {
            cache: RwLock::new(cache),
        })
    }

    fn save(&self, store: &Store, key: ApiKey) -> anyhow::Result<()> {
        store.put(
            SERVICE_TENANT,
            TREE,
            key.id.as_bytes(),
            &serde_json::to_vec(&key)?,
        )?;
        store.flush()?;
        self.cache
            .write()
            .map_err(|_| anyhow::anyhow!("key cache poisoned"))?
            .insert(key.id.clone(), key);
        Ok(())
    }

    /// Creates a key; returns it and the token, which is not kept anywhere.
    pub fn create(
        &self,
        store: &Store,
        new: NewKey,
        now_ns: u64,
    ) -> anyhow::Result<(ApiKey, String)> {
        veil_wire::names::check_name("tenant", &new.tenant)?;
        let scopes = match (new.role, new.scopes) {
            (Some(role), Some(narrow)) => {
                let allowed = role.scopes();
                if let Some(extra) = narrow.iter().find(|s| !allowed.contains(s)) {
                    bail!(
                        "scope {} is not part of role {}",
                        extra.as_str(),
                        role.as_str()
                    );
                }
                narrow
            }
            (Some(role), None) => role.scopes(),
            (None, Some(scopes)) if !scopes.is_empty() => scopes,
            _ => bail!("a key needs a role or at least one scope"),
        };
        if let Some(e) = &new.expires
            && parse_time(e).is_none()
        {
            bail!("expires {e:?} is not an RFC 3339 UTC time (e.g. 2027-01-01T00:00:00Z)");
        }
        let id = random_hex(8)?;
        let token = format!("{PREFIX}{id}_{}", random_hex(32)?);
        let key = ApiKey {
            id,
            tenant: new.tenant,
            name: new.name,
            role: new.role,
            scopes,
            tier: new.tier,
            created: format_time(now_ns),
            expires: new.expires,
            revoked: None,
            rotated: None,
            hash: hash_token(&token),
            stations: new.stations,
        };
        self.save(store, key.clone())?;
        Ok((key, token))
    }

    /// A tenant's keys, oldest first.
    pub fn list(&self, tenant: &str) -> Vec<ApiKey> {
        let mut keys: Vec<ApiKey> = self
            .cache
            .read()
            .map(|c| c.values().filter(|k| k.tenant == tenant).cloned().collect())
            .unwrap_or_default();
        keys.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        keys
    }

    /// A key of this tenant (another tenant's key is as absent as an unknown one).
    pub fn get(&self, tenant: &str, id: &str) -> Option<ApiKey> {
        let cache = self.cache.read().ok()?;
        cache.get(id).filter(|k| k.tenant == tenant).cloned()
    }

    /// A new secret for the same key; the old one stops working at once.
    pub fn rotate(
        &self,
        store: &Store,
        tenant: &str,
        id: &str,
        now_ns: u64,
    ) -> anyhow::Result<Option<(ApiKey, String)>> {
        let Some(mut key) = self.get(tenant, id) else {
            return Ok(None);
        };
        if key.revoked.is_some() {
            bail!("key {id} is revoked");
        }
        let token = format!("{PREFIX}{id}_{}", random_hex(32)?);
        key.hash = hash_token(&token);
        key.rotated = Some(format_time(now_ns));
        self.save(store, key.clone())?;
        Ok(Some((key, token)))
    }

    pub fn revoke(
        &self,
        store: &Store,
        tenant: &str,
        id: &str,
        now_ns: u64,
    ) -> anyhow::Result<Option<ApiKey>> {
        let Some(mut key) = self.get(tenant, id) else {
            return Ok(None);
        };
        if key.revoked.is_none() {
            key.revoked = Some(format_time(now_ns));
            self.save(store, key.clone())?;
        }
        Ok(Some(key))
    }

    /// Takes a key exported by another store (`api-keys export`: the stored form, the secret's
    /// hash, never the secret), so that one credential is accepted by every store of a tenant's
    /// sites. Replaces an earlier import of the same key (a later revocation or rotation).
    ///
    /// Errors: a bad tenant name, id or hash; the id held by another tenant's key.
    pub fn import(&self, store: &Store, key: ApiKey) -> anyhow::Result<()> {
        veil_wire::names::check_name("tenant", &key.tenant)?;
        let hex = |s: &str, len: usize| {
            s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        anyhow::ensure!(
            hex(&key.id, 16),
            "key id {:?} is not 16 lowercase hex digits",
            key.id
        );
        anyhow::ensure!(
            hex(&key.hash, 64),
            "key {}: hash is not a SHA-256 in lowercase hex",
            key.id
        );
        anyhow::ensure!(!key.scopes.is_empty(), "key {} has no scope", key.id);
        if let Some(role) = key.role
            && let Some(extra) = key.scopes.iter().find(|s| !role.scopes().contains(s))
        {
            bail!(
                "key {}: scope {} is not part of role {}",
                key.id,
                extra.as_str(),
                role.as_str()
            );
        }
        for (field, value) in [
            ("created", Some(&key.created)),
            ("expires", key.expires.as_ref()),
            ("revoked", key.revoked.as_ref()),
            ("rotated", key.rotated.as_ref()),
        ] {
            if let Some(v) = value {
                anyhow::ensure!(
                    parse_time(v).is_some(),
                    "key {}: {field} {v:?} is not an RFC 3339 UTC time",
                    key.id
                );
            }
        }
        // The station names, checked as a new key's are.
        let names = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>();
        Stations::new(
            &names(&key.stations.sites),
            &names(&key.stations.devices),
            &names(&key.stations.streams),
        )?;
        if let Some(held) = self
            .cache
            .read()
            .map_err(|_| anyhow::anyhow!("key cache poisoned"))?
            .get(&key.id)
        {
            anyhow::ensure!(
                held.tenant == key.tenant,
                "key id {} belongs to another tenant here",
                key.id
            );
            // Forward only: an old export must not undo a revocation or a rotation.
            anyhow::ensure!(
                held.revoked.is_none() || key.revoked.is_some(),
                "key {} is revoked here and the imported copy is not: an older export?",
                key.id
            );
            let when = |t: &Option<String>| t.as_deref().and_then(parse_time).unwrap_or(0);
            anyhow::ensure!(
                when(&key.rotated) >= when(&held.rotated),
                "key {} was rotated here after the imported copy: an older export?",
                key.id
            );
        }
        self.save(store, key)
    }

    /// Checks a presented key: shape, id, secret (constant time), revocation, expiry.
    pub fn authenticate(&self, token: Option<&str>, now_ns: u64) -> Result<ApiKey, Refusal> {
        let token = token.ok_or(Refusal::Missing)?;
        let (id, _) = parse_token(token).ok_or(Refusal::Malformed)?;
        let cache = self.cache.read().map_err(|_| Refusal::Malformed)?;
        let key = cache.get(id).ok_or_else(|| Refusal::Unknown(id.into()))?;
        let presented = hash_token(token);
        if !bool::from(presented.as_bytes().ct_eq(key.hash.as_bytes())) {
            return Err(Refusal::WrongSecret(id.into()));
        }
        if key.revoked.is_some() {
            return Err(Refusal::Revoked(id.into()));
        }
        if key.expired(now_ns) {
            return Err(Refusal::Expired(id.into()));
        }
        Ok(key.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_a_recognizable_shape() {
        let id = "0123456789abcdef";
        let secret = "ab".repeat(32);
        let token = format!("veil_{id}_{secret}");
        assert_eq!(parse_token(&token), Some((id, secret.as_str())));
        assert_eq!(parse_token(&token[1..]), None);
        assert_eq!(parse_token(&format!("veil_{id}_{}", &secret[1..])), None);
        assert_eq!(parse_token(&format!("veil_{id}x_{secret}")), None);
        assert_eq!(parse_token("Bearer whatever"), None);
    }

    #[test]
    fn roles_nest_least_privilege_first() {
        let (o, e, a) = (
            Role::Operator.scopes(),
            Role::Engineer.scopes(),
            Role::Admin.scopes(),
        );
        assert!(o.is_subset(&e) && e.is_subset(&a));
        assert!(!o.contains(&Scope::Export) && !e.contains(&Scope::Admin));
        assert_eq!(a.len(), Scope::ALL.len());
    }

    #[test]
    fn keys_authenticate_until_revoked_expired_or_rotated() {
        let (dir, store) = crate::store::temp_store("keys");
        let keys = KeyStore::open(&store).unwrap();
        let now = 1_795_428_000_000_000_000;
        let new = |expires: Option<&str>| NewKey {
            tenant: "acme".into(),
            name: "test".into(),
            role: Some(Role::Operator),
            scopes: None,
            tier: "standard".into(),
            expires: expires.map(str::to_owned),
            stations: Stations::default(),
        };
        let (key, token) = keys.create(&store, new(None), now).unwrap();
        assert!(token.starts_with("veil_") && !key.hash.contains(&token[22..]));
        assert_eq!(keys.authenticate(Some(&token), now).unwrap().id, key.id);
        let mut wrong = token.clone();
        wrong.pop();
        wrong.push(if token.ends_with('0') { '1' } else { '0' });
        assert_eq!(
            keys.authenticate(Some(&wrong), now),
            Err(Refusal::WrongSecret(key.id.clone()))
        );
        // Reopened from the store: the same keys.
        let keys = KeyStore::open(&store).unwrap();
        let (_, rotated) = keys.rotate(&store, "acme", &key.id, now).unwrap().unwrap();
        assert!(keys.authenticate(Some(&token), now).is_err());
        assert!(keys.authenticate(Some(&rotated), now).is_ok());
        assert!(
            keys.rotate(&store, "other", &key.id, now)
                .unwrap()
                .is_none()
        );
        keys.revoke(&store, "acme", &key.id, now).unwrap().unwrap();
        assert_eq!(
            keys.authenticate(Some(&rotated), now),
            Err(Refusal::Revoked(key.id.clone()))
        );
        let (short, token) = keys
            .create(&store, new(Some("2026-11-23T10:00:01Z")), now)
            .unwrap();
        assert!(keys.authenticate(Some(&token), now).is_ok());
        assert_eq!(
            keys.authenticate(Some(&token), now + 1_000_000_000),
            Err(Refusal::Expired(short.id))
        );
        let mut narrow = new(None);
        narrow.scopes = Some([Scope::Export].into());
        assert!(keys.create(&store, narrow, now).is_err());
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// History over Zenoh follows the HTTPS scopes: frames need `images`, per-frame boxes
    /// `export`, the rest `read`.
    #[test]
    fn history_kinds_follow_the_scopes() {
        use veil_wire::Kind;
        let key = |scopes: BTreeSet<Scope>| ApiKey {
            id: "0123456789abcdef".into(),
            tenant: "acme".into(),
            name: "t".into(),
            role: None,
            scopes,
            tier: "standard".into(),
            created: "2026-11-23T10:00:00.000000000Z".into(),
            expires: None,
            revoked: None,
            rotated: None,
            hash: String::new(),
            stations: Stations::default(),
        };
        let operator = key(Role::Operator.scopes());
        assert!(operator.may_read(Kind::Metrics) && operator.may_read(Kind::Checkpoint));
        assert!(!operator.may_read(Kind::Image) && !operator.may_read(Kind::Detections));
        let engineer = key(Role::Engineer.scopes());
        assert!(engineer.may_read(Kind::Image) && engineer.may_read(Kind::Detections));
        let images_only = key([Scope::Images].into());
        assert!(images_only.may_read(Kind::Image) && !images_only.may_read(Kind::Metrics));
    }

    #[test]
    fn a_key_exported_from_one_store_authenticates_in_another_and_follows_its_revocation() {
        let (_dir_a, a) = crate::store::temp_store("keys-export-a");
        let (_dir_b, b) = crate::store::temp_store("keys-export-b");
        let (keys_a, keys_b) = (KeyStore::open(&a).unwrap(), KeyStore::open(&b).unwrap());
        let now = 1_795_428_000_000_000_000;
        let new = NewKey {
            tenant: "acme".into(),
            name: "two sites".into(),
            role: Some(Role::Operator),
            scopes: None,
            tier: "standard".into(),
            expires: None,
            stations: Stations::default(),
        };
        let (key, token) = keys_a.create(&a, new, now).unwrap();
        // Control: unknown in B before the import.
        assert_eq!(
            keys_b.authenticate(Some(&token), now),
            Err(Refusal::Unknown(key.id.clone()))
        );
        let exported = serde_json::to_string(&keys_a.get("acme", &key.id).unwrap()).unwrap();
        assert!(
            !exported.contains(&token[22..]),
            "the secret left the store"
        );
        keys_b
            .import(&b, serde_json::from_str(&exported).unwrap())
            .unwrap();
        assert_eq!(keys_b.authenticate(Some(&token), now).unwrap().id, key.id);
        // Reopened: kept. Revoked in A and imported again: refused in B too.
        let keys_b = KeyStore::open(&b).unwrap();
        let revoked = keys_a.revoke(&a, "acme", &key.id, now).unwrap().unwrap();
        keys_b.import(&b, revoked.clone()).unwrap();
        assert!(keys_b.authenticate(Some(&token), now).is_err());
        // Refused: the old, unrevoked export again (it would undo the revocation).
        let e = keys_b
            .import(&b, serde_json::from_str(&exported).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("revoked here"), "{e}");
        assert!(keys_b.authenticate(Some(&token), now).is_err());
        // Refused: a malformed or uppercase hash, a time that is none, a scope beyond the role,
        // a station name that is none.
        for (what, damage) in [
            (
                "hash",
                &(|k: &mut ApiKey| k.hash = "zz".into()) as &dyn Fn(&mut ApiKey),
            ),
            ("hash", &|k: &mut ApiKey| k.hash = k.hash.to_uppercase()),
            ("expires", &|k: &mut ApiKey| {
                k.expires = Some("next tuesday".into())
            }),
            ("admin", &|k: &mut ApiKey| {
                k.scopes.insert(Scope::Admin);
            }),
            ("site", &|k: &mut ApiKey| {
                k.stations.sites.insert("../x".into());
            }),
        ] {
            let mut bad = revoked.clone();
            damage(&mut bad);
            let e = keys_b.import(&b, bad).unwrap_err().to_string();
            assert!(e.contains(what), "{what}: {e}");
        }
        let mut other = revoked;
        other.tenant = "globex".into();
        let e = keys_b.import(&b, other).unwrap_err().to_string();
        assert!(e.contains("another tenant"), "{e}");
    }
}
