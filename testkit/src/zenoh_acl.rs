// SPDX-License-Identifier: MIT OR Apache-2.0
//! Zenoh `access_control` for the sink service's mutual-TLS listener: default deny, subjects by
//! the client certificate's common name (`veil-certs` names device certificates
//! `tenant/site/device`).
//!
//! A device may put under its own `veil/<tenant>/<site>/<device>/**` and subscribe to its own
//! `veil-ack/<tenant>/<site>/<device>/**` (and receive the service's acknowledgements there);
//! nothing else — no other key space, no queries. An operator may query `veil/**` and
//! `veil-admin/**` (the service still asks for an API key) and put nothing. Zenoh 1.10 has no
//! placeholder for the certificate's name in a rule, so each device gets rules of its own.
//!
//! Two rules are less obvious (found by experiment with the PyPI client, each missing one
//! breaking the allowed traffic): devices must see the service's `veil/**` subscriber
//! declaration (egress `declare_subscriber`), or a device's declared publisher sends nothing;
//! operators must see its queryable declarations (egress `declare_queryable`), or a declared
//! querier sends nothing. Egress declarations match when the rule's key includes the declared
//! one, hence `veil/**` there. The listener must have `enable_mtls: true`: without it no common
//! name is known and everything falls to the default deny.

use serde_json::{Value, json};

fn rule(id: &str, message: &str, flow: &str, key_exprs: &[String]) -> Value {
    json!({"id": id, "messages": [message], "flows": [flow], "permission": "allow", "key_exprs": key_exprs})
}

/// A rule or subject id from a certificate name (`acme/hq/cam-1` → `acme.hq.cam-1`).
fn id_of(name: &str) -> String {
    name.replace('/', ".")
}

/// The `access_control` object for `devices` (`tenant/site/device` common names) and
/// `operators` (common names). Empty lists give a configuration that denies every peer.
pub fn access_control(devices: &[&str], operators: &[&str]) -> Value {
    let all = |k: &str| vec![k.to_owned()];
    let mut rules = Vec::new();
    let mut subjects = Vec::new();
    let mut policies = Vec::new();
    if !devices.is_empty() {
        rules.push(rule(
            "devices-see-the-store-subscriber",
            "declare_subscriber",
            "egress",
            &all("veil/**"),
        ));
        policies.push(
            json!({"id": "devices", "rules": ["devices-see-the-store-subscriber"],
            "subjects": devices.iter().map(|d| id_of(d)).collect::<Vec<_>>()}),
        );
    }
    for device in devices {
        let id = id_of(device);
        let own = |prefix: &str| vec![format!("{prefix}/{device}/**")];
        rules.push(rule(&format!("{id}.put"), "put", "ingress", &own("veil")));
        rules.push(rule(
            &format!("{id}.ack-subscribe"),
            "declare_subscriber",
            "ingress",
            &own("veil-ack"),
        ));
        rules.push(rule(
            &format!("{id}.acks"),
            "put",
            "egress",
            &own("veil-ack"),
        ));
        subjects.push(json!({"id": id, "cert_common_names": [device]}));
        policies.push(json!({"id": id, "subjects": [id],
            "rules": [format!("{id}.put"), format!("{id}.ack-subscribe"), format!("{id}.acks")]}));
    }
    if !operators.is_empty() {
        let keys = vec!["veil/**".to_owned(), "veil-admin/**".to_owned()];
        rules.push(rule("operators.query", "query", "ingress", &keys));
        rules.push(rule("operators.reply", "reply", "egress", &keys));
        rules.push(rule(
            "operators.see-the-store-queryables",
            "declare_queryable",
            "egress",
            &keys,
        ));
        for op in operators {
            subjects.push(json!({"id": id_of(op), "cert_common_names": [op]}));
        }
        policies.push(json!({"id": "operators",
            "rules": ["operators.query", "operators.reply", "operators.see-the-store-queryables"],
            "subjects": operators.iter().map(|o| id_of(o)).collect::<Vec<_>>()}));
    }
    json!({"enabled": true, "default_permission": "deny", "rules": rules,
           "subjects": subjects, "policies": policies})
}

/// A sink service in a mesh, by its certificate's common name: what it owns and what it keeps a
/// replica of (`[zenoh] owns` and `replicates`, in any spelling: rules use the canonical form).
pub struct MeshStore<'a> {
    pub name: &'a str,
    pub owns: Vec<String>,
    pub replicates: Vec<String>,
}

impl<'a> MeshStore<'a> {
    /// An owner of `owns`, replicating nothing.
    pub fn owner(name: &'a str, owns: &[&str]) -> MeshStore<'a> {
        MeshStore {
            name,
            owns: owns.iter().map(|s| s.to_string()).collect(),
            replicates: Vec::new(),
        }
    }
}

/// A set in the canonical form the store encodes (a differently written set would never match,
/// and the store's announcements would be dropped silently), in hex.
fn hex_of_set(set: &str) -> String {
    let canonical = zenoh::key_expr::OwnedKeyExpr::autocanonize(set.to_owned())
        .map(|c| c.to_string())
        .unwrap_or_else(|_| set.to_owned());
    canonical.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The `access_control` object for a router of a mesh ([`access_control`]'s device and
/// operator rules, plus): `routers` (certificate common names of the other routers) may send and
/// receive everything; each store ([`MeshStore`]) may
/// - subscribe to its owned sets, answer queries (any query under `veil/**` reaches it; it
///   answers within its owned sets only), subscribe to its replicated sets, put
///   acknowledgements under `veil-ack/**`;
/// - announce its own owned sets under `veil-store/owner/**` (the token's last chunk is the set
///   in hex: sink-service's ownership.rs) and watch every announcement — the only subjects that
///   may announce, each only its sets, so no device can pose as a store and no store can claim
///   another's sets (docs/security.md);
/// - confirm to owners and hear confirmations under `veil-replica/**` (each confirmation is
///   signed with the replica's key, which the owner lists: the signature, not this rule, keeps
///   a store from confirming for another);
/// - forward a read to the other owners (query `veil/**`; each owner checks the caller's API
///   key) and say it answered one (`veil-store/answered/*/<hex of its own set>`);
/// - answer admin queries under `veil-admin/<common name>/*` (set `[zenoh] admin` to that).
pub fn mesh_access_control(
    routers: &[&str],
    stores: &[MeshStore<'_>],
    devices: &[&str],
    operators: &[&str],
) -> Value {
    let mut acl = access_control(devices, operators);
    let (mut rules, mut subjects, mut policies) = (Vec::new(), Vec::new(), Vec::new());
    let everything = [
        "put",
        "delete",
        "declare_subscriber",
        "query",
        "reply",
        "declare_queryable",
        "liveliness_token",
        "declare_liveliness_subscriber",
        "liveliness_query",
    ];
    if !routers.is_empty() {
        rules.push(json!({"id": "routers.all", "messages": everything,
            "flows": ["ingress", "egress"], "permission": "allow", "key_exprs": ["**"]}));
        for r in routers {
            subjects.push(json!({"id": id_of(r), "cert_common_names": [r]}));
        }
        policies.push(json!({"id": "routers", "rules": ["routers.all"],
            "subjects": routers.iter().map(|r| id_of(r)).collect::<Vec<_>>()}));
    }
    let one = |k: &str| vec![k.to_owned()];
    let (announce, acks, confirmations, records) = (
        one("veil-store/**"),
        one("veil-ack/**"),
        one("veil-replica/**"),
        one("veil/**"),
    );
    let answered = one("veil-store/answered/**");
    for store in stores {
        let id = id_of(store.name);
        let mut mine = Vec::new();
        let mut add = |suffix: &str, messages: &[&str], flows: &[&str], keys: &Vec<String>| {
            if keys.is_empty() {
                return;
            }
            let rid = format!("{id}.{suffix}");
            rules.push(json!({"id": rid, "messages": messages, "flows": flows,
                "permission": "allow", "key_exprs": keys}));
            mine.push(rid);
        };
        let owned = &store.owns;
        add(
            "records",
            &["declare_subscriber", "declare_queryable", "reply"],
            &["ingress"],
            owned,
        );
        add("records-in", &["put"], &["egress"], owned);
        // Any query reaches a store (a router's egress rule must include the query's key, and
        // a history query may span several owners: `veil/**`, `veil/acme/*/*/*/metrics`); the
        // store checks the API key, and its replies stay within its sets (`records`).
        add("queries-in", &["query"], &["egress"], &records);
        add(
            "replica-records",
            &["declare_subscriber"],
            &["ingress"],
            &store.replicates,
        );
        add(
            "replica-records-in",
            &["put"],
            &["egress"],
            &store.replicates,
        );
        add("acks", &["put"], &["ingress"], &acks);
        add(
            "acks-see-devices",
            &["declare_subscriber"],
            &["egress"],
            &acks,
        );
        add(
            "confirm",
            &["put", "declare_subscriber"],
            &["ingress", "egress"],
            &confirmations,
        );
        // Forwarded reads: asked of every owner (which checks the caller's API key), and the
        // queryables of the others seen (a querier sends nothing to queryables it cannot see).
        add("forward", &["query"], &["ingress"], &records);
        add(
            "forwarded-answers",
            &["reply", "declare_queryable"],
            &["egress"],
            &records,
        );
        add("answered-heard", &["reply"], &["egress"], &answered);
        let own_sets: Vec<String> = owned.iter().map(|k| hex_of_set(k)).collect();
        let own_claims = own_sets
            .iter()
            .map(|h| format!("veil-store/owner/*/*/{h}"))
            .collect();
        add("announce", &["liveliness_token"], &["ingress"], &own_claims);
        let own_answers = own_sets
            .iter()
            .map(|h| format!("veil-store/answered/*/{h}"))
            .collect();
        add("answered", &["reply"], &["ingress"], &own_answers);
        add(
            "watch",
            &["declare_liveliness_subscriber", "liveliness_query"],
            &["ingress"],
            &announce,
        );
        add(
            "announcements",
            &["liveliness_token", "reply"],
            &["egress"],
            &announce,
        );
        add(
            "admin",
            &["declare_queryable", "reply"],
            &["ingress"],
            &one(&format!("veil-admin/{}/*", store.name)),
        );
        subjects.push(json!({"id": id, "cert_common_names": [store.name]}));
        policies.push(json!({"id": id, "subjects": [id], "rules": mine}));
    }
    for (field, extra) in [
        ("rules", rules),
        ("subjects", subjects),
        ("policies", policies),
    ] {
        if let Some(list) = acl[field].as_array_mut() {
            list.extend(extra);
        }
    }
    acl
}

/// A Zenoh configuration (JSON5 text of one object) with `access_control` added as its last
/// field.
///
/// Errors: text that does not end with the object's closing brace.
pub fn with_access_control(config: &str, acl: &Value) -> anyhow::Result<String> {
    let body = config.trim_end();
    let Some(open) = body.strip_suffix('}') else {
        anyhow::bail!("a Zenoh configuration must be one JSON5 object");
    };
    let acl = serde_json::to_string_pretty(acl)?.replace('\n', "\n  ");
    Ok(format!(
        "{}\n  // Zenoh access control (veil-certs --acl-out): default deny, subjects by the\n  \
         // client certificate's common name; see testkit/src/zenoh_acl.rs for why each rule.\n  \
         access_control: {acl},\n}}\n",
        open.trim_end()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_device_gets_only_its_own_key_space() {
        let acl = access_control(&["acme/hq/cam-1", "beta/lab/cam-2"], &["operator"]);
        assert_eq!(acl["default_permission"], "deny");
        let rules = acl["rules"].as_array().unwrap();
        let keys_of = |id: &str| rules.iter().find(|r| r["id"] == id).unwrap()["key_exprs"].clone();
        assert_eq!(
            keys_of("acme.hq.cam-1.put"),
            json!(["veil/acme/hq/cam-1/**"])
        );
        assert_eq!(
            keys_of("beta.lab.cam-2.acks"),
            json!(["veil-ack/beta/lab/cam-2/**"])
        );
        // No device rule allows queries; no operator rule allows puts.
        for r in rules {
            let id = r["id"].as_str().unwrap();
            let messages = r["messages"].to_string();
            assert!(!(id.contains("cam") && messages.contains("query")), "{r}");
            assert!(
                !(id.starts_with("operators") && messages.contains("\"put\"")),
                "{r}"
            );
        }
        let subjects = acl["subjects"].to_string();
        assert!(subjects.contains("\"acme/hq/cam-1\"") && subjects.contains("\"operator\""));
        let text = with_access_control("{\n  mode: \"peer\",\n}\n", &acl).unwrap();
        assert!(text.trim_end().ends_with('}') && text.contains("access_control: {"));
        assert!(with_access_control("[]", &acl).is_err());
    }
}
