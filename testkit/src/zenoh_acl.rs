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

/// The `access_control` object for a router of a mesh ([`access_control`]'s device and
/// operator rules, plus): `routers` (certificate common names of the other routers) may send and
/// receive everything; each store (`(common name, owned key expressions)`) may subscribe to and
/// answer queries on its owned sets, put acknowledgements under `veil-ack/**`, watch the
/// announcements under `veil-store/**` and announce its own sets there (given in canonical form,
/// as the store's `owns`) — the only subjects that may, and each only its sets, so no device can
/// pose as a store and no store can claim another's sets (docs/security.md).
pub fn mesh_access_control(
    routers: &[&str],
    stores: &[(&str, Vec<String>)],
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
    let announce = vec!["veil-store/**".to_owned()];
    let acks = vec!["veil-ack/**".to_owned()];
    for (store, owned) in stores {
        let id = id_of(store);
        let mut mine = Vec::new();
        let mut add = |suffix: &str, messages: &[&str], flows: &[&str], keys: &Vec<String>| {
            let rid = format!("{id}.{suffix}");
            rules.push(json!({"id": rid, "messages": messages, "flows": flows,
                "permission": "allow", "key_exprs": keys}));
            mine.push(rid);
        };
        add(
            "records",
            &["declare_subscriber", "declare_queryable", "reply"],
            &["ingress"],
            owned,
        );
        add("records-in", &["put", "query"], &["egress"], owned);
        add("acks", &["put"], &["ingress"], &acks);
        add(
            "acks-see-devices",
            &["declare_subscriber"],
            &["egress"],
            &acks,
        );
        // Its own sets only: the token's last chunk is the set in hex (sink-service's
        // ownership.rs), so a store's certificate cannot claim what it was not given.
        let own_claims = owned
            .iter()
            .map(|k| {
                // The canonical form, as the store encodes it (a differently written set would
                // never match, and the store's announcements would be dropped silently).
                let k = zenoh::key_expr::OwnedKeyExpr::autocanonize(k.clone())
                    .map(|c| c.to_string())
                    .unwrap_or_else(|_| k.clone());
                let hexed: String = k.bytes().map(|b| format!("{b:02x}")).collect();
                format!("veil-store/owner/*/*/{hexed}")
            })
            .collect();
        add("announce", &["liveliness_token"], &["ingress"], &own_claims);
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
        subjects.push(json!({"id": id, "cert_common_names": [store]}));
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
