// SPDX-License-Identifier: MIT OR Apache-2.0
//! One front door for reads: the HTTPS API of any service answers for a tenant that other
//! services own (wholly or in part), by asking every owner over Zenoh.
//!
//! When the tenant's whole key space (`veil/<tenant>/**`) lies inside one of this service's
//! owned sets, the API reads its own store, as it always did. Otherwise it sends one history
//! query (`veil/<tenant>/*/*/*/<kind>`, [`crate::query`]) through the routers with the caller's
//! own API key as the attachment — each owner checks that key itself (import it with
//! `sink-service api-keys import`) and answers only what it owns ([`crate::serve`]) — and builds
//! the answer from the union of the records: pages are cut and roll-ups computed over the
//! union, so several owners' windows are merged, not concatenated.
//!
//! The reads that are not record listings (streams, integrity alerts, images) go the same way
//! with an `api=` parameter ([`crate::api::forwarded`]): each owner puts its items in its
//! answered marker.
//!
//! Partial answers are refused, not served: every owner announcing a set that intersects the
//! query (their liveliness tokens, [`crate::ownership`]) must say it answered (a reply on
//! `veil-store/answered/<store id>/<hex of its set>` after its records), else the request fails
//! with 504 naming the silent owner; an owner's refusal (a key it does not know, a scope it
//! lacks) becomes 502 with its reason.

use std::collections::BTreeSet;
use std::time::Duration;

use zenoh::Wait;
use zenoh::key_expr::{KeyExpr, OwnedKeyExpr};

use crate::ownership::{Claim, Role, TOKEN_PREFIX};

/// Where an owner says it answered a federated query.
pub const ANSWERED_PREFIX: &str = "veil-store/answered";

/// The selector parameter asking owners to say they answered.
pub const ANSWERED_PARAMETER: &str = "answered";

/// `veil-store/answered/<store id>/<hex of the owned set>`.
pub fn answered_key(store: &str, owned: &OwnedKeyExpr) -> String {
    format!("{ANSWERED_PREFIX}/{store}/{}", hex::encode(owned.as_str()))
}

/// Whether `owned` holds every record key of `tenant` (the API then reads its own store).
pub fn covers(owned: &[OwnedKeyExpr], tenant: &str) -> bool {
    let Ok(all) = KeyExpr::try_from(format!("veil/{tenant}/**")) else {
        return false;
    };
    owned.iter().any(|o| o.includes(&all))
}

/// The owners this service has heard announce a set since it started, present or gone: a
/// read must hear from each one whose set intersects it. An owner that withdrew (stopped,
/// crashed, cut off) stays expected — its records exist, unreachable — until another store
/// announces the same set (a replacement, a rebuilt store) or this service restarts.
#[derive(Debug, Default)]
pub struct Owners {
    /// (store id, owned set) → whether its announcement is present now.
    known: std::collections::HashMap<(String, OwnedKeyExpr), bool>,
}

impl Owners {
    /// A store announced `claim` (owners only; other roles are ignored).
    pub fn announced(&mut self, claim: &Claim) {
        if claim.role != Role::Owner {
            return;
        }
        // A gone owner of the same set is replaced by this one.
        self.known.retain(|(store, set), present| {
            *present || *set != claim.key_expr || *store == claim.store
        });
        self.known
            .insert((claim.store.clone(), claim.key_expr.clone()), true);
    }

    /// `claim`'s announcement was withdrawn.
    pub fn withdrawn(&mut self, claim: &Claim) {
        if let Some(present) = self
            .known
            .get_mut(&(claim.store.clone(), claim.key_expr.clone()))
        {
            *present = false;
        }
    }

    /// The owners (store id, hex of the set) whose sets intersect `query`.
    pub fn expected(&self, query: &KeyExpr<'_>) -> BTreeSet<(String, String)> {
        self.known
            .keys()
            .filter(|(_, set)| set.intersects(query))
            .map(|(store, set)| (store.clone(), hex::encode(set.as_str())))
            .collect()
    }
}

/// Why a federated read failed.
#[derive(Debug, PartialEq, Eq)]
pub enum Unanswered {
    /// An owner refused (its reason, as it said it).
    Refused(String),
    /// Owners that announced part of the key space and did not answer: (store id, set).
    Silent(Vec<(String, String)>),
}

impl std::fmt::Display for Unanswered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unanswered::Refused(reason) => {
                write!(f, "an owner of part of this tenant refused: {reason}")
            }
            Unanswered::Silent(owners) => {
                let named: Vec<String> = owners
                    .iter()
                    .map(|(store, set)| {
                        let set = hex::decode(set)
                            .ok()
                            .and_then(|b| String::from_utf8(b).ok())
                            .unwrap_or_else(|| set.clone());
                        format!("{set} (store {store})")
                    })
                    .collect();
                write!(
                    f,
                    "no answer from the owner of {}: not serving a partial answer; try again",
                    named.join(", ")
                )
            }
        }
    }
}

/// What a federated query heard: records, owners that answered (with what their answered
/// markers carried: a forwarded read's items), refusals.
#[derive(Debug, Default)]
pub struct Heard {
    pub records: Vec<Vec<u8>>,
    pub answered: BTreeSet<(String, String)>,
    /// What each (store id, hex of the set) put in its answered marker.
    pub documents: std::collections::BTreeMap<(String, String), Vec<u8>>,
    pub refusals: Vec<String>,
}

impl Heard {
    /// What was heard, when every expected owner answered and none refused.
    pub fn complete(self, expected: &BTreeSet<(String, String)>) -> Result<Heard, Unanswered> {
        if let Some(reason) = self.refusals.first() {
            return Err(Unanswered::Refused(reason.clone()));
        }
        let silent: Vec<(String, String)> = expected.difference(&self.answered).cloned().collect();
        if !silent.is_empty() {
            return Err(Unanswered::Silent(silent));
        }
        Ok(self)
    }
}

/// The Zenoh side of the front door.
pub struct Federation {
    session: zenoh::Session,
    pub owned: Vec<OwnedKeyExpr>,
    timeout: Duration,
    owners: std::sync::Arc<std::sync::Mutex<Owners>>,
    _watcher: zenoh::pubsub::Subscriber<()>,
}

impl Federation {
    /// Starts watching the owners' announcements (those already made included).
    ///
    /// Errors: Zenoh's (declaring the liveliness subscriber).
    pub fn start(
        session: &zenoh::Session,
        owned: Vec<OwnedKeyExpr>,
        timeout: Duration,
    ) -> anyhow::Result<Federation> {
        let owners: std::sync::Arc<std::sync::Mutex<Owners>> = Default::default();
        let seen = owners.clone();
        let watcher = session
            .liveliness()
            .declare_subscriber(format!("{TOKEN_PREFIX}/**"))
            .history(true)
            .callback(move |sample| {
                let Some(claim) = crate::ownership::parse_token(sample.key_expr().as_str()) else {
                    return;
                };
                if let Ok(mut owners) = seen.lock() {
                    match sample.kind() {
                        zenoh::sample::SampleKind::Put => owners.announced(&claim),
                        zenoh::sample::SampleKind::Delete => owners.withdrawn(&claim),
                    }
                }
            })
            .wait()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Federation {
            session: session.clone(),
            owned,
            timeout,
            owners,
            _watcher: watcher,
        })
    }

    /// The valid records of `tenant` and `kind` with capture time in `[from, to)` from every
    /// owner, read with `token` (the caller's API key).
    ///
    /// Errors: [`Unanswered`] (as the reason of a 502 or 504), or Zenoh's own (a 503).
    pub fn gather(
        &self,
        tenant: &str,
        kind: veil_wire::Kind,
        from: u64,
        to: u64,
        token: &str,
    ) -> anyhow::Result<Result<Vec<Vec<u8>>, Unanswered>> {
        let query = format!("veil/{tenant}/*/*/*/{}", kind.as_str());
        let heard = self.ask(&query, &format!("from={from};to={to}"), token)?;
        Ok(heard.map(|h| h.records))
    }

    /// A forwarded read ([`crate::api::forwarded`]) of `tenant`: every owner's items, as JSON
    /// arrays, unmerged.
    ///
    /// Errors: as [`Federation::gather`]'s.
    pub fn forward(
        &self,
        tenant: &str,
        parameters: &str,
        token: &str,
    ) -> anyhow::Result<Result<Vec<serde_json::Value>, Unanswered>> {
        let heard = match self.ask(&format!("veil/{tenant}/**"), parameters, token)? {
            Ok(heard) => heard,
            Err(unanswered) => return Ok(Err(unanswered)),
        };
        let mut items = Vec::new();
        // An owner that answered without a document does not know forwarded reads (an older
        // version answering a history query): its part is missing, not empty.
        if let Some((store, set)) = heard
            .answered
            .iter()
            .find(|owner| !heard.documents.contains_key(*owner))
        {
            return Ok(Err(Unanswered::Refused(format!(
                "store {store} (set {}) does not answer forwarded reads: upgrade it",
                String::from_utf8(hex::decode(set).unwrap_or_default()).unwrap_or_default()
            ))));
        }
        for document in heard.documents.into_values() {
            match serde_json::from_slice::<Vec<serde_json::Value>>(&document) {
                Ok(mut part) => items.append(&mut part),
                Err(e) => {
                    return Ok(Err(Unanswered::Refused(format!(
                        "an owner's answer is not a JSON array: {e}"
                    ))));
                }
            }
        }
        Ok(Ok(items))
    }

    /// One query on `query` with `parameters` (and `answered`), the caller's key attached;
    /// what every owner of an intersecting set said.
    fn ask(
        &self,
        query: &str,
        parameters: &str,
        token: &str,
    ) -> anyhow::Result<Result<Heard, Unanswered>> {
        let zerr = |e: zenoh::Error| anyhow::anyhow!("{e}");
        let query = KeyExpr::try_from(query).map_err(zerr)?.into_owned();
        let expected = self
            .owners
            .lock()
            .map_err(|_| anyhow::anyhow!("the owners' list is poisoned"))?
            .expected(&query);
        let replies = self
            .session
            .get(format!("{query}?{parameters};{ANSWERED_PARAMETER}"))
            .attachment(token.as_bytes().to_vec())
            .consolidation(zenoh::query::ConsolidationMode::None)
            .accept_replies(zenoh::query::ReplyKeyExpr::Any)
            .timeout(self.timeout)
            .wait()
            .map_err(zerr)?;
        let mut heard = Heard::default();
        while let Ok(reply) = replies.recv() {
            match reply.result() {
                Ok(sample) => {
                    let key = sample.key_expr().as_str();
                    if let Some(rest) = key.strip_prefix(ANSWERED_PREFIX) {
                        let mut parts = rest.trim_start_matches('/').splitn(2, '/');
                        if let (Some(store), Some(set)) = (parts.next(), parts.next()) {
                            let owner = (store.to_owned(), set.to_owned());
                            let document = sample.payload().to_bytes();
                            if !document.is_empty() {
                                heard.documents.insert(owner.clone(), document.to_vec());
                            }
                            heard.answered.insert(owner);
                        }
                    } else if query.intersects(sample.key_expr()) {
                        heard.records.push(sample.payload().to_bytes().to_vec());
                    }
                }
                Err(refusal) => {
                    let reason =
                        String::from_utf8_lossy(&refusal.payload().to_bytes()).into_owned();
                    // Zenoh's own reply when the wait ran out: not a refusal, the owners that
                    // did not answer are named as silent.
                    if reason != "Timeout" {
                        heard.refusals.push(reason);
                    }
                }
            }
        }
        Ok(heard.complete(&expected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ke(s: &str) -> OwnedKeyExpr {
        OwnedKeyExpr::autocanonize(s.to_owned()).unwrap()
    }

    fn claim(store: &str, set: &str) -> Claim {
        Claim {
            role: Role::Owner,
            store: store.to_owned(),
            started: 1,
            key_expr: ke(set),
        }
    }

    #[test]
    fn a_tenant_is_read_locally_only_when_an_owned_set_holds_all_of_it() {
        assert!(covers(&[ke("veil/**")], "acme"));
        assert!(covers(&[ke("veil/globex/**"), ke("veil/acme/**")], "acme"));
        // One site of acme is not all of acme; another tenant is not acme.
        assert!(!covers(&[ke("veil/acme/hq/**")], "acme"));
        assert!(!covers(&[ke("veil/globex/**")], "acme"));
        assert!(!covers(&[], "acme"));
    }

    #[test]
    fn every_owner_of_an_intersecting_set_must_answer_and_none_may_refuse() {
        let query = KeyExpr::try_from("veil/acme/*/*/*/metrics").unwrap();
        let claims = [
            claim("a", "veil/acme/hq/**"),
            claim("b", "veil/acme/shop/**"),
            claim("c", "veil/globex/**"),
        ];
        let mut owners = Owners::default();
        for c in &claims {
            owners.announced(c);
        }
        let expected = owners.expected(&query);
        let a = ("a".to_owned(), hex::encode("veil/acme/hq/**"));
        let b = ("b".to_owned(), hex::encode("veil/acme/shop/**"));
        assert_eq!(expected, [a.clone(), b.clone()].into());
        // Both answered: the union.
        let heard = Heard {
            records: vec![b"1".to_vec(), b"2".to_vec()],
            answered: [a.clone(), b.clone()].into(),
            documents: Default::default(),
            refusals: Vec::new(),
        };
        assert_eq!(heard.complete(&expected).unwrap().records.len(), 2);
        // B silent: refused, naming B's set and store.
        let heard = Heard {
            records: vec![b"1".to_vec()],
            answered: [a.clone()].into(),
            documents: Default::default(),
            refusals: Vec::new(),
        };
        let e = heard.complete(&expected).unwrap_err();
        assert_eq!(e, Unanswered::Silent(vec![b.clone()]));
        assert!(e.to_string().contains("veil/acme/shop/** (store b)"), "{e}");
        // A refusal wins over records.
        let heard = Heard {
            records: vec![b"1".to_vec()],
            answered: [a, b].into(),
            documents: Default::default(),
            refusals: vec!["401 unknown API key".to_owned()],
        };
        assert!(
            matches!(heard.complete(&expected), Err(Unanswered::Refused(r)) if r.contains("401"))
        );
    }

    #[test]
    fn a_gone_owner_stays_expected_until_another_store_announces_its_set() {
        let query = KeyExpr::try_from("veil/acme/*/*/*/metrics").unwrap();
        let mut owners = Owners::default();
        let (b, c) = (
            claim("b", "veil/acme/lab/**"),
            claim("c", "veil/acme/lab/**"),
        );
        owners.announced(&claim("a", "veil/acme/hq/**"));
        owners.announced(&b);
        owners.withdrawn(&b);
        let lab = hex::encode("veil/acme/lab/**");
        assert!(
            owners
                .expected(&query)
                .contains(&("b".to_owned(), lab.clone()))
        );
        // B back (a restart): still one entry for B.
        owners.announced(&b);
        assert_eq!(owners.expected(&query).len(), 2);
        // B gone for good, C (a rebuilt store) announces lab: C is expected, B no more.
        owners.withdrawn(&b);
        owners.announced(&c);
        let expected = owners.expected(&query);
        assert!(
            expected.contains(&("c".to_owned(), lab.clone())),
            "{expected:?}"
        );
        assert!(!expected.contains(&("b".to_owned(), lab)), "{expected:?}");
        // Another tenant's owner is never expected for acme.
        owners.announced(&claim("g", "veil/globex/**"));
        assert_eq!(owners.expected(&query).len(), 2);
    }
}
