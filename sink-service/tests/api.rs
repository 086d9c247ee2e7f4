// SPDX-License-Identifier: MIT OR Apache-2.0
//! The HTTPS API as a client sees it: a real `sink-service serve` child with TLS (certificates
//! from `veil-certs`), real requests over loopback, a store seeded with real device chains.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use veil_sink_service::api::keys::{KeyStore, NewKey, Role, Scope};
use veil_wire::Record;

mod common;

use common::{Device, Service, configs, serve, sink_service, take_all, temp};

/// Stands in for a JPEG (served back byte for byte).
const NG_JPEG: &[u8] = b"\xff\xd8\xff\xe0 a stand-in for the JPEG of an NG part";

/// Keys made before the service starts.
struct Keys {
    roles: Vec<(Role, String)>,
    /// One key per scope, holding only that scope.
    single: Vec<(Scope, String)>,
    globex_admin: String,
    revoked: String,
    expired: String,
    tiny: String,
    /// An admin key of acme limited to site `lab` (the seeded data is all at `hq`).
    lab_admin: String,
}

struct Api {
    service: Option<Service>,
    base: String,
    agent: ureq::Agent,
    config: PathBuf,
    dir: PathBuf,
    zenoh_port: u16,
    keys: Keys,
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn agent(ca: &Path) -> ureq::Agent {
    let pem = std::fs::read(ca).unwrap();
    let cert = ureq::tls::Certificate::from_pem(&pem).unwrap();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&[cert]))
                .build(),
        )
        .build()
        .into()
}

impl Api {
    fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Answer {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| ("authorization", a))
            .into_iter()
            .collect();
        self.call_with(method, path, &headers, body)
    }

    /// [`Api::call`] with any headers (a session's cookie and CSRF token).
    fn call_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Answer {
        let url = format!("{}{path}", self.base);
        let result = match method {
            "GET" | "DELETE" => {
                let mut r = if method == "GET" {
                    self.agent.get(&url)
                } else {
                    self.agent.delete(&url)
                };
                for (name, value) in headers {
                    r = r.header(*name, *value);
                }
                r.call()
            }
            _ => {
                let mut r = if method == "PUT" {
                    self.agent.put(&url)
                } else {
                    self.agent.post(&url)
                };
                for (name, value) in headers {
                    r = r.header(*name, *value);
                }
                let bytes = body.map(|b| b.to_string()).unwrap_or_default();
                r.header("content-type", "application/json")
                    .send(bytes.as_bytes())
            }
        };
        let mut response = result.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        Answer {
            status: response.status().as_u16(),
            headers,
            text: response.body_mut().read_to_string().unwrap_or_default(),
        }
    }

    fn get(&self, path: &str, token: &str) -> Answer {
        self.call("GET", path, Some(token), None)
    }

    fn token(&self, role: Role) -> &str {
        &self.keys.roles.iter().find(|(r, _)| *r == role).unwrap().1
    }

    fn stop(&mut self) {
        if let Some(s) = self.service.take() {
            assert!(s.stop(), "serve did not stop cleanly");
        }
    }

    fn restart(&mut self) {
        self.service = Some(serve(&self.config));
        wait_healthy(self);
    }
}

fn wait_healthy(api: &Api) {
    let t0 = Instant::now();
    loop {
        if let Ok(mut r) = api.agent.get(&format!("{}/v1/health", api.base)).call()
            && r.status() == 200
        {
            let _ = r.body_mut().read_to_string();
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the API never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A service with the API on a free port, seeded with acme's 30 windows (device cam-1),
/// globex's 5 (cam-9), a service integrity event for acme, and keys.
fn start(name: &str, extra_config: &str) -> Api {
    start_with(name, extra_config, |_, _| {})
}

/// [`start`], with more seeded by `more` before the service opens the store.
fn start_with(
    name: &str,
    extra_config: &str,
    more: impl FnOnce(&mut veil_sink_service::ingest::Ingest, &veil_sink_service::store::Store),
) -> Api {
    let dir = temp(name);
    veil_testkit::certs::generate(&dir.join("certs"), "Veil test", &[]).unwrap();
    let zenoh_port = veil_testkit::net::free_port();
    let api_port = veil_testkit::net::free_port();
    let (config, _) = configs(&dir, zenoh_port);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        r#"
[api]
listen = "127.0.0.1:{api_port}"
cert = "{certs}/service.pem"
key = "{certs}/service-key.pem"
auth_failures_per_minute = {failures}
[api.tiers.standard]
requests = 100000
window = "60s"
[api.tiers.tiny]
requests = 3
window = "2s"
[webhooks]
allow_http = true
allow_private = true
backoff_base = "1s"
backoff_max = "2s"
timeout = "2s"
{extra}
"#,
        certs = dir.join("certs").display(),
        failures = if name == "failures" { 5 } else { 100_000 },
        extra = extra_config.replace("{certs}", &dir.join("certs").display().to_string()),
    ));
    std::fs::write(&config, text).unwrap();

    let store = common::store(&dir);
    let mut ingest = common::ingest(&store);
    take_all(
        &mut ingest,
        &Device::new("acme", "cam-1", 1).records(30, 10),
    );
    take_all(
        &mut ingest,
        &Device::new("globex", "cam-9", 2).records(5, 5),
    );
    // An inspection station of acme that kept one NG image.
    let mut station = Device::new("acme", "line-1", 3);
    let image = station.image(3, 7, NG_JPEG);
    let checkpoint = station.checkpoint();
    take_all(&mut ingest, &[image, checkpoint]);
    store
        .integrity_event(
            "acme",
            json!({"type": "gap", "device": "cam-1", "stream": "door", "seq": 99, "reason": "seeded"}),
        )
        .unwrap();
    more(&mut ingest, &store);
    let ks = KeyStore::open(&store).unwrap();
    let now = veil_sink_service::store::now_ns();
    let make = |tenant: &str,
                role: Option<Role>,
                scopes: Option<BTreeSet<Scope>>,
                tier: &str,
                expires: Option<&str>| {
        ks.create(
            &store,
            NewKey {
                tenant: tenant.into(),
                name: "test".into(),
                role,
                scopes,
                tier: tier.into(),
                expires: expires.map(str::to_owned),
                stations: Default::default(),
            },
            now,
        )
        .unwrap()
    };
    let roles = Role::ALL
        .iter()
        .map(|&r| (r, make("acme", Some(r), None, "standard", None).1))
        .collect();
    let single = Scope::ALL
        .iter()
        .map(|&s| (s, make("acme", None, Some([s].into()), "standard", None).1))
        .collect();
    let globex_admin = make("globex", Some(Role::Admin), None, "standard", None).1;
    let (revoked_key, revoked) = make("acme", Some(Role::Admin), None, "standard", None);
    ks.revoke(&store, "acme", &revoked_key.id, now).unwrap();
    let expired = make(
        "acme",
        Some(Role::Admin),
        None,
        "standard",
        Some("2020-01-01T00:00:00Z"),
    )
    .1;
    let tiny = make("acme", Some(Role::Operator), None, "tiny", None).1;
    let lab_admin = ks
        .create(
            &store,
            NewKey {
                tenant: "acme".into(),
                name: "lab admin".into(),
                role: Some(Role::Admin),
                scopes: None,
                tier: "standard".into(),
                expires: None,
                stations: veil_sink_service::stations::Stations::new(&["lab"], &[], &[]).unwrap(),
            },
            now,
        )
        .unwrap()
        .1;
    store.flush().unwrap();
    drop(ks);
    drop(ingest);
    drop(store);

    let mut api = Api {
        service: None,
        base: format!("https://127.0.0.1:{api_port}"),
        agent: agent(&dir.join("certs/ca.pem")),
        config,
        dir,
        zenoh_port,
        keys: Keys {
            roles,
            single,
            globex_admin,
            revoked,
            expired,
            tiny,
            lab_admin,
        },
    };
    api.restart();
    api
}

/// (path, method, scope) of every operation in the served OpenAPI document.
fn operations(api: &Api) -> Vec<(String, String, Option<Scope>)> {
    let doc = api.call("GET", "/v1/openapi.json", None, None).json();
    let mut out = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let scope = op["x-veil-scope"]
                .as_str()
                .map(|s| Scope::parse(s).unwrap());
            out.push((path.clone(), method.to_uppercase(), scope));
        }
    }
    assert!(out.len() >= 20, "{out:?}");
    out
}

/// Fills the path parameters with live resources of `tenant`, made fresh where the call may
/// destroy them (keys, webhooks).
fn fill(api: &Api, path: &str, tenant: &str) -> String {
    let admin = api.token(Role::Admin);
    let mut p = path
        .replace("{tenant}", tenant)
        .replace("{dimension}", "hour-of-day");
    if p.contains("{key_id}") {
        let created = api.call(
            "POST",
            "/v1/t/acme/keys",
            Some(admin),
            Some(&json!({"role": "operator", "name": "victim"})),
        );
        assert_eq!(created.status, 201, "{}", created.text);
        p = p.replace("{key_id}", created.json()["key"]["id"].as_str().unwrap());
    }
    if p.contains("{webhook_id}") {
        let created = api.call(
            "POST",
            "/v1/t/acme/webhooks",
            Some(admin),
            Some(&json!({"url": "http://127.0.0.1:9/hook", "events": ["integrity.alert"]})),
        );
        assert_eq!(created.status, 201, "{}", created.text);
        p = p.replace(
            "{webhook_id}",
            created.json()["webhook"]["id"].as_str().unwrap(),
        );
    }
    if p.contains("{image_id}") {
        let images = api.get("/v1/t/acme/images", admin).json();
        p = p.replace("{image_id}", images["items"][0]["id"].as_str().unwrap());
    }
    if p.contains("{alert_id}") {
        let alerts = api.get("/v1/t/acme/integrity", admin).json();
        p = p.replace("{alert_id}", alerts["items"][0]["id"].as_str().unwrap());
    }
    p
}

fn body_for(path: &str) -> Option<Value> {
    if path.ends_with("/keys") {
        // Scopes every caller allowed here holds (a key grants only what it has).
        Some(json!({"scopes": ["admin"], "name": "made by the matrix"}))
    } else if path.ends_with("/webhooks") {
        Some(json!({"url": "http://127.0.0.1:9/hook", "events": ["window.closed"]}))
    } else {
        Some(json!({}))
    }
}

#[test]
fn every_endpoint_enforces_keys_scopes_and_tenants() {
    let mut api = start("matrix", "");
    let mut checked = 0;
    for (path, method, scope) in operations(&api) {
        let body = body_for(&path);
        let call = |token: Option<&str>, tenant: &str| {
            let p = fill(&api, &path, tenant);
            api.call(&method, &p, token, body.as_ref())
        };
        // Console sessions check the key (or cookie) themselves: their own test below.
        if path == "/v1/session" {
            continue;
        }
        let Some(scope) = scope else {
            assert_eq!(call(None, "acme").status, 200, "{method} {path} is public");
            continue;
        };
        let what = format!("{method} {path}");
        for (who, token) in [
            ("no key", None),
            ("a revoked key", Some(api.keys.revoked.as_str())),
            ("an expired key", Some(api.keys.expired.as_str())),
            (
                "a made-up key",
                Some(
                    "veil_0123456789abcdef_0000000000000000000000000000000000000000000000000000000000000000",
                ),
            ),
            ("not a key", Some("hunter2")),
        ] {
            let a = call(token, "acme");
            assert_eq!(a.status, 401, "{what} with {who}: {}", a.text);
            assert_eq!(a.json()["error"], "unauthorized");
        }
        // Another tenant's key, even an admin's: as if nothing were there.
        let other = call(Some(&api.keys.globex_admin), "acme");
        assert_eq!(
            other.status, 404,
            "{what} with globex's admin key: {}",
            other.text
        );
        let absent = call(Some(&api.keys.globex_admin), "no-such-tenant");
        assert_eq!(
            other.text, absent.text,
            "{what}: a 404 must not tell tenants apart"
        );
        for (role, token) in &api.keys.roles {
            let a = call(Some(token), "acme");
            if role.scopes().contains(&scope) {
                assert!(
                    (200..300).contains(&a.status),
                    "{what} as {role:?}: {} {}",
                    a.status,
                    a.text
                );
            } else {
                assert_eq!(a.status, 403, "{what} as {role:?}: {}", a.text);
                assert_eq!(a.json()["error"], "forbidden");
            }
        }
        // A station-scoped admin key (site lab; everything seeded is at hq): every route
        // answers, with nothing of hq in it; resources of hq or of the whole tenant, named by
        // id, are absent to it; the tenant-wide audit log is refused.
        let scoped = call(Some(&api.keys.lab_admin), "acme");
        let names_a_resource = ["{key_id}", "{webhook_id}", "{image_id}", "{alert_id}"]
            .iter()
            .any(|p| path.contains(p));
        let expected = if path.ends_with("/audit") {
            403
        } else if names_a_resource {
            404
        } else {
            0
        };
        match expected {
            0 => {
                assert!(
                    (200..300).contains(&scoped.status),
                    "{what} with a lab key: {} {}",
                    scoped.status,
                    scoped.text
                );
                if method == "GET" && !path.ends_with("/keys") && !path.ends_with("/webhooks") {
                    assert!(
                        !scoped.text.contains("\"hq\"") && !scoped.text.contains("cam-1"),
                        "{what} with a lab key shows hq: {}",
                        scoped.text
                    );
                }
            }
            status => assert_eq!(
                scoped.status, status,
                "{what} with a lab key: {}",
                scoped.text
            ),
        }
        for (held, token) in &api.keys.single {
            let a = call(Some(token), "acme");
            if *held == scope {
                assert!(
                    (200..300).contains(&a.status),
                    "{what} with only {held:?}: {} {}",
                    a.status,
                    a.text
                );
            } else {
                assert_eq!(a.status, 403, "{what} with only {held:?}: {}", a.text);
            }
        }
        checked += 1;
    }
    assert!(checked >= 19, "{checked} protected operations");

    // Resources of another tenant, named by id under one's own tenant: 404.
    let globex_webhook = api.call(
        "POST",
        "/v1/t/globex/webhooks",
        Some(&api.keys.globex_admin),
        Some(&json!({"url": "http://127.0.0.1:9/g", "events": ["window.closed"]})),
    );
    assert_eq!(globex_webhook.status, 201, "{}", globex_webhook.text);
    let wid = globex_webhook.json()["webhook"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = api.token(Role::Admin).to_owned();
    assert_eq!(
        api.get(&format!("/v1/t/acme/webhooks/{wid}"), &admin)
            .status,
        404
    );
    let globex_keys = api.get("/v1/t/globex/keys", &api.keys.globex_admin).json();
    let gid = globex_keys["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        api.get(&format!("/v1/t/acme/keys/{gid}"), &admin).status,
        404
    );
    assert_eq!(
        api.call(
            "DELETE",
            &format!("/v1/t/acme/keys/{gid}"),
            Some(&admin),
            None
        )
        .status,
        404
    );
    assert_eq!(
        api.get("/v1/t/globex/streams", &api.keys.globex_admin)
            .status,
        200,
        "globex's key still works"
    );
    // Nothing of globex in acme's answers.
    let all = api.get("/v1/t/acme/metrics?limit=1000", &admin).text;
    assert!(!all.contains("globex") && !all.contains("cam-9"));
    // A key cannot hand out a scope it lacks.
    let engineer = api.token(Role::Engineer).to_owned();
    let denied = api.call(
        "POST",
        "/v1/t/acme/keys",
        Some(&engineer),
        Some(&json!({"role": "admin"})),
    );
    assert_eq!(denied.status, 403);
    api.stop();
}

/// Station-scoped keys: a key limited to site `lab` sees lab's records and nothing of `hq`
/// on every read route (lists, roll-ups, exports, images, integrity alerts), manages only
/// keys and webhooks as narrow as itself and cannot widen what it grants; the tenant-wide
/// admin key in the same test is the positive control.
#[test]
fn station_scoped_keys_see_and_grant_only_their_stations() {
    let mut api = start_with("stations", "", |ingest, store| {
        let mut lab = Device::try_at("acme", "lab", "cam-7", 7).unwrap();
        take_all(ingest, &lab.records(4, 4));
        store
            .integrity_event(
                "acme",
                json!({"type": "gap", "device": "cam-7", "stream": "door", "seq": 9, "reason": "seeded"}),
            )
            .unwrap();
    });
    let admin = api.token(Role::Admin).to_owned();
    let create =
        |token: &str, body: Value| api.call("POST", "/v1/t/acme/keys", Some(token), Some(&body));
    let made = create(
        &admin,
        json!({"role": "engineer", "stations": {"sites": ["lab"]}}),
    );
    assert_eq!(made.status, 201, "{}", made.text);
    assert_eq!(made.json()["key"]["stations"]["sites"], json!(["lab"]));
    let lab = made.json()["token"].as_str().unwrap().to_owned();
    let made = create(
        &admin,
        json!({"role": "admin", "stations": {"sites": ["lab"]}}),
    );
    assert_eq!(made.status, 201, "{}", made.text);
    let lab_admin = made.json()["token"].as_str().unwrap().to_owned();
    let bad = create(
        &admin,
        json!({"role": "operator", "stations": {"sites": ["a/b"]}}),
    );
    assert_eq!(bad.status, 400, "{}", bad.text);
    let bad = create(
        &admin,
        json!({"role": "operator", "stations": {"zones": ["x"]}}),
    );
    assert_eq!(bad.status, 400, "{}", bad.text);
    let born_expired = create(
        &admin,
        json!({"role": "operator", "expires": "2020-01-01T00:00:00Z"}),
    );
    assert_eq!(born_expired.status, 400, "{}", born_expired.text);
    let twice = create(
        &admin,
        json!({"role": "operator", "stations": {"sites": ["lab", "lab"]}}),
    );
    assert_eq!(twice.status, 400, "{}", twice.text);

    let sites = |path: &str, token: &str| -> Vec<String> {
        let a = api.get(path, token);
        assert_eq!(a.status, 200, "{path}: {}", a.text);
        a.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["site"].as_str().unwrap_or("?").to_owned())
            .collect()
    };
    // Lists: the control sees both sites, the scoped key only lab, also when it asks for hq.
    for path in ["/v1/t/acme/streams", "/v1/t/acme/metrics?limit=1000"] {
        let everything = sites(path, &admin);
        assert!(everything.iter().any(|s| s == "hq") && everything.iter().any(|s| s == "lab"));
        let mine = sites(path, &lab);
        assert!(
            !mine.is_empty() && mine.iter().all(|s| s == "lab"),
            "{path}: {mine:?}"
        );
    }
    assert_eq!(sites("/v1/t/acme/metrics?limit=1000", &lab).len(), 4);
    assert!(sites("/v1/t/acme/metrics?site=hq", &lab).is_empty());
    assert!(sites("/v1/t/acme/metrics?device=cam-1", &lab).is_empty());
    // Roll-ups and exports.
    assert_eq!(
        api.get("/v1/t/acme/rollups/day", &admin).json()["windows"],
        34
    );
    assert_eq!(api.get("/v1/t/acme/rollups/day", &lab).json()["windows"], 4);
    let export = api.get("/v1/t/acme/export?kind=metrics", &lab).text;
    assert_eq!(export.lines().count(), 4, "{export}");
    assert!(!export.contains("\"hq\"") && !export.contains("cam-1"));
    assert!(
        api.get("/v1/t/acme/export?kind=metrics", &admin)
            .text
            .contains("cam-1")
    );
    // Images: hq's NG image is listed and served to the control only.
    let images = api.get("/v1/t/acme/images", &admin).json();
    let image = images["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        api.get(&format!("/v1/t/acme/images/{image}"), &admin)
            .status,
        200
    );
    assert!(
        api.get("/v1/t/acme/images", &lab).json()["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        api.get(&format!("/v1/t/acme/images/{image}"), &lab).status,
        404
    );
    // Integrity alerts: the service's alert about hq's cam-1 is not the lab key's to see or
    // acknowledge; the one about lab's cam-7 is.
    let alerts = api.get("/v1/t/acme/integrity", &admin).json();
    let alert_of = |device: &str| {
        alerts["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["device"] == device)
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no alert about {device}: {alerts}"))
    };
    let (hq_alert, lab_alert) = (alert_of("cam-1"), alert_of("cam-7"));
    let seen = api.get("/v1/t/acme/integrity", &lab).json();
    let ids: Vec<&str> = seen["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [lab_alert.as_str()], "{seen}");
    let ack = |id: &str| {
        api.call(
            "POST",
            &format!("/v1/t/acme/integrity/{id}/acknowledge"),
            Some(&lab),
            Some(&json!({})),
        )
        .status
    };
    assert_eq!(ack(&hq_alert), 404);
    assert_eq!(ack(&lab_alert), 200);

    // Webhooks: a lab key's subscription is lab's; it cannot subscribe to hq, nor see the
    // tenant-wide subscription.
    let hook = |token: &str, stations: Option<Value>| {
        let mut body = json!({"url": "http://127.0.0.1:9/hook", "events": ["window.closed"]});
        if let Some(s) = stations {
            body["stations"] = s;
        }
        api.call("POST", "/v1/t/acme/webhooks", Some(token), Some(&body))
    };
    let wide = hook(&admin, None);
    assert_eq!(wide.status, 201);
    let wide_id = wide.json()["webhook"]["id"].as_str().unwrap().to_owned();
    let narrow = hook(&lab, None);
    assert_eq!(narrow.status, 201, "{}", narrow.text);
    assert_eq!(
        narrow.json()["webhook"]["stations"]["sites"],
        json!(["lab"])
    );
    assert_eq!(hook(&lab, Some(json!({"sites": ["hq"]}))).status, 403);
    assert_eq!(
        hook(&lab, Some(json!({"devices": ["cam-7"]}))).status,
        403,
        "lab ∩ cam-7 is not a subset axis by axis"
    );
    assert_eq!(
        hook(&lab, Some(json!({"sites": ["lab"], "devices": ["cam-7"]}))).status,
        201
    );
    let listed = api.get("/v1/t/acme/webhooks", &lab).json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 2, "{listed}");
    assert!(!listed.to_string().contains(&wide_id));
    assert_eq!(
        api.get(&format!("/v1/t/acme/webhooks/{wide_id}"), &lab)
            .status,
        404
    );
    assert_eq!(
        api.call(
            "DELETE",
            &format!("/v1/t/acme/webhooks/{wide_id}"),
            Some(&lab),
            None
        )
        .status,
        404
    );
    assert_eq!(
        api.get(&format!("/v1/t/acme/webhooks/{wide_id}"), &admin)
            .status,
        200
    );
    assert_eq!(
        api.get("/v1/t/acme/webhooks", &admin).json()["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Keys: the lab admin's keys inherit its scope, cannot widen it, and it sees no wider key.
    let inherited = create(&lab_admin, json!({"role": "operator"}));
    assert_eq!(inherited.status, 201, "{}", inherited.text);
    assert_eq!(inherited.json()["key"]["stations"]["sites"], json!(["lab"]));
    assert_eq!(
        create(
            &lab_admin,
            json!({"role": "operator", "stations": {"sites": ["hq"]}})
        )
        .status,
        403
    );
    assert_eq!(
        create(
            &lab_admin,
            json!({"role": "operator", "stations": {"sites": ["lab", "hq"]}})
        )
        .status,
        403
    );
    let keys = api.get("/v1/t/acme/keys", &lab_admin).json();
    let listed = keys["items"].as_array().unwrap();
    assert!(
        listed.len() >= 3
            && listed
                .iter()
                .all(|k| k["stations"]["sites"] == json!(["lab"])),
        "{keys}"
    );
    let wide_key = api.get("/v1/t/acme/keys", &admin).json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["stations"]["sites"] == json!([]))
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .unwrap();
    assert_eq!(
        api.get(&format!("/v1/t/acme/keys/{wide_key}"), &lab_admin)
            .status,
        404
    );
    assert_eq!(
        api.call(
            "POST",
            &format!("/v1/t/acme/keys/{wide_key}/rotate"),
            Some(&lab_admin),
            None
        )
        .status,
        404
    );
    assert_eq!(
        api.get(&format!("/v1/t/acme/keys/{wide_key}"), &admin)
            .status,
        200
    );
    // The audit log is the whole tenant's.
    assert_eq!(api.get("/v1/t/acme/audit", &lab_admin).status, 403);
    assert_eq!(api.get("/v1/t/acme/audit", &admin).status, 200);
    api.stop();
}

#[test]
fn data_pages_filters_rollups_and_exports() {
    let mut api = start("data", "");
    let read = api.token(Role::Operator).to_owned();
    // Pages of 7 over 30 windows: every one once, in order.
    let mut seqs = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/t/acme/metrics?limit=7&cursor={c}"),
            None => "/v1/t/acme/metrics?limit=7".into(),
        };
        let page = api.get(&path, &read).json();
        pages += 1;
        for item in page["items"].as_array().unwrap() {
            let r: Record = serde_json::from_value(item.clone()).unwrap();
            assert_eq!(
                r.compute_hash().unwrap(),
                r.hash,
                "served records are the signed ones"
            );
            seqs.push(r.seq);
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    assert_eq!(seqs.len(), 30);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    // A time range: windows are captured at the end of their minute (10:01 … 10:30).
    let range = api
        .get(
            "/v1/t/acme/metrics?from=2026-11-23T10:05:00Z&to=2026-11-23T10:10:00Z",
            &read,
        )
        .json();
    assert_eq!(range["items"].as_array().unwrap().len(), 5);
    let none = api.get("/v1/t/acme/metrics?device=cam-9", &read).json();
    assert!(
        none["items"].as_array().unwrap().is_empty(),
        "globex's device is not acme's"
    );
    for bad in [
        "limit=0",
        "limit=abc",
        "from=yesterday",
        "cursor=zz",
        "site=a%2Fb",
        "from=2026-11-24T00:00:00Z&to=2026-11-23T00:00:00Z",
    ] {
        let a = api.get(&format!("/v1/t/acme/metrics?{bad}"), &read);
        assert_eq!(a.status, 400, "{bad}: {}", a.text);
        assert!(!a.json()["reason"].as_str().unwrap().is_empty());
    }
    // Roll-ups: all 30 windows start in the 10 o'clock hour of a Monday (UTC).
    let ots: u64 = (0..30).map(|m| m % 7).sum();
    let hours = api.get("/v1/t/acme/rollups/hour-of-day", &read).json();
    assert_eq!(hours["windows"], 30);
    assert_eq!(hours["buckets"][0]["key"], "10");
    assert_eq!(hours["buckets"][0]["opportunities_to_see"], ots);
    let local = api
        .get(
            "/v1/t/acme/rollups/hour-of-day?utc_offset_minutes=-660",
            &read,
        )
        .json();
    assert_eq!(local["buckets"][0]["key"], "23");
    let days = api.get("/v1/t/acme/rollups/day-of-week", &read).json();
    assert_eq!(days["buckets"][0]["key"], "monday");
    assert_eq!(api.get("/v1/t/acme/rollups/fortnight", &read).status, 400);
    // Exports, streamed.
    let export = api.token(Role::Engineer).to_owned();
    let jsonl = api.get("/v1/t/acme/export?kind=metrics&format=jsonl", &export);
    assert_eq!(jsonl.status, 200);
    assert_eq!(jsonl.header("content-type"), Some("application/jsonl"));
    let lines: Vec<&str> = jsonl.text.lines().collect();
    assert_eq!(lines.len(), 30);
    for line in &lines {
        let r = Record::from_slice(line.as_bytes()).unwrap();
        assert_eq!(r.compute_hash().unwrap(), r.hash);
    }
    let csv = api.get(
        "/v1/t/acme/export?format=csv&from=2026-11-23T10:05:00Z",
        &export,
    );
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let rows: Vec<&str> = csv.text.lines().collect();
    assert_eq!(
        rows.len(),
        1 + 26,
        "a header and the windows captured from 10:05 on"
    );
    assert!(rows[0].starts_with("site,device,stream,seq,capture_time,window_start"));
    assert!(rows[1].starts_with("hq,cam-1,door,"));
    // Images: listed without their pixels, served to the images scope byte for byte.
    let engineer = api.token(Role::Engineer).to_owned();
    let list = api.get("/v1/t/acme/images", &engineer).json();
    let item = &list["items"][0];
    assert_eq!(
        (item["part"].as_u64(), item["decision"].as_str()),
        (Some(7), Some("NG"))
    );
    assert!(item.get("data").is_none(), "no pixels in the list");
    let id = item["id"].as_str().unwrap().to_owned();
    let raw = api
        .agent
        .get(&format!("{}/v1/t/acme/images/{id}", api.base))
        .header("authorization", &format!("Bearer {engineer}"))
        .call()
        .unwrap();
    assert_eq!(raw.headers()["content-type"], "image/jpeg");
    assert_eq!(
        raw.headers()["x-veil-sha256"].to_str().unwrap(),
        item["sha256"].as_str().unwrap()
    );
    assert_eq!(raw.into_body().read_to_vec().unwrap(), NG_JPEG);
    assert_eq!(
        api.get(&format!("/v1/t/acme/images/{id}"), &read).status,
        403
    );
    assert_eq!(api.get("/v1/t/acme/images/00", &engineer).status, 404);
    let inspections = api.get("/v1/t/acme/metrics?device=line-1", &read).json();
    assert!(inspections["items"].as_array().unwrap().is_empty());
    // Streams and integrity alerts.
    let streams = api.get("/v1/t/acme/streams", &read).json();
    let cam1 = streams["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["device"] == "cam-1")
        .unwrap();
    assert_eq!(cam1["records"]["metrics"], 30);
    let alerts = api.get("/v1/t/acme/integrity", &read).json();
    let alert = &alerts["items"][0];
    assert_eq!(alert["source"], "service");
    assert_eq!(alert["detail"]["reason"], "seeded");
    assert!(alert["acknowledged"].is_null());
    let id = alert["id"].as_str().unwrap().to_owned();
    let ack = api.call(
        "POST",
        &format!("/v1/t/acme/integrity/{id}/acknowledge"),
        Some(&read),
        Some(&json!({"note": "known outage"})),
    );
    assert_eq!(ack.status, 200, "{}", ack.text);
    let alerts = api.get("/v1/t/acme/integrity", &read).json();
    assert_eq!(alerts["items"][0]["acknowledged"]["note"], "known outage");
    assert_eq!(
        api.call(
            "POST",
            "/v1/t/acme/integrity/s-00/acknowledge",
            Some(&read),
            None
        )
        .status,
        404
    );
    // Bad bodies: a reason, not a 5xx.
    let admin = api.token(Role::Admin).to_owned();
    for body in [
        "{",
        "[]",
        "{\"role\": 3}",
        "{\"role\": \"king\"}",
        "{\"scopes\": [\"all\"]}",
        "{\"tier\": \"gold\", \"role\": \"operator\"}",
        "{\"expires\": \"soon\", \"role\": \"operator\"}",
    ] {
        let r = api
            .agent
            .post(&format!("{}/v1/t/acme/keys", api.base))
            .header("authorization", &format!("Bearer {admin}"))
            .send(body.as_bytes())
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{body}");
    }
    assert_eq!(
        api.call("PUT", "/v1/t/acme/keys", Some(&admin), None)
            .status,
        405
    );
    assert_eq!(api.get("/v1/nothing-here", &admin).status, 404);
    api.stop();
}

#[test]
fn rate_limits_answer_429_with_headers_then_recover() {
    let mut api = start("ratelimit", "");
    let tiny = api.keys.tiny.clone();
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let a = api.get("/v1/t/acme/streams", &tiny);
        assert_eq!(a.status, 200);
        assert_eq!(a.header("ratelimit-policy"), Some("\"tiny\";q=3;w=2"));
        remaining.push(a.header("ratelimit").unwrap().to_owned());
    }
    assert!(remaining[0].starts_with("\"tiny\";r=2;"), "{remaining:?}");
    assert!(remaining[2].starts_with("\"tiny\";r=0;"), "{remaining:?}");
    let refused = api.get("/v1/t/acme/streams", &tiny);
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(refused.json()["error"], "rate_limited");
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert!(
        refused
            .header("ratelimit")
            .unwrap()
            .starts_with("\"tiny\";r=0;t=")
    );
    // Another key is not affected.
    assert_eq!(
        api.get("/v1/t/acme/streams", api.token(Role::Operator))
            .status,
        200
    );
    std::thread::sleep(Duration::from_secs(retry));
    let again = api.get("/v1/t/acme/streams", &tiny);
    assert_eq!(
        again.status, 200,
        "recovered after Retry-After: {}",
        again.text
    );
    // The refusal is in the audit log.
    let audit = api
        .get("/v1/t/acme/audit?limit=1000", api.token(Role::Admin))
        .json();
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "rate.limited")
    );
    api.stop();
}

#[test]
fn failed_authentications_are_limited_per_address_not_valid_keys() {
    // This service allows 5 failed authentications a minute per address.
    let mut api = start("failures", "");
    for i in 0..5 {
        let a = api.get("/v1/t/acme/streams", "veil_0123456789abcdef_00");
        assert_eq!(a.status, 401, "attempt {i}");
    }
    let limited = api.get("/v1/t/acme/streams", "veil_0123456789abcdef_00");
    assert_eq!(limited.status, 429, "{}", limited.text);
    let wait: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait));
    // A valid key from the same address is not locked out.
    assert_eq!(
        api.get("/v1/t/acme/streams", api.token(Role::Operator))
            .status,
        200
    );
    // Only the 5 failures were logged, not every attempt beyond.
    api.stop();
    let out = sink_service(&api.config, &["audit"]);
    let failures = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("auth.failure"))
        .count();
    assert_eq!(failures, 5);
}

#[test]
fn tls_1_2_and_1_3_only_and_no_plaintext() {
    let mut api = start("tls", "");
    let port = api.base.rsplit(':').next().unwrap().to_owned();
    let s_client = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &format!("127.0.0.1:{port}"),
                "-servername",
                "localhost",
            ])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl (scripts/setup.sh installs it)");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    // A client that really offers TLS 1.1 only (its ciphers allowed at security level 0).
    let old = s_client(&["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]);
    assert!(old.contains("alert protocol version"), "{old}");
    let v12 = s_client(&["-tls1_2"]);
    assert!(
        v12.contains("Protocol  : TLSv1.2") || v12.contains("TLSv1.2, Cipher is ECDHE"),
        "{v12}"
    );
    assert!(v12.contains("ECDHE"), "forward secrecy: {v12}");
    let v13 = s_client(&["-tls1_3"]);
    assert!(v13.contains("TLSv1.3"), "{v13}");
    // A TLS 1.2 client offering only a non-forward-secret suite is refused.
    let weak = s_client(&["-tls1_2", "-cipher", "AES128-SHA"]);
    assert!(
        weak.contains("handshake failure") || weak.contains("alert"),
        "{weak}"
    );
    // Plain HTTP on the HTTPS port: a 400 that says why, and nothing else.
    let mut plain = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    plain
        .write_all(b"GET /v1/t/acme/streams HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = String::new();
    let _ = plain.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains("HTTPS only") && !answer.contains("cam-1"),
        "{answer}"
    );
    // The positive control over TLS.
    assert_eq!(
        api.get("/v1/t/acme/streams", api.token(Role::Operator))
            .status,
        200
    );
    api.stop();
}

#[test]
fn the_audit_log_records_actions_and_verify_catches_tampering() {
    let mut api = start("auditlog", "");
    let admin = api.token(Role::Admin).to_owned();
    assert_eq!(
        api.get("/v1/t/acme/streams", "veil_0123456789abcdef_00")
            .status,
        401
    );
    assert_eq!(
        api.get("/v1/t/acme/streams", &api.keys.revoked.clone())
            .status,
        401
    );
    let created = api.call(
        "POST",
        "/v1/t/acme/keys",
        Some(&admin),
        Some(&json!({"role": "operator"})),
    );
    let kid = created.json()["key"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        api.call(
            "DELETE",
            &format!("/v1/t/acme/keys/{kid}"),
            Some(&admin),
            None
        )
        .status,
        200
    );
    assert_eq!(api.get("/v1/t/acme/export?format=csv", &admin).status, 200);
    let hook = api.call(
        "POST",
        "/v1/t/acme/webhooks",
        Some(&admin),
        Some(&json!({"url": "http://127.0.0.1:9/h", "events": ["integrity.alert"]})),
    );
    assert_eq!(hook.status, 201);
    // The export's entry is written when the stream ends.
    std::thread::sleep(Duration::from_millis(300));
    let entries = api.get("/v1/t/acme/audit?limit=1000", &admin).json()["items"]
        .as_array()
        .unwrap()
        .clone();
    let find = |action: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {entries:#?}"))
            .clone()
    };
    let success = find("auth.success");
    assert_eq!(success["source_ip"], "127.0.0.1");
    assert_eq!(success["tenant"], "acme");
    let revoked_try = entries
        .iter()
        .find(|e| {
            e["action"] == "auth.failure"
                && e["detail"]["reason"].as_str().unwrap().contains("revoked")
        })
        .expect("the revoked key's attempt");
    assert_eq!(revoked_try["outcome"], "failure");
    assert_eq!(find("key.create")["detail"]["key"], kid);
    assert_eq!(find("key.revoke")["outcome"], "success");
    assert_eq!(find("export")["detail"]["records"], 30);
    assert_eq!(find("webhook.create")["outcome"], "success");
    // Globex's admin sees none of it.
    let theirs = api
        .get("/v1/t/globex/audit", &api.keys.globex_admin.clone())
        .json();
    assert!(
        theirs["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["tenant"] == "globex")
    );
    api.stop();

    // Offline: the CLI lists the whole log (the anonymous failure and config.load included).
    let out = sink_service(&api.config, &["audit"]);
    let all: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(all.iter().any(|e| e["action"] == "config.load"));
    assert!(
        all.iter()
            .any(|e| e["actor"] == "anonymous" && e["action"] == "auth.failure")
    );
    let verify = |expect_ok: bool| {
        let out = sink_service(&api.config, &["verify"]);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(out.status.success(), expect_ok, "{report:#}");
        report
    };
    let report = verify(true);
    assert_eq!(report["audit"]["entries"], all.len());

    // Someone holding the KEK rewrites entry 3 and seals it again: the chain catches it.
    use veil_sink_service::store::SERVICE_TENANT;
    let key3 = 3u64.to_be_bytes();
    let mut original = Vec::new();
    edit_store(&api.dir, |store| {
        original = store
            .tree("audit", SERVICE_TENANT)
            .unwrap()
            .get(key3)
            .unwrap()
            .unwrap()
            .to_vec();
        let plain = store.get(SERVICE_TENANT, "audit", &key3).unwrap().unwrap();
        let mut entry: Value = serde_json::from_slice(&plain).unwrap();
        entry["outcome"] = if entry["outcome"] == "success" {
            "failure".into()
        } else {
            "success".into()
        };
        store
            .put(SERVICE_TENANT, "audit", &key3, entry.to_string().as_bytes())
            .unwrap();
    });
    let report = verify(false);
    assert!(
        report["errors"]
            .to_string()
            .contains("audit log seq 3: hash does not match"),
        "{report}"
    );
    // A flipped byte: it no longer decrypts.
    let mut flipped = original.clone();
    flipped[20] ^= 1;
    edit_store(&api.dir, |store| {
        store
            .tree("audit", SERVICE_TENANT)
            .unwrap()
            .insert(key3, flipped)
            .unwrap();
    });
    assert!(
        verify(false)["errors"]
            .to_string()
            .contains("audit log seq 3: does not decrypt")
    );
    // Deleted: the gap is named.
    edit_store(&api.dir, |store| {
        store
            .tree("audit", SERVICE_TENANT)
            .unwrap()
            .remove(key3)
            .unwrap();
    });
    assert!(
        verify(false)["errors"]
            .to_string()
            .contains("expected seq 3, found 4")
    );
    // Put back as it was: verified again.
    edit_store(&api.dir, |store| {
        store
            .tree("audit", SERVICE_TENANT)
            .unwrap()
            .insert(key3, original)
            .unwrap();
    });
    verify(true);
}

/// Opens the (stopped) service's store, lets `edit` change it, makes it durable, closes it.
fn edit_store(dir: &Path, edit: impl FnOnce(&veil_sink_service::store::Store)) {
    let store = common::store(dir);
    edit(&store);
    store.flush().unwrap();
}

#[test]
fn api_keys_from_the_command_line() {
    let dir = temp("cli-keys");
    let (config, _) = configs(&dir, veil_testkit::net::free_port());
    assert!(sink_service(&config, &["keys", "init"]).status.success());
    let out = sink_service(
        &config,
        &[
            "api-keys", "create", "--tenant", "acme", "--role", "engineer", "--name", "ci",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let (id, _) = veil_sink_service::api::keys::parse_token(&token).expect("a veil_ key");
    let list = sink_service(&config, &["api-keys", "list", "--tenant", "acme"]);
    let listed = String::from_utf8(list.stdout).unwrap();
    assert!(
        listed.contains(id) && !listed.contains(&token[22..]),
        "only the hash is kept: {listed}"
    );
    let rotated = sink_service(&config, &["api-keys", "rotate", id, "--tenant", "acme"]);
    assert!(rotated.status.success());
    assert_ne!(String::from_utf8(rotated.stdout).unwrap().trim(), token);
    assert!(
        !sink_service(&config, &["api-keys", "revoke", id, "--tenant", "globex"])
            .status
            .success()
    );
    assert!(
        sink_service(&config, &["api-keys", "revoke", id, "--tenant", "acme"])
            .status
            .success()
    );
    assert!(
        !sink_service(
            &config,
            &["api-keys", "create", "--tenant", "acme", "--scopes", "root"]
        )
        .status
        .success()
    );
    // A key that would be born expired is refused, naming the time; a future one is made.
    let expiring = |at: &str| {
        sink_service(
            &config,
            &[
                "api-keys",
                "create",
                "--tenant",
                "acme",
                "--role",
                "operator",
                "--expires",
                at,
            ],
        )
    };
    // Printing the acknowledgement key never makes a new one (it would disown the devices).
    let public = |c: &std::path::Path| sink_service(c, &["keys", "public"]);
    assert!(public(&config).status.success());
    std::fs::remove_file(dir.join("ack.key")).unwrap();
    let missing = public(&config);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("keys init"));
    assert!(!dir.join("ack.key").exists());
    let expired = expiring("2020-01-01T00:00:00Z");
    assert!(!expired.status.success());
    assert!(String::from_utf8_lossy(&expired.stderr).contains("2020-01-01T00:00:00Z"));
    assert!(expiring("2099-01-01T00:00:00Z").status.success());
    let audit =
        String::from_utf8(sink_service(&config, &["audit", "--tenant", "acme"]).stdout).unwrap();
    for action in ["key.create", "key.rotate", "key.revoke"] {
        assert!(audit.contains(action), "{audit}");
    }
    // The raw store holds no token.
    let raw: Vec<u8> = walk(&dir.join("store"));
    assert!(!raw.windows(20).any(|w| w == &token.as_bytes()[22..42]));
}

fn walk(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.extend(std::fs::read(&path).unwrap_or_default());
        }
    }
    out
}

/// What a test webhook receiver got: headers (lowercase names), body, the status it answered.
struct Hit {
    headers: std::collections::HashMap<String, String>,
    body: String,
    status: u16,
    at: Instant,
}

/// A webhook receiver of the test's own: plain HTTP/1.1 on loopback, answering 500 to the first
/// `fail_first` requests and 204 after.
fn receiver(fail_first: usize) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Hit>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/veil-hook", listener.local_addr().unwrap());
    let hits = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = hits.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut buf = Vec::new();
            let mut byte = [0u8; 1];
            while !buf.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                buf.push(byte[0]);
            }
            if !buf.ends_with(b"\r\n\r\n") {
                // The sender went away mid-request (the test kills the service while it
                // delivers): no request was made, nothing to answer or count.
                continue;
            }
            let head = String::from_utf8_lossy(&buf).to_string();
            let headers: std::collections::HashMap<String, String> = head
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
                .collect();
            let len: usize = headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0u8; len];
            let _ = stream.read_exact(&mut body);
            let mut hits = seen.lock().unwrap();
            let status = if hits.len() < fail_first { 500 } else { 204 };
            let _ = stream.write_all(
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .as_bytes(),
            );
            hits.push(Hit {
                headers,
                body: String::from_utf8_lossy(&body).into(),
                status,
                at: Instant::now(),
            });
        }
    });
    (url, hits)
}

/// The Standard Webhooks check, written here from the specification (not the service's code).
fn signature_ok(secret: &str, hit: &Hit) -> bool {
    use base64::Engine;
    use hmac::Mac;
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let (id, ts) = (
        &hit.headers["webhook-id"],
        &hit.headers["webhook-timestamp"],
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{}", hit.body).as_bytes());
    let expected = format!("v1,{}", b64.encode(mac.finalize().into_bytes()));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let fresh = ts.parse::<u64>().is_ok_and(|t| t.abs_diff(now) < 300);
    fresh
        && hit.headers["webhook-signature"]
            .split(' ')
            .any(|s| s == expected)
}

fn wait_for(what: &str, seconds: u64, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(
            t0.elapsed() < Duration::from_secs(seconds),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn webhooks_are_signed_retried_and_survive_a_restart() {
    use zenoh::Wait;
    let mut api = start("webhooks", "");
    let (url, hits) = receiver(2);
    let created = api.call(
        "POST",
        "/v1/t/acme/webhooks",
        Some(api.token(Role::Engineer)),
        Some(&json!({"url": url, "events": ["window.closed"], "description": "test"})),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let secret = created.json()["secret"].as_str().unwrap().to_owned();
    let wid = created.json()["webhook"]["id"].as_str().unwrap().to_owned();
    // A device publishes 3 windows and the checkpoint that makes them valid.
    let session = zenoh::open(veil_testkit::net::client_config(&format!(
        "tcp/127.0.0.1:{}",
        api.zenoh_port
    )))
    .wait()
    .unwrap();
    let records = Device::new("acme", "cam-5", 5).records(3, 3);
    for r in &records {
        session
            .put(r.key_expr(), r.to_vec())
            .congestion_control(zenoh::qos::CongestionControl::Block)
            .wait()
            .unwrap();
    }
    // The first attempt fails (500); the service dies before its retry is due (1 s later).
    wait_for("the first attempt", 20, || !hits.lock().unwrap().is_empty());
    api.service.as_mut().unwrap().kill();
    let killed = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    api.restart();
    wait_for("three deliveries", 30, || {
        let h = hits.lock().unwrap();
        h.iter()
            .filter(|x| x.status == 204)
            .map(|x| x.headers["webhook-id"].clone())
            .collect::<BTreeSet<_>>()
            .len()
            == 3
    });
    let hits = hits.lock().unwrap();
    for hit in hits.iter() {
        assert!(
            signature_ok(&secret, hit),
            "bad signature on {:?}",
            hit.headers
        );
        assert!(
            !signature_ok("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", hit),
            "the check can fail"
        );
        let body: Value = serde_json::from_str(&hit.body).unwrap();
        assert_eq!(body["type"], "window.closed");
        let record: Record = serde_json::from_value(body["data"]["record"].clone()).unwrap();
        assert_eq!(record.compute_hash().unwrap(), record.hash);
        assert_eq!(
            (record.tenant.as_str(), record.device.as_str()),
            ("acme", "cam-5")
        );
    }
    let first = &hits[0];
    assert_eq!(first.status, 500);
    let retried = hits
        .iter()
        .find(|h| h.status == 204 && h.headers["webhook-id"] == first.headers["webhook-id"])
        .expect("the failed delivery is retried with the same webhook-id");
    assert!(
        retried.at > killed,
        "the retry came from the restarted service"
    );
    // Windows 1..3, each delivered.
    let seqs: BTreeSet<u64> = hits
        .iter()
        .filter(|h| h.status == 204)
        .map(|h| {
            serde_json::from_str::<Value>(&h.body).unwrap()["data"]["record"]["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, BTreeSet::from([1, 2, 3]));
    // The delivery log says so.
    let log = api
        .get(
            &format!("/v1/t/acme/webhooks/{wid}/deliveries?limit=100"),
            api.token(Role::Engineer),
        )
        .json();
    let outcomes: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["outcome"].as_str().unwrap())
        .collect();
    assert!(
        outcomes.contains(&"retrying")
            && outcomes.iter().filter(|o| **o == "delivered").count() == 3,
        "{outcomes:?}"
    );
    api.stop();
}

/// Reads RFC 6587 octet-counted frames from a stream until it closes.
fn frames(mut stream: impl Read, out: std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = stream.read(&mut chunk) {
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        while let Some(sp) = buf.iter().position(|&b| b == b' ') {
            let len: usize = std::str::from_utf8(&buf[..sp])
                .unwrap()
                .parse()
                .expect("an octet count");
            if buf.len() < sp + 1 + len {
                break;
            }
            out.lock()
                .unwrap()
                .push(String::from_utf8(buf[sp + 1..sp + 1 + len].to_vec()).unwrap());
            buf.drain(..sp + 1 + len);
        }
    }
}

#[test]
fn the_audit_log_reaches_a_siem_over_syslog_tls_and_json_lines() {
    let (syslog_port, jsonl_port) = (
        veil_testkit::net::free_port(),
        veil_testkit::net::free_port(),
    );
    let mut api = start(
        "siem",
        &format!(
            r#"
[[audit.forward]]
name = "syslog"
format = "rfc5424"
transport = "tls"
address = "127.0.0.1:{syslog_port}"
server_name = "localhost"
ca = "{{certs}}/ca.pem"
[[audit.forward]]
name = "lines"
format = "jsonl"
transport = "tcp"
address = "127.0.0.1:{jsonl_port}"
"#
        ),
    );
    // Some actions, while neither receiver listens yet.
    assert_eq!(
        api.get("/v1/t/acme/streams", "veil_0123456789abcdef_00")
            .status,
        401
    );
    let created = api.call(
        "POST",
        "/v1/t/acme/keys",
        Some(api.token(Role::Admin)),
        Some(&json!({"role": "operator"})),
    );
    let kid = created.json()["key"]["id"].as_str().unwrap().to_owned();
    // The receivers come up: a syslog-over-TLS one with the service's dev certificate, and
    // a JSON Lines one over TCP.
    let certs = api.dir.join("certs");
    let tls = {
        let certs_pem = std::fs::read(certs.join("service.pem")).unwrap();
        let key_pem = std::fs::read(certs.join("service-key.pem")).unwrap();
        let chain = rustls_pemfile::certs(&mut certs_pem.as_slice())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
            .unwrap()
            .unwrap();
        std::sync::Arc::new(
            rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
        )
    };
    let syslog = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let listener = std::net::TcpListener::bind(("127.0.0.1", syslog_port)).unwrap();
        let out = syslog.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let conn = rustls::ServerConnection::new(tls.clone()).unwrap();
                frames(rustls::StreamOwned::new(conn, stream), out.clone());
            }
        });
        let listener = std::net::TcpListener::bind(("127.0.0.1", jsonl_port)).unwrap();
        let out = lines.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                for line in std::io::BufReader::new(stream)
                    .lines()
                    .map_while(Result::ok)
                {
                    out.lock().unwrap().push(line);
                }
            }
        });
    }
    let has_key_create = |v: &std::sync::Arc<std::sync::Mutex<Vec<String>>>| {
        v.lock()
            .unwrap()
            .iter()
            .any(|m| m.contains("key.create") && m.contains(&kid))
    };
    wait_for("the syslog messages", 30, || has_key_create(&syslog));
    wait_for("the JSON lines", 30, || has_key_create(&lines));
    api.stop();
    let all: Vec<veil_sink_service::audit::AuditEntry> =
        String::from_utf8(sink_service(&api.config, &["audit"]).stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    use std::io::BufRead;
    // Syslog: RFC 5424 headers, structured data, the entry as the message; every entry in order.
    let syslog = syslog.lock().unwrap();
    assert!(syslog.len() >= 3, "{syslog:?}");
    for (i, msg) in syslog.iter().enumerate() {
        let entry = &all[i];
        let fields: Vec<&str> = msg.splitn(7, ' ').collect();
        let pri = if entry.outcome == "success" {
            "<109>1"
        } else {
            "<108>1"
        };
        assert_eq!(fields[0], pri, "{msg}");
        assert!(
            fields[1].ends_with('Z') && fields[1].split('.').nth(1).unwrap().len() <= 7,
            "{msg}"
        );
        assert_eq!(fields[3], "veil-sink-service");
        assert_eq!(fields[5], entry.action);
        assert!(
            fields[6].starts_with(&format!("[veil@32473 seq=\"{}\"", entry.seq)),
            "{msg}"
        );
        let json_at = msg.find("] {").unwrap() + 2;
        let sent: veil_sink_service::audit::AuditEntry =
            serde_json::from_str(&msg[json_at..]).unwrap();
        assert_eq!(&sent, entry);
    }
    assert!(
        syslog
            .iter()
            .any(|m| m.starts_with("<108>1") && m.contains("auth.failure"))
    );
    // JSON Lines: the same entries, chained.
    let lines = lines.lock().unwrap();
    for (i, line) in lines.iter().enumerate() {
        let sent: veil_sink_service::audit::AuditEntry = serde_json::from_str(line).unwrap();
        assert_eq!(&sent, &all[i]);
        assert_eq!(sent.compute_hash().unwrap(), sent.hash);
        if i > 0 {
            assert_eq!(sent.prev, all[i - 1].hash);
        }
    }
}

/// The cookie a `Set-Cookie` header sets (`__Host-veil_session=<value>`).
fn session_cookie(answer: &Answer) -> String {
    let set = answer.header("set-cookie").expect("a Set-Cookie header");
    set.split(';').next().unwrap().to_owned()
}

#[test]
fn console_sessions_need_their_cookie_and_csrf_token_and_end_with_their_key() {
    let api = start("sessions", "");
    // The console itself: the page, its script and the pinned chart library, under a strict
    // Content-Security-Policy.
    let page = api.call("GET", "/", None, None);
    assert_eq!(page.status, 200);
    assert!(page.text.contains("/console/app.js"), "{}", page.text);
    let csp = page.header("content-security-policy").unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    let uplot = api.call("GET", "/console/vendor/uPlot.iife.min.js", None, None);
    assert_eq!(uplot.status, 200);
    assert!(uplot.text.contains("uPlot"));

    // Sign-in: a bad key or none is refused; a good one gets an HttpOnly, Secure,
    // SameSite=Strict cookie and a CSRF token.
    let sign_in = |key: &str| api.call("POST", "/v1/session", None, Some(&json!({"api_key": key})));
    assert_eq!(sign_in(&api.keys.revoked).status, 401);
    assert_eq!(sign_in("hunter2").status, 401);
    // Login CSRF: a form's content type, or a request a browser names cross-site, is refused.
    let body = json!({"api_key": api.token(Role::Operator)});
    let form = api.call_with(
        "POST",
        "/v1/session",
        &[("content-type", "text/plain")],
        Some(&body),
    );
    assert_eq!(form.status, 400, "{}", form.text);
    let cross = api.call_with(
        "POST",
        "/v1/session",
        &[
            ("content-type", "application/json"),
            ("sec-fetch-site", "cross-site"),
        ],
        Some(&body),
    );
    assert_eq!(cross.status, 403, "{}", cross.text);
    assert_eq!(
        api.call("POST", "/v1/session", None, Some(&json!({})))
            .status,
        400
    );
    let operator = sign_in(api.token(Role::Operator));
    assert_eq!(operator.status, 201, "{}", operator.text);
    let set = operator.header("set-cookie").unwrap().to_owned();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    let cookie = session_cookie(&operator);
    let csrf = operator.json()["csrf_token"].as_str().unwrap().to_owned();
    assert_eq!(operator.json()["role"], "operator");
    let with = |method: &str, path: &str, csrf: Option<&str>| {
        let mut headers = vec![("cookie", cookie.as_str())];
        if let Some(c) = csrf {
            headers.push(("x-csrf-token", c));
        }
        api.call_with(method, path, &headers, Some(&json!({})))
    };
    // Reads through the session; the session is no key for another tenant or another scope.
    assert_eq!(with("GET", "/v1/t/acme/streams", None).status, 200);
    assert_eq!(
        api.call("GET", "/v1/t/acme/streams", None, None).status,
        401
    );
    assert_eq!(with("GET", "/v1/t/globex/streams", None).status, 404);
    assert_eq!(with("GET", "/v1/t/acme/keys", None).status, 403);
    let shown = with("GET", "/v1/session", None);
    assert_eq!(shown.json()["csrf_token"], csrf.as_str());
    // A change needs the CSRF token: none or a wrong one is 403, the right one works.
    let alerts = with("GET", "/v1/t/acme/integrity", None).json();
    let alert = alerts["items"][0]["id"].as_str().unwrap().to_owned();
    let ack = format!("/v1/t/acme/integrity/{alert}/acknowledge");
    assert_eq!(with("POST", &ack, None).status, 403);
    assert_eq!(with("POST", &ack, Some(&csrf[1..])).status, 403);
    let done = with("POST", &ack, Some(&csrf));
    assert_eq!(done.status, 200, "{}", done.text);
    // A made-up cookie is no session.
    let forged = api.call_with(
        "GET",
        "/v1/t/acme/streams",
        &[(
            "cookie",
            &format!("__Host-veil_session={}", "ab".repeat(32)),
        )],
        None,
    );
    assert_eq!(forged.status, 401);

    // A bearer key wins over a cookie: another tenant's key with this session reads its own.
    let mixed = api.call_with(
        "GET",
        "/v1/t/acme/streams",
        &[
            ("cookie", cookie.as_str()),
            (
                "authorization",
                &format!("Bearer {}", api.keys.globex_admin),
            ),
        ],
        None,
    );
    assert_eq!(mixed.status, 404, "{}", mixed.text);
    // Revoking a key ends its sessions at once (a session of its own, made for this).
    let engineer = sign_in(api.token(Role::Engineer));
    let engineer_cookie = session_cookie(&engineer);
    let engineer_id = engineer.json()["key_id"].as_str().unwrap().to_owned();
    let read = |c: &str| {
        api.call_with("GET", "/v1/t/acme/streams", &[("cookie", c)], None)
            .status
    };
    assert_eq!(read(&engineer_cookie), 200);
    let revoked = api.call(
        "DELETE",
        &format!("/v1/t/acme/keys/{engineer_id}"),
        Some(api.token(Role::Admin)),
        None,
    );
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_eq!(read(&engineer_cookie), 401);

    // Rotating the key behind a session ends it at once.
    let key_id = operator.json()["key_id"].as_str().unwrap().to_owned();
    let admin = api.token(Role::Admin).to_owned();
    let rotated = api.call(
        "POST",
        &format!("/v1/t/acme/keys/{key_id}/rotate"),
        Some(&admin),
        None,
    );
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert_eq!(with("GET", "/v1/t/acme/streams", None).status, 401);

    // Sign-out ends a session (with its CSRF token only) and clears the cookie.
    let again = sign_in(rotated.json()["token"].as_str().unwrap());
    let (cookie, csrf) = (
        session_cookie(&again),
        again.json()["csrf_token"].as_str().unwrap().to_owned(),
    );
    fn headers<'a>(cookie: &'a str, csrf: Option<&'a str>) -> Vec<(&'static str, &'a str)> {
        let mut h = vec![("cookie", cookie)];
        h.extend(csrf.map(|c| ("x-csrf-token", c)));
        h
    }
    assert_eq!(
        api.call_with("DELETE", "/v1/session", &headers(&cookie, None), None)
            .status,
        403
    );
    let out = api.call_with(
        "DELETE",
        "/v1/session",
        &headers(&cookie, Some(&csrf)),
        None,
    );
    assert_eq!(out.status, 200, "{}", out.text);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    let after = api.call_with("GET", "/v1/t/acme/streams", &headers(&cookie, None), None);
    assert_eq!(after.status, 401);

    // Audited: each sign-in and sign-out, and the refused ones.
    let audit = api.get("/v1/t/acme/audit?limit=1000", &admin).json();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.iter().filter(|a| **a == "session.begin").count(), 3);
    assert_eq!(actions.iter().filter(|a| **a == "session.end").count(), 1);
}

#[test]
fn metrics_parsed_by_prometheus_equal_the_workload_sent() {
    use zenoh::Wait;
    let metrics_port = veil_testkit::net::free_port();
    let mut api = start(
        "metrics",
        &format!("[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n"),
    );
    // The known workload: a new device's chain over Zenoh (every record acknowledged), three
    // payloads that are not records, and API requests by route and status.
    let session = zenoh::open(veil_testkit::net::client_config(&format!(
        "tcp/127.0.0.1:{}",
        api.zenoh_port
    )))
    .wait()
    .unwrap();
    let mut device = Device::new("acme", "cam-7", 7);
    let chain = device.records(40, 10);
    let last = chain.last().unwrap().seq;
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = acked.clone();
    let _acks = session
        .declare_subscriber(device.names.ack_key())
        .callback(move |s| {
            if let Some(a) = veil_wire::Ack::from_slice(&s.payload().to_bytes()) {
                seen.fetch_max(a.seq, std::sync::atomic::Ordering::AcqRel);
            }
        })
        .wait()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    for r in &chain {
        session
            .put(r.key_expr(), r.to_vec())
            .congestion_control(zenoh::qos::CongestionControl::Block)
            .wait()
            .unwrap();
    }
    for junk in [&b"not json"[..], b"{", b"[1,2,3]"] {
        session
            .put("veil/acme/hq/cam-8/door/metrics", junk.to_vec())
            .congestion_control(zenoh::qos::CongestionControl::Block)
            .wait()
            .unwrap();
    }
    let t0 = Instant::now();
    while acked.load(std::sync::atomic::Ordering::Acquire) < last {
        assert!(t0.elapsed() < Duration::from_secs(20), "not acknowledged");
        std::thread::sleep(Duration::from_millis(50));
    }
    let reader = api.token(Role::Operator).to_owned();
    for _ in 0..3 {
        assert_eq!(api.get("/v1/t/acme/streams", &reader).status, 200);
    }
    assert_eq!(api.get("/v1/t/acme/keys", &reader).status, 403);
    // Methods are the client's choice: as labels they fall into one `other`.
    for i in 0..20 {
        let sent = std::process::Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-X",
                &format!("M{i}ETHOD"),
                "--cacert",
            ])
            .arg(api.dir.join("certs/ca.pem"))
            .arg(format!("{}/v1/t/acme/streams", api.base))
            .status()
            .unwrap();
        assert!(sent.success());
    }
    std::thread::sleep(Duration::from_millis(500));

    // Scraped and parsed by the Prometheus project's own Python parser.
    let out = std::process::Command::new(veil_testkit::paths::python_client())
        .arg(veil_testkit::paths::repo_path(
            "tests/python/prometheus_scrape.py",
        ))
        .arg(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let samples: Value = serde_json::from_slice(&out.stdout).unwrap();
    let value = |name: &str, labels: Value| -> f64 {
        samples
            .as_array()
            .unwrap()
            .iter()
            .find(|s| {
                s["name"] == name
                    && labels
                        .as_object()
                        .unwrap()
                        .iter()
                        .all(|(k, v)| s["labels"][k] == *v)
            })
            .and_then(|s| s["value"].as_f64())
            .unwrap_or_else(|| panic!("no {name} {labels} in {samples}"))
    };
    let n = chain.len() as f64;
    assert_eq!(value("veil_records_received_total", json!({})), n + 3.0);
    assert_eq!(value("veil_records_stored_total", json!({})), n);
    assert_eq!(
        value(
            "veil_records_quarantined_total",
            json!({"reason": "malformed"})
        ),
        3.0
    );
    assert_eq!(
        value(
            "veil_acknowledgement_lag_records",
            json!({"unit": "acme/hq/cam-7/door"})
        ),
        0.0
    );
    assert!(value("veil_group_commit_seconds_count", json!({})) >= 1.0);
    assert_eq!(
        value(
            "veil_api_requests_total",
            json!({"route": "/v1/t/{tenant}/streams", "method": "GET", "status": "200"})
        ),
        3.0
    );
    assert_eq!(
        value(
            "veil_api_requests_total",
            json!({"route": "/v1/t/{tenant}/keys", "method": "GET", "status": "403"})
        ),
        1.0
    );
    assert!(
        value(
            "veil_api_request_seconds_count",
            json!({"route": "/v1/t/{tenant}/streams"})
        ) >= 3.0
    );
    assert!(value("veil_store_size_bytes", json!({})) > 0.0);
    let methods: BTreeSet<String> = samples
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["labels"]["method"].as_str().map(str::to_owned))
        .collect();
    assert!(
        methods
            .iter()
            .all(|m| ["GET", "POST", "other"].contains(&m.as_str())),
        "{methods:?}"
    );
    assert_eq!(value("veil_webhook_queue_depth", json!({})), 0.0);
    api.stop();
}
