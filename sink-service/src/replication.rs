// SPDX-License-Identifier: MIT OR Apache-2.0
//! A second copy of every record: replica services, and the owner's acknowledgements gated on
//! them.
//!
//! A replica (`[zenoh] replicates = ["veil/acme/**"]`) subscribes to the same records as their
//! owner, verifies and stores them exactly as the owner does, and never acknowledges to a
//! device. Instead it *confirms*: after each group commit it publishes, per chain unit, the
//! highest contiguous sequence number it holds durably and that record's hash, signed with its
//! own acknowledgement key, on `veil-replica/<replica public key>/<tenant>/<site>/<device>/<stream>`.
//!
//! The owner lists its replicas' public keys (`[replication] replicas = ["<64 hex>"]`) and
//! acknowledges a record to its device only once it stored the record itself **and** every
//! listed replica confirmed it ([`Gate`]) — the rule of Kafka's `min.insync.replicas` with all
//! replicas in sync. A device drops from its spool only what is acknowledged, so whatever a
//! replica missed while it was down is still spooled and sent again (the owner answers the
//! duplicates with its acknowledgement, the replica stores what it lacked). Hence every
//! acknowledged record exists twice, and a damaged store can be rebuilt from the other copy
//! (docs/deploy.md, "A second copy").
//!
//! While a replica is down the owner stores but acknowledges nothing: devices spool (bounded
//! by their spool settings), and nothing is lost — availability is traded for the second copy,
//! as the owner's configuration asked.

use std::collections::HashMap;

use veil_wire::{Ack, Names, VerifyingKey};

/// Where replicas publish their confirmations.
pub const CONFIRM_PREFIX: &str = "veil-replica";

/// `veil-replica/<replica public key hex>/<tenant>/<site>/<device>/<stream>`: where the replica
/// with `public_hex` confirms `names`' chain unit.
pub fn confirm_key(public_hex: &str, names: &Names) -> String {
    format!(
        "{CONFIRM_PREFIX}/{public_hex}/{}/{}/{}/{}",
        names.tenant, names.site, names.device, names.stream
    )
}

/// The chain unit a confirmation key names, and the replica key hex it names; `None` for any
/// other key.
pub fn parse_confirm_key(key: &str) -> Option<(String, Names)> {
    let mut parts = key.split('/');
    if parts.next()? != CONFIRM_PREFIX {
        return None;
    }
    let replica = parts.next()?.to_owned();
    let (tenant, site, device, stream) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    Some((replica, Names::new(tenant, site, device, stream).ok()?))
}

/// Confirmations kept per replica and chain unit until the owner can check them (a replica
/// a little ahead of the owner confirms records the owner has not committed yet).
const KEPT: usize = 64;

/// One chain unit's acknowledgement state at the owner.
#[derive(Debug, Default)]
struct UnitGate {
    /// The owner's own durable head: (sequence number, hash).
    own: Option<(u64, String)>,
    /// Each replica's recent confirmations (sequence number, hash), oldest first, in the order
    /// of [`Gate::replicas`].
    confirmed: Vec<std::collections::VecDeque<(u64, String)>>,
}

/// Decides what the owner may acknowledge: per chain unit, the lowest of its own durable head
/// and every replica's highest confirmation **that names the owner's own record**: the hash a
/// replica confirms for record n must be the hash the owner stored for n. The hashes chain, so
/// that one comparison covers records 1..n — and a stale confirmation (from before the device
/// started its chain over, or replayed) names other hashes and counts for nothing. Pure: the
/// owner feeds it its commits and the signed confirmations, and publishes what it returns.
pub struct Gate {
    replicas: Vec<VerifyingKey>,
    units: HashMap<String, UnitGate>,
}

/// An acknowledgement due to a device: its chain unit, the sequence number, that record's hash.
pub type Due = (Names, u64, String);

impl Gate {
    /// A gate waiting for every one of `replicas` (none: acknowledgements pass at once).
    pub fn new(replicas: Vec<VerifyingKey>) -> Gate {
        Gate {
            replicas,
            units: HashMap::new(),
        }
    }

    /// Whether any replica gates the acknowledgements.
    pub fn is_open(&self) -> bool {
        self.replicas.is_empty()
    }

    /// The owner committed `names`' unit up to `upto` (whose record hash is `hash`); returns
    /// the acknowledgement due now, if any. `hash_at(seq)` gives the owner's stored hash of an
    /// earlier record (when a replica lags, the acknowledgement names the replica's head).
    pub fn stored(
        &mut self,
        names: &Names,
        upto: u64,
        hash: &str,
        hash_at: impl Fn(u64) -> Option<String>,
    ) -> Option<Due> {
        if self.is_open() {
            return Some((names.clone(), upto, hash.to_owned()));
        }
        let n = self.replicas.len();
        let unit = self.unit(names, n);
        unit.own = Some((upto, hash.to_owned()));
        Self::due(names, unit, hash_at)
    }

    /// A replica's confirmation (its key, its signed acknowledgement); returns the
    /// acknowledgement due now, if any.
    ///
    /// Errors: the key is not a listed replica's, or the signature does not verify (a forged
    /// confirmation is refused and moves nothing).
    pub fn confirmed(
        &mut self,
        replica_hex: &str,
        names: &Names,
        ack: &Ack,
        hash_at: impl Fn(u64) -> Option<String>,
    ) -> Result<Option<Due>, &'static str> {
        let index = self
            .replicas
            .iter()
            .position(|k| hex::encode(k.as_bytes()) == replica_hex)
            .ok_or("not a listed replica")?;
        let hash = ack.verify(names, &self.replicas[index])?.to_owned();
        let n = self.replicas.len();
        let unit = self.unit(names, n);
        let kept = &mut unit.confirmed[index];
        if kept.len() == KEPT {
            kept.pop_front();
        }
        kept.push_back((ack.seq, hash));
        Ok(Self::due(names, unit, hash_at))
    }

    fn unit(&mut self, names: &Names, replicas: usize) -> &mut UnitGate {
        self.units
            .entry(names.ack_key())
            .or_insert_with(|| UnitGate {
                own: None,
                confirmed: vec![Default::default(); replicas],
            })
    }

    /// What may be acknowledged now; drops the confirmations that can no longer matter (those
    /// naming other records than the owner's, and those below the best one that names its own).
    fn due(
        names: &Names,
        unit: &mut UnitGate,
        hash_at: impl Fn(u64) -> Option<String>,
    ) -> Option<Due> {
        let (own_seq, own_hash) = unit.own.clone()?;
        let owners_hash = |seq: u64| {
            if seq == own_seq {
                Some(own_hash.clone())
            } else {
                hash_at(seq)
            }
        };
        let mut upto = own_seq;
        for kept in &mut unit.confirmed {
            // Checkable: at or below the owner's head. Wrong there: never useful again.
            kept.retain(|(seq, hash)| *seq > own_seq || owners_hash(*seq).as_ref() == Some(hash));
            let best = kept
                .iter()
                .filter(|(seq, _)| *seq <= own_seq)
                .map(|(seq, _)| *seq)
                .max()?;
            kept.retain(|(seq, _)| *seq >= best);
            upto = upto.min(best);
        }
        if upto == 0 {
            return None;
        }
        Some((names.clone(), upto, owners_hash(upto)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(device: &str) -> Names {
        Names::new("acme", "hq", device, "default").unwrap()
    }

    fn hash(seq: u64) -> String {
        format!("{seq:064x}")
    }

    fn replica() -> veil_wire::DeviceKey {
        veil_wire::DeviceKey::generate().unwrap()
    }

    fn public(key: &veil_wire::DeviceKey) -> VerifyingKey {
        veil_wire::checkpoint::parse_public_key(&key.public_hex()).unwrap()
    }

    #[test]
    fn without_replicas_every_commit_is_acknowledged_at_once() {
        let mut gate = Gate::new(Vec::new());
        let due = gate.stored(&names("cam-1"), 7, &hash(7), |_| None);
        assert_eq!(due, Some((names("cam-1"), 7, hash(7))));
    }

    #[test]
    fn the_owner_acknowledges_the_lowest_of_its_head_and_every_replicas() {
        let (r1, r2) = (replica(), replica());
        let mut gate = Gate::new(vec![public(&r1), public(&r2)]);
        let n = names("cam-1");
        let at = |seq| Some(hash(seq));
        // Stored by the owner alone: nothing.
        assert_eq!(gate.stored(&n, 10, &hash(10), at), None);
        // One replica at 8: still waiting for the other.
        let c = r1.sign_ack(&n, 8, &hash(8));
        assert_eq!(gate.confirmed(&r1.public_hex(), &n, &c, at), Ok(None));
        // The other at 9, then at 12 (ahead of the owner: not checkable yet): the lowest
        // checked, 8, with the owner's hash of 8.
        let c = r2.sign_ack(&n, 9, &hash(9));
        assert_eq!(
            gate.confirmed(&r2.public_hex(), &n, &c, at),
            Ok(Some((n.clone(), 8, hash(8))))
        );
        let c = r2.sign_ack(&n, 12, &hash(12));
        assert_eq!(
            gate.confirmed(&r2.public_hex(), &n, &c, at),
            Ok(Some((n.clone(), 8, hash(8))))
        );
        // The first replica catches up with the owner: the other's 9 is the lowest now.
        let c = r1.sign_ack(&n, 10, &hash(10));
        assert_eq!(
            gate.confirmed(&r1.public_hex(), &n, &c, at),
            Ok(Some((n.clone(), 9, hash(9))))
        );
        // The owner reaches 12: the other's 12 is checked now; the first's 10 is the lowest.
        assert_eq!(
            gate.stored(&n, 12, &hash(12), at),
            Some((n.clone(), 10, hash(10)))
        );
        // Units are separate: another camera's commit waits for its own confirmations.
        assert_eq!(gate.stored(&names("cam-2"), 3, &hash(3), at), None);
        // A replica that restarted confirms less: what it confirmed once still counts.
        let c = r1.sign_ack(&n, 4, &hash(4));
        assert_eq!(
            gate.confirmed(&r1.public_hex(), &n, &c, at),
            Ok(Some((n.clone(), 10, hash(10))))
        );
    }

    #[test]
    fn a_confirmation_naming_another_record_than_the_owners_counts_for_nothing() {
        // The device started its chain over: the owner's record 5 is a new one; the replica's
        // stale confirmation of 500 (the old chain) and a replayed one of 5 with the old hash
        // do not open anything; its confirmation of the new 5 does.
        let r1 = replica();
        let mut gate = Gate::new(vec![public(&r1)]);
        let n = names("cam-1");
        let new = |seq: u64| format!("{:064x}", seq + 1_000);
        let at = |seq: u64| Some(new(seq));
        for stale in [
            r1.sign_ack(&n, 500, &hash(500)),
            r1.sign_ack(&n, 5, &hash(5)),
        ] {
            assert_eq!(gate.confirmed(&r1.public_hex(), &n, &stale, at), Ok(None));
        }
        assert_eq!(gate.stored(&n, 5, &new(5), at), None);
        let c = r1.sign_ack(&n, 5, &new(5));
        assert_eq!(
            gate.confirmed(&r1.public_hex(), &n, &c, at),
            Ok(Some((n.clone(), 5, new(5))))
        );
    }

    #[test]
    fn a_forged_or_unlisted_confirmation_moves_nothing() {
        let (r1, stranger) = (replica(), replica());
        let mut gate = Gate::new(vec![public(&r1)]);
        let n = names("cam-1");
        let at = |seq| Some(hash(seq));
        assert_eq!(gate.stored(&n, 5, &hash(5), at), None);
        // Signed by a key nobody listed, under the listed replica's name: refused.
        let forged = stranger.sign_ack(&n, 5, &hash(5));
        assert!(gate.confirmed(&r1.public_hex(), &n, &forged, at).is_err());
        assert!(
            gate.confirmed(&stranger.public_hex(), &n, &forged, at)
                .is_err()
        );
        // Signed for another chain unit: refused.
        let elsewhere = r1.sign_ack(&names("cam-9"), 5, &hash(5));
        assert!(
            gate.confirmed(&r1.public_hex(), &n, &elsewhere, at)
                .is_err()
        );
        // Control: the listed replica's own confirmation opens it.
        let c = r1.sign_ack(&n, 5, &hash(5));
        assert_eq!(
            gate.confirmed(&r1.public_hex(), &n, &c, at),
            Ok(Some((n, 5, hash(5))))
        );
    }

    #[test]
    fn a_replica_vouching_for_another_record_gets_no_acknowledgement_out() {
        let r1 = replica();
        let mut gate = Gate::new(vec![public(&r1)]);
        let n = names("cam-1");
        assert_eq!(gate.stored(&n, 5, &hash(5), |s| Some(hash(s))), None);
        let c = r1.sign_ack(&n, 5, &hash(99));
        assert_eq!(
            gate.confirmed(&r1.public_hex(), &n, &c, |s| Some(hash(s))),
            Ok(None)
        );
    }

    #[test]
    fn confirmation_keys_round_trip_and_other_keys_are_not_confirmations() {
        let n = names("cam-1");
        let key = confirm_key(&"ab".repeat(32), &n);
        assert_eq!(parse_confirm_key(&key), Some(("ab".repeat(32), n)));
        assert_eq!(parse_confirm_key("veil-ack/acme/hq/cam-1/default"), None);
        assert_eq!(parse_confirm_key("veil-replica/ab/acme/hq/cam-1"), None);
        assert_eq!(
            parse_confirm_key("veil-replica/ab/acme/hq/cam-1/default/extra"),
            None
        );
    }
}
