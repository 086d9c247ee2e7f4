// SPDX-License-Identifier: MIT OR Apache-2.0
//! Enrolled devices: which Ed25519 key signs the checkpoints of each device of a tenant.
//!
//! Under `trust.mode = "enrolled"` (the default) a checkpoint is trusted only when its key is
//! the one enrolled for its tenant and device (and, if the enrollment names one, its site);
//! the records it vouches for are otherwise set aside in the quarantine with an integrity
//! event (see [`crate::ingest`]). A revoked device's checkpoints are refused the same way; a
//! re-keyed device's checkpoints need its new key, and its old keys are kept as retired (so a
//! refusal can say why). One key belongs to one device: enrolling it for a second device or
//! tenant is refused.
//!
//! Trees: `devices/<t>`: device id ([`Store::device_id`]) → [`Enrollment`] (sealed JSON);
//! `device-keys/.service`: public key id ([`Store::key_id`]) → `tenant/device` (sealed), the
//! reverse index.

use serde::{Deserialize, Serialize};
use veil_wire::record::format_time;

use crate::store::{SERVICE_TENANT, Store};

const TREE: &str = "devices";
const KEYS: &str = "device-keys";

/// A key a device signed with before it was re-keyed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetiredKey {
    pub public_key: String,
    pub generation: u32,
    /// When it was replaced (RFC 3339).
    pub until: String,
}

/// What the store knows of one enrolled device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrollment {
    pub tenant: String,
    pub device: String,
    /// The only site its records may name (any, when `None`).
    pub site: Option<String>,
    /// Ed25519 public key, 64 lowercase hex digits.
    pub public_key: String,
    /// 1 at enrollment, one more at each re-key.
    pub generation: u32,
    pub enrolled: String,
    pub rekeyed: Option<String>,
    pub revoked: Option<String>,
    #[serde(default)]
    pub retired: Vec<RetiredKey>,
    /// The device's current chain epoch: 0 for its first chain, one more at each re-key with a
    /// new chain (a device that lost its spool starts over at sequence number 1).
    #[serde(default)]
    pub chain_epoch: u32,
}

/// A public key as 64 lowercase hex digits of a valid Ed25519 point.
///
/// Errors: anything else, named.
pub fn normalize_key(text: &str) -> anyhow::Result<String> {
    let key = text.trim().to_ascii_lowercase();
    veil_wire::checkpoint::parse_public_key(&key)
        .map_err(|e| anyhow::anyhow!("public key {text:?}: {e}"))?;
    Ok(key)
}

/// The enrollment of `tenant`/`device`, if any.
pub fn get(store: &Store, tenant: &str, device: &str) -> anyhow::Result<Option<Enrollment>> {
    // Asking about a tenant the store does not know creates nothing.
    if !store.knows_tenant(tenant)? {
        return Ok(None);
    }
    match store.get(tenant, TREE, &store.device_id(tenant, device))? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        None => Ok(None),
    }
}

/// The tenant's enrolled devices (revoked ones included), by name.
pub fn list(store: &Store, tenant: &str) -> anyhow::Result<Vec<Enrollment>> {
    let mut out = Vec::new();
    for item in store.tree(TREE, tenant)?.iter() {
        let (device, _) = item?;
        if let Some(bytes) = store.get(tenant, TREE, &device)? {
            out.push(serde_json::from_slice(&bytes)?);
        }
    }
    Ok(out)
}

/// Who a public key is enrolled for (`tenant/device`), if anyone.
fn owner(store: &Store, key: &str) -> anyhow::Result<Option<String>> {
    Ok(store
        .get(SERVICE_TENANT, KEYS, store.key_id(key).as_bytes())?
        .map(|b| String::from_utf8_lossy(&b).into_owned()))
}

fn save(store: &Store, e: &Enrollment) -> anyhow::Result<()> {
    store.put(
        &e.tenant,
        TREE,
        &store.device_id(&e.tenant, &e.device),
        &serde_json::to_vec(e)?,
    )?;
    store.put(
        SERVICE_TENANT,
        KEYS,
        store.key_id(&e.public_key).as_bytes(),
        format!("{}/{}", e.tenant, e.device).as_bytes(),
    )?;
    store.flush()
}

/// Refuses a key that is already enrolled (for this device or another).
fn refuse_taken(store: &Store, key: &str) -> anyhow::Result<()> {
    if let Some(who) = owner(store, key)? {
        anyhow::bail!("the key {key} is already enrolled (for {who}): one key, one device");
    }
    Ok(())
}

/// Enrolls a device with its public key (`site`: the only site its records may name).
///
/// Errors: invalid names or key, a device already enrolled (re-key it instead), a key already
/// enrolled for any device.
pub fn enroll(
    store: &Store,
    tenant: &str,
    device: &str,
    site: Option<&str>,
    public_key: &str,
    now_ns: u64,
) -> anyhow::Result<Enrollment> {
    veil_wire::names::check_name("tenant", tenant)?;
    veil_wire::names::check_name("device", device)?;
    if let Some(s) = site {
        veil_wire::names::check_name("site", s)?;
    }
    let key = normalize_key(public_key)?;
    if let Some(e) = get(store, tenant, device)? {
        anyhow::bail!(
            "{tenant}/{device} is already enrolled (generation {}{}): use `devices rekey` for a new key",
            e.generation,
            if e.revoked.is_some() { ", revoked" } else { "" }
        );
    }
    refuse_taken(store, &key)?;
    let e = Enrollment {
        tenant: tenant.to_owned(),
        device: device.to_owned(),
        site: site.map(str::to_owned),
        public_key: key,
        generation: 1,
        enrolled: format_time(now_ns),
        rekeyed: None,
        revoked: None,
        retired: Vec::new(),
        chain_epoch: 0,
    };
    save(store, &e)?;
    Ok(e)
}

/// Revokes a device: its checkpoints are refused from now on (what it stored stays valid).
///
/// Errors: a device that is not enrolled.
pub fn revoke(
    store: &Store,
    tenant: &str,
    device: &str,
    now_ns: u64,
) -> anyhow::Result<Enrollment> {
    let Some(mut e) = get(store, tenant, device)? else {
        anyhow::bail!("{tenant}/{device} is not enrolled");
    };
    if let Some(when) = &e.revoked {
        anyhow::bail!("{tenant}/{device} was already revoked at {when}");
    }
    e.revoked = Some(format_time(now_ns));
    save(store, &e)?;
    Ok(e)
}

/// A new key for a device (lost or compromised key, or a device replaced): the new key signs
/// from now on, the old one is retired, the generation goes up by one. A revoked device is
/// re-admitted by re-keying it. With `new_chain` (the device lost its spool and starts over at
/// sequence number 1) its chains continue in a new chain epoch, beside the old ones; without,
/// its current chains go on under the new key from their next checkpoint.
///
/// Errors: a device that is not enrolled, an invalid key, a key already enrolled anywhere.
pub fn rekey(
    store: &Store,
    tenant: &str,
    device: &str,
    public_key: &str,
    new_chain: bool,
    now_ns: u64,
) -> anyhow::Result<Enrollment> {
    let Some(mut e) = get(store, tenant, device)? else {
        anyhow::bail!("{tenant}/{device} is not enrolled: use `devices enroll`");
    };
    let key = normalize_key(public_key)?;
    refuse_taken(store, &key)?;
    let now = format_time(now_ns);
    e.retired.push(RetiredKey {
        public_key: std::mem::replace(&mut e.public_key, key),
        generation: e.generation,
        until: now.clone(),
    });
    e.generation += 1;
    e.rekeyed = Some(now);
    e.revoked = None;
    if new_chain {
        e.chain_epoch += 1;
        save(store, &e)?;
        return Ok(e);
    }
    // The device's chains go on under the new key from their next checkpoint (a device that
    // kept its chain but lost its key); `verify` follows the change.
    for (device_name, stream, mut state) in store.units(tenant)? {
        if device_name != device || state.epoch != e.chain_epoch {
            continue;
        }
        state.chain.key = Some(e.public_key.clone());
        state.key_changes.push(crate::store::KeyChange {
            from_seq: state.chain.signed_upto + 1,
            key: e.public_key.clone(),
        });
        store.set_unit_state(tenant, device, &stream, &state)?;
    }
    save(store, &e)?;
    Ok(e)
}

/// Whether a checkpoint of `tenant`/`site`/`device` signed by `key` is trusted: `Err` is the
/// reason it is not, for the quarantine and the integrity event.
pub fn judge(
    store: &Store,
    tenant: &str,
    site: &str,
    device: &str,
    key: &str,
) -> anyhow::Result<Result<(), String>> {
    let me = format!("{tenant}/{device}");
    let enrollment = get(store, tenant, device)?;
    if enrollment.is_none()
        && let Some(who) = owner(store, key)?
    {
        return Ok(Err(format!("{me} is not enrolled; the key is {who}'s")));
    }
    if let Err(reason) = admits(enrollment.as_ref(), tenant, device, site) {
        return Ok(Err(reason));
    }
    let Some(e) = enrollment else {
        return Ok(Err(format!("{me} is not enrolled")));
    };
    Ok(
        if let Some(old) = e.retired.iter().find(|r| r.public_key == key) {
            Err(format!(
                "signed by a retired key of {me} (generation {}, replaced at {})",
                old.generation, old.until
            ))
        } else if e.public_key != key {
            Err(format!(
                "signed by another key than the one enrolled for {me}"
            ))
        } else {
            Ok(())
        },
    )
}

/// Whether records of `tenant`/`site`/`device` may be taken at all under enrollment (before
/// any key is seen): the device enrolled, not revoked, and of its enrolled site. `Err` is the
/// reason, for the quarantine and the integrity event.
pub fn admits(
    enrollment: Option<&Enrollment>,
    tenant: &str,
    device: &str,
    site: &str,
) -> Result<(), String> {
    let me = format!("{tenant}/{device}");
    match enrollment {
        None => Err(format!(
            "{me} is not enrolled (sink-service devices enroll)"
        )),
        Some(e) if e.revoked.is_some() => Err(format!(
            "{me} was revoked at {}",
            e.revoked.as_deref().unwrap_or_default()
        )),
        Some(e) if e.site.as_deref().is_some_and(|s| s != site) => {
            Err(format!("{me} is enrolled for another site, not {site}"))
        }
        Some(_) => Ok(()),
    }
}

impl Enrollment {
    /// What `devices list` prints (no key material beyond the public key).
    pub fn public(&self) -> serde_json::Value {
        serde_json::json!({
            "tenant": self.tenant, "device": self.device, "site": self.site,
            "public_key": self.public_key, "generation": self.generation, "enrolled": self.enrolled,
            "rekeyed": self.rekeyed, "revoked": self.revoked,
            "chain_epoch": self.chain_epoch,
            "retired": self.retired.iter().map(|r| serde_json::json!({"public_key": r.public_key, "generation": r.generation, "until": r.until})).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_wire::DeviceKey;

    fn store(name: &str) -> (std::path::PathBuf, Store) {
        crate::store::temp_store(&format!("devices-{name}"))
    }

    #[test]
    fn only_the_enrolled_key_of_an_enrolled_device_is_trusted() {
        let (dir, store) = store("judge");
        let (a, b) = (
            DeviceKey::from_seed([1; 32]).public_hex(),
            DeviceKey::from_seed([2; 32]).public_hex(),
        );
        assert!(judge(&store, "acme", "hq", "cam-1", &a).unwrap().is_err());
        enroll(&store, "acme", "cam-1", Some("hq"), &a, 1).unwrap();
        assert_eq!(judge(&store, "acme", "hq", "cam-1", &a).unwrap(), Ok(()));
        // Another key, another site, another tenant's device name with the same key.
        assert!(judge(&store, "acme", "hq", "cam-1", &b).unwrap().is_err());
        assert!(judge(&store, "acme", "lab", "cam-1", &a).unwrap().is_err());
        let stolen = judge(&store, "beta", "hq", "cam-1", &a)
            .unwrap()
            .unwrap_err();
        assert!(
            stolen.contains("not enrolled") && stolen.contains("acme/cam-1"),
            "{stolen}"
        );
        // One key, one device; one enrollment per device.
        assert!(enroll(&store, "beta", "cam-1", None, &a, 2).is_err());
        assert!(enroll(&store, "acme", "cam-1", None, &b, 2).is_err());
        // Re-keyed: the new key only; the old one is named as retired.
        let e = rekey(&store, "acme", "cam-1", &b, false, 3).unwrap();
        assert_eq!((e.generation, e.retired.len()), (2, 1));
        assert_eq!(judge(&store, "acme", "hq", "cam-1", &b).unwrap(), Ok(()));
        let old = judge(&store, "acme", "hq", "cam-1", &a)
            .unwrap()
            .unwrap_err();
        assert!(
            old.contains("retired key") && old.contains("generation 1"),
            "{old}"
        );
        assert!(
            rekey(&store, "acme", "cam-1", &a, false, 4).is_err(),
            "a retired key stays taken"
        );
        // Revoked: nothing is trusted, until a re-key re-admits it.
        revoke(&store, "acme", "cam-1", 5).unwrap();
        let revoked = judge(&store, "acme", "hq", "cam-1", &b)
            .unwrap()
            .unwrap_err();
        assert!(revoked.contains("revoked"), "{revoked}");
        let c = DeviceKey::from_seed([3; 32]).public_hex();
        rekey(&store, "acme", "cam-1", &c, false, 6).unwrap();
        assert_eq!(judge(&store, "acme", "hq", "cam-1", &c).unwrap(), Ok(()));
        assert_eq!(list(&store, "acme").unwrap().len(), 1);
        assert!(list(&store, "beta").unwrap().is_empty());
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn keys_and_names_are_checked() {
        let (dir, store) = store("check");
        let a = DeviceKey::from_seed([1; 32]).public_hex();
        assert!(enroll(&store, "acme", "cam/1", None, &a, 1).is_err());
        assert!(enroll(&store, "acme", "cam-1", Some(".."), &a, 1).is_err());
        assert!(enroll(&store, "acme", "cam-1", None, "abcd", 1).is_err());
        assert!(enroll(&store, "acme", "cam-1", None, &"zz".repeat(32), 1).is_err());
        let upper = enroll(&store, "acme", "cam-1", None, &a.to_uppercase(), 1).unwrap();
        assert_eq!(upper.public_key, a);
        assert!(revoke(&store, "acme", "cam-2", 1).is_err());
        assert!(rekey(&store, "acme", "cam-2", &a, false, 1).is_err());
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
