// SPDX-License-Identifier: MIT OR Apache-2.0
//! Taking records in: validate, check the names agree, deduplicate, verify the chain, stage
//! until a trusted checkpoint vouches for them, then store them as valid. Everything else is
//! quarantined with a reason and counted; nothing a device sends stops the service.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;
use veil_wire::checkpoint::Checkpoint;
use veil_wire::event::IntegrityEvent;
use veil_wire::{ChainUnit, ChainVerifier, Kind, Names, Record};

use crate::config::{Limits, TrustConfig, TrustMode};
use crate::store::{Entry, Store, UnitState, record_key, seq_key};

#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub received: u64,
    pub stored: u64,
    pub staged: u64,
    pub detections: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub quarantined: u64,
    pub malformed: u64,
    pub oversized: u64,
    pub spoofed: u64,
    pub chain_errors: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Staged,
    Stored,
    Duplicate,
    Pending,
    Quarantined(String),
}

struct Unit {
    names: Names,
    /// Where the unit is stored (its chain epoch included).
    uid: crate::store::UnitId,
    state: UnitState,
    verifier: ChainVerifier,
    /// Records ahead of a missing one, held until it arrives (not durable, not acknowledged).
    pending: BTreeMap<u64, (Record, Vec<u8>)>,
    dirty: bool,
    /// A record conflicting with a stored one arrived: no acknowledgement for this unit, so a
    /// device that lost its spool and started over does not drop records the store never had.
    conflict: bool,
    last_error_seq: Option<u64>,
    /// Since when records wait behind a missing one, and whether that was reported.
    gap_since: Option<std::time::Instant>,
    gap_reported: bool,
}

pub struct Ingest {
    store: Arc<Store>,
    trust: TrustConfig,
    limits: Limits,
    units: HashMap<ChainUnit, Unit>,
    touched: Vec<ChainUnit>,
    /// Each device's enrollment (enrollment changes need the store unserved, so it holds for
    /// this process).
    enrollments: HashMap<(String, String), Option<crate::devices::Enrollment>>,
    /// Devices already reported as refused (one integrity event each, not one per record).
    refused: std::collections::HashSet<(String, String, String)>,
    pub stats: Stats,
}

type Result<T> = anyhow::Result<T>;

/// An integrity event's body with the site and chain epoch it is about, so that station scopes
/// and webhooks place it without guessing.
fn located(event: IntegrityEvent, site: &str, epoch: u32) -> serde_json::Value {
    let mut body = event.body();
    if let Some(fields) = body.as_object_mut() {
        fields.insert("site".into(), site.into());
        fields.insert("chain_epoch".into(), epoch.into());
    }
    body
}

impl Ingest {
    pub fn new(store: Arc<Store>, trust: TrustConfig, limits: Limits) -> Ingest {
        Ingest {
            store,
            trust,
            limits,
            units: HashMap::new(),
            touched: Vec::new(),
            enrollments: HashMap::new(),
            refused: Default::default(),
            stats: Stats::default(),
        }
    }

    /// The stored hash (hex) of record `seq` of `names`' chain unit, when it is stored and live
    /// (kept as valid or staged; not deleted by retention, not quarantined) and the unit was
    /// seen in this run.
    pub fn hash_at(&self, names: &Names, seq: u64) -> Option<String> {
        let id = names.unit();
        let unit = self.units.get(&id)?;
        let entry = self
            .store
            .tree("index", &id.tenant)
            .ok()?
            .get(seq_key(&unit.uid, seq))
            .ok()??;
        match Entry::decode(&entry)? {
            Entry::Live(hash, _) => Some(hex::encode(hash)),
            _ => None,
        }
    }

    /// Chain units with records taken since the last commit.
    pub fn staged(&self) -> usize {
        self.touched.len()
    }

    /// Takes one published payload. Errors are the store's (disk), never the payload's.
    pub fn take(&mut self, key_expr: &str, payload: &[u8]) -> Result<Outcome> {
        self.stats.received += 1;
        if payload.len() > self.limits.max_payload_bytes {
            self.stats.oversized += 1;
            let reason = format!(
                "oversized: {} bytes, the limit is {}",
                payload.len(),
                self.limits.max_payload_bytes
            );
            return self.reject(&reason, key_expr, payload);
        }
        let record = match Record::from_slice(payload) {
            Ok(r) => r,
            Err(e) => {
                self.stats.malformed += 1;
                return self.reject(&format!("malformed: {e}"), key_expr, payload);
            }
        };
        let Some((names, kind)) = Names::parse_record_key(key_expr) else {
            self.stats.malformed += 1;
            return self.reject(
                "key expression is not veil/<tenant>/<site>/<device>/<stream>/<kind>",
                key_expr,
                payload,
            );
        };
        if record.names().ok().as_ref() != Some(&names) || kind != record.kind.as_str() {
            self.stats.spoofed += 1;
            let reason = format!(
                "the key expression names {}/{}/{}/{}/{kind}, the record {}/{}/{}/{}/{}",
                names.tenant,
                names.site,
                names.device,
                names.stream,
                record.tenant,
                record.site,
                record.device,
                record.stream,
                record.kind.as_str()
            );
            self.store.integrity_event(
                &names.tenant,
                IntegrityEvent::NamesDisagree {
                    key_expr: key_expr.to_owned(),
                    reason: reason.clone(),
                }
                .body(),
            )?;
            return self.reject(&reason, key_expr, payload);
        }
        if self.trust.mode == TrustMode::Enrolled
            && let Err(reason) = self.admitted(&names)?
        {
            self.stats.spoofed += 1;
            let once = (names.tenant.clone(), names.device.clone(), reason.clone());
            if self.refused.insert(once) {
                let event = IntegrityEvent::UntrustedKey {
                    device: names.device.clone(),
                    stream: names.stream.clone(),
                    seq: record.seq,
                    reason: reason.clone(),
                };
                self.store
                    .integrity_event(&names.tenant, located(event, &names.site, 0))?;
            }
            return self.reject(&reason, key_expr, payload);
        }
        let unit_id = names.unit();
        self.load(&unit_id, &names)?;
        // A chain is of one site: what it stores (per-frame boxes included) is filtered and
        // scoped by that site.
        let (chain_site, epoch) = {
            let state = &self.unit(&unit_id).state;
            (state.site.clone(), state.epoch)
        };
        if record.site != chain_site {
            self.stats.spoofed += 1;
            let reason = format!(
                "record {} names site {}, its chain is of site {chain_site}",
                record.seq, record.site
            );
            let event = IntegrityEvent::Chain {
                device: names.device.clone(),
                stream: names.stream.clone(),
                seq: record.seq,
                reason: reason.clone(),
            };
            self.store
                .integrity_event(&names.tenant, located(event, &chain_site, epoch))?;
            return self.reject(&reason, key_expr, payload);
        }
        if !record.kind.chained() {
            let key = record_key(
                &self.uid(&unit_id),
                record.kind.as_str(),
                capture_ns(&record),
                record.seq,
            );
            self.store.put(&record.tenant, "records", &key, payload)?;
            self.stats.detections += 1;
            return Ok(Outcome::Stored);
        }
        if !self.touched.contains(&unit_id) {
            self.touched.push(unit_id.clone());
        }
        let next = self.unit(&unit_id).state.chain.next_seq;
        if record.seq < next {
            return self.duplicate(&unit_id, &record, key_expr, payload);
        }
        if record.seq > next {
            let max = self.limits.max_out_of_order;
            let unit = self.unit_mut(&unit_id);
            if unit.pending.len() < max {
                unit.pending.insert(record.seq, (record, payload.to_vec()));
            }
            self.stats.out_of_order += 1;
            return Ok(Outcome::Pending);
        }
        let outcome = self.apply(&unit_id, record, payload.to_vec())?;
        // What was waiting for this one.
        loop {
            let unit = self.unit_mut(&unit_id);
            let next = unit.state.chain.next_seq;
            unit.pending.retain(|&s, _| s >= next);
            let Some((record, bytes)) = unit.pending.remove(&next) else {
                break;
            };
            self.apply(&unit_id, record, bytes)?;
        }
        Ok(outcome)
    }

    fn reject(&mut self, reason: &str, key_expr: &str, payload: &[u8]) -> Result<Outcome> {
        self.stats.quarantined += 1;
        self.store.quarantine(
            reason,
            key_expr,
            payload,
            self.limits.max_payload_bytes.min(64 << 10),
        )?;
        Ok(Outcome::Quarantined(reason.to_owned()))
    }

    fn unit(&self, id: &ChainUnit) -> &Unit {
        &self.units[id]
    }

    fn unit_mut(&mut self, id: &ChainUnit) -> &mut Unit {
        self.units.get_mut(id).expect("unit loaded")
    }

    /// Where a loaded unit is stored.
    fn uid(&self, id: &ChainUnit) -> crate::store::UnitId {
        self.unit(id).uid
    }

    /// The device's enrollment, if any (cached).
    fn enrollment(
        &mut self,
        tenant: &str,
        device: &str,
    ) -> Result<Option<&crate::devices::Enrollment>> {
        let key = (tenant.to_owned(), device.to_owned());
        if !self.enrollments.contains_key(&key) {
            let e = crate::devices::get(&self.store, tenant, device)?;
            self.enrollments.insert(key.clone(), e);
        }
        Ok(self.enrollments[&key].as_ref())
    }

    /// The device's current chain epoch (0 unless re-keyed with a new chain).
    fn epoch(&mut self, tenant: &str, device: &str) -> Result<u32> {
        Ok(self
            .enrollment(tenant, device)?
            .map_or(0, |e| e.chain_epoch))
    }

    /// Under enrollment, whether a record of these names may be taken at all
    /// ([`crate::devices::admits`]). Refused records are quarantined before anything is stored
    /// for them — no tenant, unit or acknowledgement, so a device waiting for its enrollment
    /// keeps its spool.
    fn admitted(&mut self, names: &Names) -> Result<std::result::Result<(), String>> {
        let enrollment = self.enrollment(&names.tenant, &names.device)?;
        Ok(crate::devices::admits(
            enrollment,
            &names.tenant,
            &names.device,
            &names.site,
        ))
    }

    fn load(&mut self, id: &ChainUnit, names: &Names) -> Result<()> {
        if self.units.contains_key(id) {
            return Ok(());
        }
        let epoch = self.epoch(&id.tenant, &id.device)?;
        let state = self
            .store
            .unit_state(&id.tenant, &id.device, &id.stream, epoch)?
            .unwrap_or_else(|| UnitState {
                device: id.device.clone(),
                stream: id.stream.clone(),
                epoch,
                site: names.site.clone(),
                ..Default::default()
            });
        let uid = self.store.unit_of(&id.tenant, &state);
        let verifier = ChainVerifier::resume(id.clone(), state.chain.clone());
        // Acknowledgements go to the chain's site, whatever site the record that loaded the
        // unit named (a refused one may have named another).
        let mut names = names.clone();
        names.site.clone_from(&state.site);
        self.units.insert(
            id.clone(),
            Unit {
                names,
                uid,
                state,
                verifier,
                pending: BTreeMap::new(),
                dirty: false,
                conflict: false,
                last_error_seq: None,
                gap_since: None,
                gap_reported: false,
            },
        );
        Ok(())
    }

    fn duplicate(
        &mut self,
        id: &ChainUnit,
        record: &Record,
        key_expr: &str,
        payload: &[u8],
    ) -> Result<Outcome> {
        let entry = self
            .store
            .tree("index", &id.tenant)?
            .get(seq_key(&self.uid(id), record.seq))?
            .and_then(|v| Entry::decode(&v));
        let same = match &entry {
            Some(e) => hex::encode(e.hash()) == record.hash,
            // Before the retention cut: nothing left to compare with.
            None => record.seq < self.store.cut(&id.tenant, &self.uid(id))?.next_seq,
        };
        if same {
            self.stats.duplicates += 1;
            return Ok(Outcome::Duplicate);
        }
        self.unit_mut(id).conflict = true;
        self.stats.chain_errors += 1;
        let reason = format!(
            "record {} conflicts with the one stored under that number (a device that started over?)",
            record.seq
        );
        let event = IntegrityEvent::Conflict {
            device: id.device.clone(),
            stream: id.stream.clone(),
            seq: record.seq,
            reason: reason.clone(),
        };
        let state = &self.unit(id).state;
        let body = located(event, &state.site, state.epoch);
        self.store.integrity_event(&id.tenant, body)?;
        self.reject(&reason, key_expr, payload)
    }

    fn apply(&mut self, id: &ChainUnit, record: Record, bytes: Vec<u8>) -> Result<Outcome> {
        let store = self.store.clone();
        let before = self.unit(id).verifier.state().clone();
        if let Err(e) = self.unit_mut(id).verifier.push(&record) {
            self.stats.chain_errors += 1;
            let unit = self.unit_mut(id);
            if unit.last_error_seq != Some(record.seq) {
                unit.last_error_seq = Some(record.seq);
                let event = IntegrityEvent::Chain {
                    device: id.device.clone(),
                    stream: id.stream.clone(),
                    seq: e.seq,
                    reason: e.reason.clone(),
                };
                let state = &self.unit(id).state;
                store.integrity_event(&id.tenant, located(event, &state.site, state.epoch))?;
            }
            let key_expr = record.key_expr();
            return self.reject(&e.to_string(), &key_expr, &bytes);
        }
        let hash = digest(&record.hash);
        let index = store.tree("index", &id.tenant)?;
        let outcome = if record.kind == Kind::Checkpoint {
            let cp: Checkpoint = serde_json::from_value(record.body.clone())?;
            match self.trusted(&id.tenant, &record.site, &id.device, &cp.public_key)? {
                Ok(()) => {
                    // The staged records up to it become valid by the chain state alone.
                    self.store_record(id, &record, &bytes)?;
                    if cp.seq > before.signed_upto {
                        store.notice(crate::notice::Notice::Valid {
                            tenant: id.tenant.clone(),
                            device: id.device.clone(),
                            stream: id.stream.clone(),
                            epoch: self.unit(id).state.epoch,
                            from: before.signed_upto + 1,
                            to: cp.seq,
                        });
                    }
                    // Newly valid: the records after the previous checkpoint's own record
                    // (which lies just above what it signed, and was counted with it) up to
                    // this one. Counting `1 + cp.seq - signed_upto` counted each earlier
                    // checkpoint record twice.
                    let counted = match before.signed_upto {
                        0 => 0,
                        signed => signed + 1,
                    };
                    self.stats.stored += record.seq.saturating_sub(counted);
                    Outcome::Stored
                }
                Err(reason) => {
                    // The chain holds together, but not for this tenant: set all of it aside.
                    self.stats.spoofed += 1;
                    let reason = format!("untrusted checkpoint {}: {reason}", record.seq);
                    let event = IntegrityEvent::UntrustedKey {
                        device: id.device.clone(),
                        stream: id.stream.clone(),
                        seq: record.seq,
                        reason: reason.clone(),
                    };
                    let state = &self.unit(id).state;
                    store.integrity_event(&id.tenant, located(event, &state.site, state.epoch))?;
                    self.set_aside(id, before.signed_upto + 1, cp.seq, &reason)?;
                    index.insert(
                        seq_key(&self.uid(id), record.seq),
                        Entry::Quarantined(hash).encode(),
                    )?;
                    let key_expr = record.key_expr();
                    self.reject(&reason, &key_expr, &bytes)?;
                    let unit = self.unit_mut(id);
                    let mut state = unit.verifier.state().clone();
                    state.signed_upto = before.signed_upto;
                    unit.verifier = ChainVerifier::resume(id.clone(), state);
                    Outcome::Quarantined(reason)
                }
            }
        } else {
            self.store_record(id, &record, &bytes)?;
            self.stats.staged += 1;
            Outcome::Staged
        };
        let unit = self.unit_mut(id);
        unit.state.chain = unit.verifier.state().clone();
        unit.dirty = true;
        Ok(outcome)
    }

    fn trusted(
        &self,
        tenant: &str,
        site: &str,
        device: &str,
        key: &str,
    ) -> Result<std::result::Result<(), String>> {
        if self
            .trust
            .tenants
            .get(tenant)
            .is_some_and(|keys| keys.iter().any(|k| k == key))
        {
            return Ok(Ok(()));
        }
        if let Some((other, _)) = self
            .trust
            .tenants
            .iter()
            .find(|(_, keys)| keys.iter().any(|k| k == key))
        {
            return Ok(Err(format!("signed by a key pinned for tenant {other}")));
        }
        match self.trust.mode {
            TrustMode::Pinned => Ok(Err(format!(
                "signed by a key not pinned for tenant {tenant}"
            ))),
            TrustMode::Tofu => self.store.pin_key(tenant, device, key),
            TrustMode::Enrolled => crate::devices::judge(&self.store, tenant, site, device, key),
        }
    }

    /// Writes a chained record at its final place (valid once a trusted checkpoint covers it).
    fn store_record(&mut self, id: &ChainUnit, record: &Record, bytes: &[u8]) -> Result<()> {
        let rkey = record_key(
            &self.uid(id),
            record.kind.as_str(),
            capture_ns(record),
            record.seq,
        );
        self.store.put(&id.tenant, "records", &rkey, bytes)?;
        self.store.tree("index", &id.tenant)?.insert(
            seq_key(&self.uid(id), record.seq),
            Entry::Live(digest(&record.hash), rkey).encode(),
        )?;
        Ok(())
    }

    /// Staged records `from..=to` go to the quarantine.
    fn set_aside(&mut self, id: &ChainUnit, from: u64, to: u64, reason: &str) -> Result<()> {
        let records = self.store.tree("records", &id.tenant)?;
        let index = self.store.tree("index", &id.tenant)?;
        for seq in from..=to {
            let key = seq_key(&self.uid(id), seq);
            let Some(Entry::Live(hash, rkey)) = index.get(&key)?.and_then(|v| Entry::decode(&v))
            else {
                continue;
            };
            if let Some(bytes) = self.store.get(&id.tenant, "records", &rkey)? {
                let key_expr = Record::from_slice(&bytes)
                    .map(|r| r.key_expr())
                    .unwrap_or_default();
                self.reject(reason, &key_expr, &bytes)?;
            }
            // Index first: a crash in between leaves a quarantined entry, never a valid one.
            index.insert(&key, Entry::Quarantined(hash).encode())?;
            records.remove(&rkey)?;
        }
        Ok(())
    }

    /// Saves the chain states, makes everything durable, and returns the acknowledgements due:
    /// per unit touched, the highest contiguous sequence number durably taken.
    /// Flushes, then the acknowledgements due: per chain unit touched, the highest contiguous
    /// sequence number taken and that record's hash (the chain's head).
    pub fn commit(&mut self) -> Result<Vec<(Names, u64, String)>> {
        self.report_gaps()?;
        for unit in self.units.values_mut().filter(|u| u.dirty) {
            let n = &unit.names;
            self.store
                .set_unit_state(&n.tenant, &n.device, &n.stream, &unit.state)?;
            unit.dirty = false;
        }
        // Webhook deliveries land with the records that caused them (same flush).
        let notices = self.store.take_notices();
        if !notices.is_empty()
            && let Err(e) = crate::webhooks::dispatch(&self.store, notices)
        {
            tracing::error!("webhooks: could not queue deliveries: {e:#}");
        }
        self.store.flush()?;
        let mut acks = Vec::new();
        for id in self.touched.drain(..) {
            if let Some(unit) = self.units.get_mut(&id) {
                let upto = unit.state.chain.next_seq - 1;
                if !std::mem::take(&mut unit.conflict) && upto > 0 {
                    acks.push((unit.names.clone(), upto, unit.state.chain.head.clone()));
                }
            }
        }
        Ok(acks)
    }
}

impl Ingest {
    /// Gaps that stay open (the device does not fill them) become integrity events, once each.
    fn report_gaps(&mut self) -> Result<()> {
        let after = std::time::Duration::from_millis(self.limits.gap_report_ms);
        for unit in self.units.values_mut() {
            let Some((&first_held, _)) = unit.pending.first_key_value() else {
                unit.gap_since = None;
                unit.gap_reported = false;
                continue;
            };
            let since = *unit.gap_since.get_or_insert_with(std::time::Instant::now);
            if !unit.gap_reported && since.elapsed() >= after {
                unit.gap_reported = true;
                self.stats.chain_errors += 1;
                let n = &unit.names;
                let missing = (unit.state.chain.next_seq, first_held - 1);
                self.store.integrity_event(
                    &n.tenant,
                    located(
                        IntegrityEvent::Gap {
                            device: n.device.clone(),
                            stream: n.stream.clone(),
                            seq: missing.0,
                            reason: format!(
                                "records {}..{} missing, {} held behind them",
                                missing.0,
                                missing.1,
                                unit.pending.len()
                            ),
                        },
                        &unit.state.site,
                        unit.state.epoch,
                    ),
                )?;
            }
        }
        Ok(())
    }
}

fn digest(hex_hash: &str) -> [u8; 32] {
    hex::decode(hex_hash)
        .ok()
        .and_then(|b| b.try_into().ok())
        .unwrap_or([0; 32])
}

pub fn capture_ns(record: &Record) -> u64 {
    veil_wire::record::parse_time(&record.capture_time).unwrap_or(0)
}
