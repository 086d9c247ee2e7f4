// SPDX-License-Identifier: MIT OR Apache-2.0
//! Which records a service owns, and how services tell each other over Zenoh.
//!
//! A service owns a set of key expressions (`[zenoh] owns = ["veil/acme/**"]`): it subscribes,
//! stores, acknowledges and answers history only there. Two services owning intersecting sets
//! would both acknowledge the same records (and a device keeping the highest acknowledgement
//! could drop what only the lagging one missed), so each service announces its set with Zenoh
//! liveliness tokens and refuses to start when its set intersects one another store announces.
//!
//! A token's key is `veil-store/<role>/<store id>/<started>/<hex of the owned key expression>`:
//! liveliness tokens carry no payload, and an owned set contains wildcards, which a token's key
//! may not; hex keeps it one plain chunk. The store id is [`crate::store::Store::id`]: stable
//! across restarts, different for every store (a copied store keeps its id: run one copy).
//! `started` (ns since the Unix epoch, when the process began serving) decides between two
//! stores that announce intersecting sets: the earlier one keeps them, the later one stops
//! (ties: the lower store id keeps them). Both sides read the same two keys, so they agree —
//! also when two start at the same moment, or when two halves of a mesh join.

use zenoh::key_expr::{KeyExpr, OwnedKeyExpr};

/// Where the tokens live.
pub const TOKEN_PREFIX: &str = "veil-store";

/// What a service is for the set it announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Stores, acknowledges and answers history for the set (at most one per set).
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        (s == "owner").then_some(Role::Owner)
    }
}

/// `serve` stopped because another store owns part of this one's key space (announced first).
/// The command line exits with [`OwnershipConflict::EXIT_CODE`], so that scripts and service
/// managers can tell it from other failures.
#[derive(Debug)]
pub struct OwnershipConflict(pub String);

impl OwnershipConflict {
    pub const EXIT_CODE: u8 = 3;
}

impl std::fmt::Display for OwnershipConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "another store owns part of this one's key space: {} (each record needs one owner: \
             narrow zenoh.owns here or there)",
            self.0
        )
    }
}

impl std::error::Error for OwnershipConflict {}

/// One announced claim: a store's role for one key expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub role: Role,
    pub store: String,
    /// When the announcing process began serving (ns since the Unix epoch).
    pub started: u64,
    pub key_expr: OwnedKeyExpr,
}

impl Claim {
    /// Whether this claim keeps an intersecting set against `other`: announced earlier, or at
    /// the same moment by a store with a lower id.
    pub fn precedes(&self, other: &Claim) -> bool {
        (self.started, &self.store) < (other.started, &other.store)
    }
}

/// Two stores' intersecting claims, as one of them sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    /// Both sets and the other store, in words.
    pub text: String,
    /// The other store announced first: this one must give way.
    pub theirs_first: bool,
}

/// Checks an `owns` list: each entry a key expression under `veil/**`, no two intersecting
/// (a record belongs to one entry: each entry answers its own part of a history query).
///
/// Errors: the entry and why (not a key expression, outside `veil/**`, intersecting another).
pub fn parse_owned(owns: &[String]) -> anyhow::Result<Vec<OwnedKeyExpr>> {
    anyhow::ensure!(
        !owns.is_empty(),
        "zenoh.owns is empty: list the key expressions this service stores, e.g. [\"veil/acme/**\"]"
    );
    let all: KeyExpr<'static> = KeyExpr::try_from("veil/**").expect("a valid key expression");
    let record_keys: KeyExpr<'static> =
        KeyExpr::try_from("veil/*/*/*/*/*").expect("a valid key expression");
    let mut owned: Vec<OwnedKeyExpr> = Vec::new();
    for entry in owns {
        let ke = OwnedKeyExpr::autocanonize(entry.clone())
            .map_err(|e| anyhow::anyhow!("zenoh.owns: {entry:?} is not a key expression: {e}"))?;
        anyhow::ensure!(
            all.includes(&ke),
            "zenoh.owns: {entry:?} is not under veil/** (records live under veil/<tenant>/<site>/<device>/<stream>/<kind>)"
        );
        // veil/<tenant>/<site>/<device>/<stream>/<kind>: a set that no record key falls in
        // (`veil/acme/*`, `veil/acme`) would acknowledge nothing while blocking other owners.
        anyhow::ensure!(
            ke.intersects(&record_keys),
            "zenoh.owns: {entry:?} holds no record key (veil/<tenant>/<site>/<device>/<stream>/<kind>); did you mean {entry}/**?"
        );
        if let Some(other) = owned.iter().find(|o| o.intersects(&ke)) {
            anyhow::bail!(
                "zenoh.owns: {entry:?} intersects {other}: list each record's key in one entry only"
            );
        }
        owned.push(ke);
    }
    Ok(owned)
}

/// The liveliness token's key announcing `claim`.
pub fn token_key(claim: &Claim) -> String {
    format!(
        "{TOKEN_PREFIX}/{}/{}/{}/{}",
        claim.role.as_str(),
        claim.store,
        claim.started,
        hex::encode(claim.key_expr.as_str())
    )
}

/// The claim a token's key announces; `None` for a key that is not one (ignored, not trusted).
pub fn parse_token(key: &str) -> Option<Claim> {
    let mut parts = key.split('/');
    let (prefix, role, store, started, hexed) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if prefix != TOKEN_PREFIX || parts.next().is_some() {
        return None;
    }
    // A store id is 32 lowercase hex digits ([`crate::store::Store::id`]) and a set lies
    // under veil/**: anything else is no store's announcement.
    if store.len() != 32
        || !store
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let text = String::from_utf8(hex::decode(hexed).ok()?).ok()?;
    let key_expr = OwnedKeyExpr::autocanonize(text).ok()?;
    let all = KeyExpr::try_from("veil/**").ok()?;
    if !all.includes(&key_expr) {
        return None;
    }
    Some(Claim {
        role: Role::parse(role)?,
        store: store.to_owned(),
        started: started.parse().ok()?,
        key_expr,
    })
}

/// Each way `ours` (this store's claims) collides with `seen` (what the network announces,
/// this store's own tokens — any incarnation of it — skipped), naming both sides and which one
/// announced first; sorted, no line twice.
pub fn overlaps(ours: &[Claim], seen: &[Claim]) -> Vec<Overlap> {
    let mut found = Vec::new();
    for mine in ours {
        for theirs in seen.iter().filter(|c| c.store != mine.store) {
            if mine.role == Role::Owner
                && theirs.role == Role::Owner
                && mine.key_expr.intersects(&theirs.key_expr)
            {
                let theirs_first = theirs.precedes(mine);
                found.push(Overlap {
                    text: format!(
                        "{} overlaps {} owned by store {} ({})",
                        mine.key_expr,
                        theirs.key_expr,
                        theirs.store,
                        if theirs_first {
                            "announced before this one"
                        } else {
                            "announced after this one: it gives way"
                        }
                    ),
                    theirs_first,
                });
            }
        }
    }
    found.sort_by(|a, b| a.text.cmp(&b.text));
    found.dedup();
    found
}

/// The index of the owned entry that includes `key` (a record's key expression), if any.
pub fn owner_entry(owned: &[OwnedKeyExpr], key: &str) -> Option<usize> {
    let key = KeyExpr::try_from(key).ok()?;
    owned.iter().position(|o| o.includes(&key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(list: &[&str]) -> Vec<OwnedKeyExpr> {
        parse_owned(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn claim(store: &str, ke: &str) -> Claim {
        claim_at(store, 100, ke)
    }

    fn claim_at(store: &str, started: u64, ke: &str) -> Claim {
        Claim {
            role: Role::Owner,
            store: store.into(),
            started,
            key_expr: OwnedKeyExpr::autocanonize(ke.to_string()).unwrap(),
        }
    }

    #[test]
    fn owned_sets_are_key_expressions_under_veil_that_do_not_intersect() {
        assert_eq!(owned(&["veil/acme/**", "veil/globex/hq/**"]).len(), 2);
        let err = |list: &[&str]| {
            parse_owned(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap_err()
                .to_string()
        };
        assert!(err(&[]).contains("empty"));
        assert!(err(&["veil-ack/acme/**"]).contains("not under veil/**"));
        assert!(err(&["veil//acme"]).contains("not a key expression"));
        for typo in ["veil/acme/*", "veil/acme", "veil", "veil/a/b/c/d/e/f"] {
            assert!(err(&[typo]).contains("holds no record key"), "{typo}");
        }
        assert_eq!(owned(&["veil/*/hq/cam-1/*/*"]).len(), 1);
        let e = err(&["veil/acme/**", "veil/*/hq/**"]);
        assert!(e.contains("intersects veil/acme/**"), "{e}");
    }

    #[test]
    fn a_token_key_round_trips_its_claim_and_others_are_ignored() {
        let c = claim(&"ab".repeat(16), "veil/globex/hq/**");
        let key = token_key(&c);
        assert!(!key.contains('*'), "{key}");
        assert!(zenoh::key_expr::KeyExpr::try_from(key.as_str()).is_ok());
        assert_eq!(parse_token(&key), Some(c));
        assert_eq!(parse_token("veil-store/owner/x/1"), None);
        assert_eq!(parse_token("veil-store/owner/x/1/zz"), None);
        assert_eq!(parse_token("veil-store/owner/x/soon/76"), None);
        assert_eq!(parse_token("veil-store/judge/x/1/00"), None);
        assert_eq!(parse_token("other/owner/x/1/76"), None);
        // Not a store id, or a set outside veil/**: ignored.
        let id = "ab".repeat(16);
        assert_eq!(
            parse_token(&format!(
                "veil-store/owner/evil/1/{}",
                hex::encode("veil/**")
            )),
            None
        );
        assert_eq!(
            parse_token(&format!("veil-store/owner/{id}/1/{}", hex::encode("**"))),
            None
        );
        assert!(
            parse_token(&format!(
                "veil-store/owner/{id}/1/{}",
                hex::encode("veil/**")
            ))
            .is_some()
        );
    }

    #[test]
    fn an_intersecting_claim_of_another_store_is_an_overlap_its_own_is_not() {
        let ours = [claim("a", "veil/acme/**"), claim("a", "veil/globex/hq/**")];
        // Control: disjoint sets, and this store's own tokens, overlap nothing.
        let fine = [
            claim("b", "veil/initech/**"),
            claim("b", "veil/globex/lab/**"),
        ];
        assert!(overlaps(&ours, &fine).is_empty());
        assert!(overlaps(&ours, &[claim_at("a", 5, "veil/**")]).is_empty());
        let found: Vec<String> = overlaps(&ours, &[claim("b", "veil/*/hq/cam-1/**")])
            .into_iter()
            .map(|o| o.text)
            .collect();
        assert_eq!(
            found,
            vec![
                "veil/acme/** overlaps veil/*/hq/cam-1/** owned by store b (announced after this one: it gives way)",
                "veil/globex/hq/** overlaps veil/*/hq/cam-1/** owned by store b (announced after this one: it gives way)",
            ]
        );
    }

    #[test]
    fn of_two_intersecting_claims_both_sides_agree_the_earlier_one_keeps_its_set() {
        let (early, late) = (
            claim_at("b", 10, "veil/acme/**"),
            claim_at("a", 20, "veil/**"),
        );
        let seen_by_late = overlaps(std::slice::from_ref(&late), std::slice::from_ref(&early));
        let seen_by_early = overlaps(std::slice::from_ref(&early), std::slice::from_ref(&late));
        assert!(seen_by_late[0].theirs_first && !seen_by_early[0].theirs_first);
        // The same moment: the lower store id keeps its set, as both see it.
        let (a, b) = (
            claim_at("a", 10, "veil/**"),
            claim_at("b", 10, "veil/acme/**"),
        );
        assert!(!overlaps(std::slice::from_ref(&a), std::slice::from_ref(&b))[0].theirs_first);
        assert!(overlaps(std::slice::from_ref(&b), std::slice::from_ref(&a))[0].theirs_first);
    }

    #[test]
    fn a_record_key_belongs_to_the_entry_that_includes_it() {
        let o = owned(&["veil/acme/**", "veil/globex/hq/**"]);
        assert_eq!(
            owner_entry(&o, "veil/acme/hq/cam-1/default/metrics"),
            Some(0)
        );
        assert_eq!(
            owner_entry(&o, "veil/globex/hq/cam-2/default/metrics"),
            Some(1)
        );
        assert_eq!(
            owner_entry(&o, "veil/globex/lab/cam-2/default/metrics"),
            None
        );
        assert_eq!(owner_entry(&o, "not a key"), None);
    }
}
