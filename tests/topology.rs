// SPDX-License-Identifier: MIT OR Apache-2.0
//! Many sites, several stores: two real `zenohd` routers in a mesh, two `sink-service serve`
//! processes owning disjoint tenants, eight real auditsink pipelines spread over both routers.
//! Faults one at a time while they publish; at the end every record is stored exactly once, in
//! its owner's store only, and both stores verify. A service claiming an owned tenant refuses to
//! start.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zenoh::Wait;

use veil_testkit::mesh::{Relay, Router, config_with_ports};
use wait_timeout::ChildExt;

#[path = "sink_common.rs"]
mod common;

use common::{Service, serve, sink_service, temp};

/// The routers' ports in the repository's configs.
const R1: u16 = 7451;
const R2: u16 = 7452;

/// Two routers on free ports, router 2 connecting to router 1 (configs/zenoh/router-*.json5).
fn mesh(dir: &Path) -> (Router, Router, [(u16, u16); 2]) {
    let ports = [
        (R1, veil_e2e::store::free_port()),
        (R2, veil_e2e::store::free_port()),
    ];
    let r1 = Router::start(
        &config_with_ports(
            "configs/zenoh/router-1.json5",
            &ports,
            dir,
            "router-1.json5",
        ),
        ports[0].1,
    );
    let r2 = Router::start(
        &config_with_ports(
            "configs/zenoh/router-2.json5",
            &ports,
            dir,
            "router-2.json5",
        ),
        ports[1].1,
    );
    (r1, r2, ports)
}

/// The endpoints in the other order: a client of router 2 first, router 1 second.
fn swapped(ports: &[(u16, u16); 2]) -> [(u16, u16); 2] {
    [(R1, ports[1].1), (R2, ports[0].1)]
}

/// A service's configuration owning `owns`, a client of the routers (in `ports`' order), with
/// its keys made; returns the config and the store's acknowledgement public key.
fn store(dir: &Path, name: &str, owns: &[&str], ports: &[(u16, u16); 2]) -> (PathBuf, String) {
    let zenoh = config_with_ports(
        "configs/zenoh/service-routers.json5",
        ports,
        dir,
        &format!("{name}.json5"),
    );
    let config = dir.join(format!("{name}.toml"));
    // Keys in a folder of their own: the acknowledgement key lies beside the KEK.
    let keys = dir.join(format!("{name}-keys"));
    std::fs::create_dir_all(&keys).unwrap();
    let owns = owns
        .iter()
        .map(|k| format!("{k:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = \"{}\"\nkek_file = \"{}\"\n[zenoh]\nconfig = \"{}\"\nowns = [{owns}]\n\
             admin = \"veil-admin/{name}\"\n[trust]\nmode = \"tofu\"\n",
            dir.join(name).display(),
            keys.join("sink.kek").display(),
            zenoh.display()
        ),
    )
    .unwrap();
    assert!(sink_service(&config, &["keys", "init"]).status.success());
    let public = sink_service(&config, &["keys", "public"]);
    assert!(public.status.success(), "{public:?}");
    let key = String::from_utf8(public.stdout).unwrap().trim().to_owned();
    (config, key)
}

fn verify(config: &Path) -> serde_json::Value {
    let out = sink_service(config, &["verify"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{report}");
    report
}

/// `serve` that must refuse to start: whether it exited 0, and what it printed (asserting
/// the ownership refusal's exit code, 3, when it did not).
fn refused_serve(config: &Path) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_veil-sink-service"))
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = child.wait_timeout(Duration::from_secs(60)).unwrap();
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("serve did not refuse within 60 s");
    };
    let mut text = String::new();
    for mut stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read>),
    ]
    .into_iter()
    .flatten()
    {
        let _ = stream.read_to_string(&mut text);
    }
    if !status.success() {
        assert_eq!(status.code(), Some(3), "{text}");
    }
    (status.success(), text)
}

use std::io::Read;

struct Device {
    tenant: &'static str,
    name: String,
    owner: usize,
}

#[test]
fn eight_devices_two_routers_two_stores_survive_faults_and_each_record_is_stored_once_by_its_owner()
{
    let dir = temp("topology");
    let (mut r1, _r2, ports) = mesh(&dir);
    // Store A behind router 1 first, store B behind router 2 first; each fails over.
    let (config_a, key_a) = store(&dir, "store-a", &["veil/acme/**"], &ports);
    let (config_b, key_b) = store(&dir, "store-b", &["veil/globex/**"], &swapped(&ports));
    let mut services: Vec<Option<Service>> = vec![Some(serve(&config_a)), Some(serve(&config_b))];
    assert_ne!(key_a, key_b, "each store signs with its own key");
    let keys = [key_a, key_b];

    // What router 2 carries, by device and moment: evidence that the faults took effect.
    let watcher = zenoh::open(veil_e2e::client_config(&format!(
        "tcp/127.0.0.1:{}",
        ports[1].1
    )))
    .wait()
    .unwrap();
    let seen: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let log = seen.clone();
    let _watch = watcher
        .declare_subscriber("veil/**")
        .callback(move |sample| {
            if let Some(device) = sample.key_expr().as_str().split('/').nth(3)
                && let Ok(mut l) = log.lock()
            {
                l.push((device.to_owned(), Instant::now()));
            }
        })
        .wait()
        .unwrap();
    let seen_between = |device: &str, from: Instant, to: Instant| -> usize {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|(d, t)| d == device && *t >= from && *t < to)
            .count()
    };

    // Eight devices: even ones of acme (store A), odd ones of globex (store B); half list
    // router 1 first, half router 2; the last one reaches router 2 through a relay we can cut.
    let relay = Relay::start(ports[1].1);
    let mut devices = Vec::new();
    let mut threads = Vec::new();
    for i in 0..8usize {
        let (tenant, owner) = if i % 2 == 0 {
            ("acme", 0)
        } else {
            ("globex", 1)
        };
        let zenoh = if i == 7 {
            config_with_ports(
                "configs/zenoh/device-tcp.json5",
                &[(7447, relay.port)],
                &dir,
                "device-7.json5",
            )
        } else {
            let order = if i < 4 { ports } else { swapped(&ports) };
            config_with_ports(
                "configs/zenoh/device-routers.json5",
                &order,
                &dir,
                &format!("device-{i}.json5"),
            )
        };
        let name = format!("cam-{i}");
        let description = format!(
            "videotestsrc num-buffers=900 pattern=black ! video/x-raw,width=64,height=48,framerate=10/1 ! \
             identity sleep-time=33000 ! aggregator window=1 start-time=2026-11-23T10:00:00Z ! \
             auditsink tenant={tenant} site=hq device={name} store-public-key={} checkpoint-interval=5 \
             eos-timeout=120000 ack-timeout=300 zenoh-config={} spool-dir={}",
            keys[owner],
            zenoh.display(),
            dir.join(format!("spool-{i}")).display()
        );
        threads.push(std::thread::spawn(move || {
            veil_e2e::audit_outcome(&veil_e2e::run_to_eos(&description, 300))
        }));
        devices.push(Device {
            tenant,
            name,
            owner,
        });
    }

    // Faults, one at a time, while the devices publish (~30 s each).
    let start = Instant::now();
    let at = |s: u64| {
        let t = Duration::from_secs(s);
        if let Some(rest) = t.checked_sub(start.elapsed()) {
            std::thread::sleep(rest);
        }
    };
    at(4);
    eprintln!("SIGKILL router 1");
    r1.kill();
    let r1_down = Instant::now();
    at(9);
    let r1_up = Instant::now();
    r1.restart();
    eprintln!("router 1 back");
    at(11);
    eprintln!("SIGKILL store B");
    if let Some(mut b) = services[1].take() {
        b.kill();
    }
    at(17);
    services[1] = Some(serve(&config_b));
    eprintln!("store B back");
    at(19);
    eprintln!("device 7 cut off for 5 s");
    relay.cut(Duration::from_secs(5));
    let cut = Instant::now();

    let outcomes: Vec<(u64, bool)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    eprintln!(
        "devices done after {:.0} s: {outcomes:?}",
        start.elapsed().as_secs_f64()
    );
    // The devices listing router 1 first moved to router 2 while router 1 was down (given
    // 2.5 s to notice and reconnect); device 7 was silent while cut off, and heard before and
    // after (the control).
    for device in &devices[..4] {
        let n = seen_between(&device.name, r1_down + Duration::from_millis(2500), r1_up);
        assert!(
            n > 0,
            "{} sent nothing through router 2 while router 1 was down",
            device.name
        );
    }
    let cam7 = |from: Instant, to: Instant| seen_between("cam-7", from, to);
    assert_eq!(
        cam7(
            cut + Duration::from_millis(500),
            cut + Duration::from_secs(5)
        ),
        0
    );
    assert!(cam7(start, cut) > 0 && cam7(cut + Duration::from_secs(5), Instant::now()) > 0);
    for (device, (last, complete)) in devices.iter().zip(&outcomes) {
        assert!(
            *complete,
            "{}: not every record acknowledged by its owner",
            device.name
        );
        assert!(*last > 50, "{}: only {last} records", device.name);
    }
    // After the faults the owners' claims still hold across the mesh: a service claiming
    // acme through router 1 (restarted; store A moved to router 2) is refused.
    let (config_c, _) = store(&dir, "store-c", &["veil/acme/**"], &ports);
    let (ok, text) = refused_serve(&config_c);
    assert!(
        !ok && text.contains("veil/acme/** overlaps veil/acme/** owned by store "),
        "{text}"
    );
    for service in services.iter_mut() {
        assert!(service.take().unwrap().stop());
    }

    // Every record once, in its owner's store only; both stores verify.
    let reports = [verify(&config_a), verify(&config_b)];
    for (owner, report) in reports.iter().enumerate() {
        let mine: Vec<(&Device, u64)> = devices
            .iter()
            .zip(&outcomes)
            .filter(|(d, _)| d.owner == owner)
            .map(|(d, (last, _))| (d, *last))
            .collect();
        let chains = report["chains"].as_object().unwrap();
        assert_eq!(chains.len(), mine.len(), "store {owner}: {report}");
        for (device, last) in &mine {
            let chain = format!("{}/{}/default", device.tenant, device.name);
            assert_eq!(
                chains.get(&chain),
                Some(&(*last).into()),
                "{chain}: {report}"
            );
        }
        let total: u64 = mine.iter().map(|(_, last)| last).sum();
        assert_eq!(report["records"], total, "store {owner}: {report}");
        assert_eq!(report["staged"], 0, "{report}");
        assert_eq!(report["quarantined"], 0, "{report}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_service_claiming_part_of_an_owned_tenant_refuses_to_start_naming_the_overlap() {
    let dir = temp("ownership");
    let (_r1, _r2, ports) = mesh(&dir);
    let (config_a, _) = store(&dir, "store-a", &["veil/acme/**"], &ports);
    let a = serve(&config_a);

    // Behind the other router, claiming one site of acme: refused, naming both sets and A.
    let (config_c, _) = store(&dir, "store-c", &["veil/acme/hq/**"], &swapped(&ports));
    let (ok, text) = refused_serve(&config_c);
    assert!(!ok, "a second owner of acme/hq started: {text}");
    assert!(
        text.contains("veil/acme/hq/** overlaps veil/acme/** owned by store "),
        "{text}"
    );
    // Control: the same service owning a tenant nobody owns starts.
    std::fs::write(
        &config_c,
        std::fs::read_to_string(&config_c)
            .unwrap()
            .replace("veil/acme/hq/**", "veil/initech/**"),
    )
    .unwrap();
    let c = serve(&config_c);
    assert!(c.stop());
    assert!(a.stop());

    // Two stores claiming intersecting sets started at the same moment, each behind its own
    // router: the one that announced first keeps its set, the other stops, naming it.
    let (config_d, _) = store(&dir, "store-d", &["veil/globex/**"], &ports);
    let (config_e, _) = store(&dir, "store-e", &["veil/globex/hq/**"], &swapped(&ports));
    let spawn = |config: &Path| {
        Command::new(env!("CARGO_BIN_EXE_veil-sink-service"))
            .arg("--config")
            .arg(config)
            .arg("serve")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut both = [spawn(&config_d), spawn(&config_e)];
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut exited = Vec::new();
    while Instant::now() < deadline && exited.is_empty() {
        std::thread::sleep(Duration::from_millis(100));
        for (i, child) in both.iter_mut().enumerate() {
            if let Some(status) = child.try_wait().unwrap() {
                exited.push((i, status));
            }
        }
    }
    // Give the other time to go too, if it (wrongly) would.
    std::thread::sleep(Duration::from_secs(3));
    for (i, child) in both.iter_mut().enumerate() {
        if !exited.iter().any(|(j, _)| *j == i)
            && let Some(status) = child.try_wait().unwrap()
        {
            exited.push((i, status));
        }
    }
    assert_eq!(
        exited.len(),
        1,
        "exactly one of two simultaneous owners stops: {exited:?}"
    );
    let (loser, status) = exited[0];
    assert_eq!(status.code(), Some(3));
    let mut text = String::new();
    both[loser]
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains("announced before this one"), "{text}");
    let winner = &mut both[1 - loser];
    Command::new("kill")
        .arg("-TERM")
        .arg(winner.id().to_string())
        .status()
        .unwrap();
    assert!(winner.wait().unwrap().success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_history_query_through_one_router_is_answered_by_every_owner_for_one_credential() {
    let dir = temp("history-mesh");
    let (_r1, _r2, ports) = mesh(&dir);
    // One tenant, two sites, two stores: A owns acme's hq, B owns acme's lab.
    let (config_a, key_a) = store(&dir, "store-a", &["veil/acme/hq/**"], &ports);
    let (config_b, key_b) = store(&dir, "store-b", &["veil/acme/lab/**"], &swapped(&ports));
    let api_key = |config: &Path, limits: &[&str]| -> String {
        // An engineer's key: records, images and the export.
        let mut args = vec![
            "api-keys", "create", "--tenant", "acme", "--role", "engineer",
        ];
        args.extend_from_slice(limits);
        let out = sink_service(config, &args);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    // One credential for both stores (made in A, imported into B: the secret's hash only), one
    // limited to the lab site (the station scope must hold across owners) and one that only A
    // knows (the control).
    let (shared, lab_only, a_only) = (
        api_key(&config_a, &[]),
        api_key(&config_a, &["--site", "lab"]),
        api_key(&config_a, &[]),
    );
    for (n, credential) in [&shared, &lab_only].into_iter().enumerate() {
        let id = credential.split('_').nth(1).unwrap();
        let exported = sink_service(&config_a, &["api-keys", "export", id, "--tenant", "acme"]);
        assert!(exported.status.success(), "{exported:?}");
        let file = dir.join(format!("key-{n}.json"));
        std::fs::write(&file, &exported.stdout).unwrap();
        assert!(
            !String::from_utf8_lossy(&exported.stdout)
                .contains(credential.rsplit('_').next().unwrap())
        );
        let imported = sink_service(&config_b, &["api-keys", "import", file.to_str().unwrap()]);
        assert!(imported.status.success(), "{imported:?}");
    }

    // Store A also serves the HTTPS API: the one front door.
    let certs = dir.join("certs");
    veil_testkit::certs::generate(&certs, "Veil test", &[]).unwrap();
    let api_port = veil_e2e::store::free_port();
    let mut text = std::fs::read_to_string(&config_a).unwrap();
    text.push_str(&format!(
        "[api]\nlisten = \"127.0.0.1:{api_port}\"\ncert = \"{0}/service.pem\"\nkey = \"{0}/service-key.pem\"\n",
        certs.display()
    ));
    std::fs::write(&config_a, text).unwrap();

    let (a, b) = (serve(&config_a), serve(&config_b));
    let mut runs = Vec::new();
    for (i, (site, key, order)) in [("hq", &key_a, ports), ("lab", &key_b, swapped(&ports))]
        .into_iter()
        .enumerate()
    {
        let zenoh = config_with_ports(
            "configs/zenoh/device-routers.json5",
            &order,
            &dir,
            &format!("device-{site}.json5"),
        );
        let description = format!(
            "videotestsrc num-buffers=300 pattern=black ! video/x-raw,width=64,height=48,framerate=10/1 ! \
             aggregator window=1 start-time=2026-11-23T10:00:00Z ! \
             auditsink tenant=acme site={site} device=cam-{i} store-public-key={key} checkpoint-interval=5 \
             eos-timeout=60000 ack-timeout=300 zenoh-config={} spool-dir={}",
            zenoh.display(),
            dir.join(format!("spool-{site}")).display()
        );
        runs.push(std::thread::spawn(move || {
            veil_e2e::audit_outcome(&veil_e2e::run_to_eos(&description, 300))
        }));
    }
    // And an inspection station in the lab keeping its NG images (5 of 10 parts are bad).
    let parts = dir.join("parts.rgb");
    let mut frames = Vec::new();
    for (i, bad) in [
        false, true, false, true, true, false, false, true, false, true,
    ]
    .into_iter()
    .enumerate()
    {
        frames.extend(veil_tools::synth::inspection_part(128, 128, bad, i * 2));
    }
    std::fs::write(&parts, frames).unwrap();
    let rules = dir.join("inspection.toml");
    std::fs::write(
        &rules,
        "trigger = \"frame\"\n[[rule]]\nname = \"dark-blob\"\nlabel = \"ng\"\nmin_confidence = 0.6\n",
    )
    .unwrap();
    let zenoh = config_with_ports(
        "configs/zenoh/device-routers.json5",
        &swapped(&ports),
        &dir,
        "device-line.json5",
    );
    let description = format!(
        "filesrc location={parts} ! rawvideoparse format=rgb width=128 height=128 framerate=10/1 ! \
         inferfilter decoder=classifier model={model} labels=ok,ng inference-size=64x64 ! \
         aggregator inspection-file={rules} image-retention=failures start-time=2026-11-23T10:00:00Z ! \
         auditsink tenant=acme site=lab device=line-1 stream=station store-public-key={key_b} \
         ack-timeout=300 eos-timeout=60000 zenoh-config={zenoh} spool-dir={spool}",
        parts = parts.display(),
        model = veil_tools::assets::require("models/darkblob.onnx").display(),
        rules = rules.display(),
        zenoh = zenoh.display(),
        spool = dir.join("spool-line").display(),
    );
    runs.push(std::thread::spawn(move || {
        veil_e2e::audit_outcome(&veil_e2e::run_to_eos(&description, 120))
    }));
    let lasts: Vec<u64> = runs
        .into_iter()
        .map(|t| {
            let (last, complete) = t.join().unwrap();
            assert!(complete);
            last
        })
        .collect();

    // The PyPI eclipse-zenoh client through one router.
    let ask = |router: u16, credential: &str, selector: &str| -> serde_json::Value {
        let out = Command::new(veil_e2e::python_client())
            .arg(veil_e2e::repo_path("examples/python/veil_history.py"))
            .args(["--connect", &format!("tcp/127.0.0.1:{router}")])
            .args(["--key", selector, "--api-key", credential])
            .env_remove("VEIL_API_KEY")
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
    };
    let (r1, r2) = (ports[0].1, ports[1].1);
    let everything = ask(r1, &shared, "veil/**");
    assert_eq!(
        everything["records"],
        lasts[0] + lasts[1] + lasts[2],
        "{everything}"
    );
    assert_eq!(everything["errors"], serde_json::json!([]), "{everything}");
    // Equal to asking each owner for its own set (through the other router).
    let hq = ask(r2, &shared, "veil/acme/hq/**");
    let lab = ask(r2, &shared, "veil/acme/lab/**");
    assert_eq!(hq["records"], lasts[0], "{hq}");
    assert_eq!(lab["records"], lasts[1] + lasts[2], "{lab}");
    let mut units = hq["units"].as_object().unwrap().clone();
    units.extend(lab["units"].as_object().unwrap().clone());
    assert_eq!(everything["units"], serde_json::Value::Object(units));
    // The control: a key only A knows gets A's records and B's refusal.
    let partial = ask(r1, &a_only, "veil/**");
    assert_eq!(partial["records"], lasts[0], "{partial}");
    assert!(
        partial["errors"].to_string().contains("401"),
        "B did not refuse a key it does not know: {partial}"
    );

    // HTTPS to store A alone (curl, A's CA): acme's windows of both sites, paged, equal to
    // asking each owner over Zenoh; roll-ups merged over both owners.
    let https = |credential: &str, path: &str| -> (u16, serde_json::Value) {
        let (status, body) = curl(&certs, api_port, credential, path);
        (
            status,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
        )
    };
    let metrics_over_zenoh = |site: &str| -> u64 {
        ask(r2, &shared, &format!("veil/acme/{site}/*/*/metrics"))["records"]
            .as_u64()
            .unwrap()
    };
    let (hq_windows, lab_windows) = (metrics_over_zenoh("hq"), metrics_over_zenoh("lab"));
    assert!(
        hq_windows > 10 && lab_windows > 10,
        "{hq_windows} {lab_windows}"
    );
    // Every item of a listing, page by page (`path` ends in `?limit=N`).
    let all_pages = |path: &str| {
        let mut items = Vec::new();
        let mut cursor = String::new();
        loop {
            let (status, page) = https(&shared, &format!("{path}{cursor}"));
            assert_eq!(status, 200, "{page}");
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => return items,
            }
        }
    };
    let listed = all_pages("/v1/t/acme/metrics?limit=7");
    let sites = |site: &str| listed.iter().filter(|r| r["site"] == site).count() as u64;
    assert_eq!((sites("hq"), sites("lab")), (hq_windows, lab_windows));
    let distinct: std::collections::BTreeSet<String> = listed
        .iter()
        .map(|r| format!("{}/{}/{}", r["site"], r["device"], r["seq"]))
        .collect();
    assert_eq!(distinct.len(), listed.len(), "a record listed twice");
    // Roll-ups: one bucket per hour over both owners, equal to the two sites' sums.
    let rollup = |query: &str| {
        let (status, body) = https(&shared, &format!("/v1/t/acme/rollups/hour-of-day{query}"));
        assert_eq!(status, 200, "{body}");
        body
    };
    let (both, hq, lab) = (rollup(""), rollup("?site=hq"), rollup("?site=lab"));
    assert_eq!(both["windows"], hq_windows + lab_windows, "{both}");
    assert_eq!(hq["windows"], hq_windows, "{hq}");
    let keys: Vec<&serde_json::Value> = both["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| &b["key"])
        .collect();
    let unique: std::collections::BTreeSet<String> = keys.iter().map(|k| k.to_string()).collect();
    assert_eq!(
        unique.len(),
        keys.len(),
        "buckets concatenated, not merged: {both}"
    );
    for bucket in both["buckets"].as_array().unwrap() {
        let part = |r: &serde_json::Value| {
            r["buckets"]
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["key"] == bucket["key"])
                .map_or(0, |b| b["windows"].as_u64().unwrap())
        };
        assert_eq!(bucket["windows"].as_u64().unwrap(), part(&hq) + part(&lab));
    }
    // The other reads through the same door: the streams of both owners (each with the
    // windows its owner holds), integrity alerts, stored images, and the export.
    let (status, streams) = https(&shared, "/v1/t/acme/streams");
    assert_eq!(status, 200, "{streams}");
    let items = streams["items"].as_array().unwrap();
    let names: Vec<String> = items
        .iter()
        .map(|s| {
            format!(
                "{}/{}",
                s["site"].as_str().unwrap(),
                s["device"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(names, ["hq/cam-0", "lab/cam-1", "lab/line-1"], "{streams}");
    let windows_of = |site: &str| -> u64 {
        items
            .iter()
            .filter(|s| s["site"] == site)
            .map(|s| s["records"]["metrics"].as_u64().unwrap_or(0))
            .sum()
    };
    assert_eq!(
        (windows_of("hq"), windows_of("lab")),
        (hq_windows, lab_windows)
    );
    let (status, body) = https(&shared, "/v1/t/acme/integrity");
    assert_eq!(status, 200, "{body}");
    assert!(body["items"].is_array(), "{body}");
    // The NG images, listed in pages of 2 and fetched one by one from their owner (B).
    let images = all_pages("/v1/t/acme/images?limit=2");
    let parts_listed: Vec<u64> = images.iter().map(|i| i["part"].as_u64().unwrap()).collect();
    assert_eq!(parts_listed, [2, 4, 5, 8, 10], "the NG parts' images");
    for image in &images {
        let path = format!("/v1/t/acme/images/{}", image["id"].as_str().unwrap());
        let out = Command::new("curl")
            .args(["-sS", "-f", "--cacert"])
            .arg(certs.join("ca.pem"))
            .args(["-H", &format!("Authorization: Bearer {shared}")])
            .arg(format!("https://127.0.0.1:{api_port}{path}"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{path}: {out:?}");
        use sha2::Digest;
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&out.stdout)),
            image["sha256"].as_str().unwrap(),
            "{path}: the JPEG is the one listed"
        );
        assert!(out.stdout.starts_with(&[0xff, 0xd8]), "{path}: a JPEG");
    }
    let (status, body) = https(&shared, "/v1/t/acme/images/00ff");
    assert_eq!(status, 404, "{body}");
    // Signed in to the console (a session cookie, no key sent): the same door forwards.
    let jar = dir.join("cookies.txt");
    let signed_in = Command::new("curl")
        .args(["-sS", "-f", "--cacert"])
        .arg(certs.join("ca.pem"))
        .arg("-c")
        .arg(&jar)
        .args(["-H", "content-type: application/json", "--data"])
        .arg(format!("{{\"api_key\": \"{shared}\"}}"))
        .arg(format!("https://127.0.0.1:{api_port}/v1/session"))
        .output()
        .unwrap();
    assert!(signed_in.status.success(), "{signed_in:?}");
    let through_session = Command::new("curl")
        .args(["-sS", "-f", "--cacert"])
        .arg(certs.join("ca.pem"))
        .arg("-b")
        .arg(&jar)
        .arg(format!("https://127.0.0.1:{api_port}/v1/t/acme/streams"))
        .output()
        .unwrap();
    assert!(through_session.status.success(), "{through_session:?}");
    let listed: serde_json::Value = serde_json::from_slice(&through_session.stdout).unwrap();
    assert_eq!(
        listed, streams,
        "a session's forwarded read differs from the key's"
    );
    let (status, body) = curl(&certs, api_port, &shared, "/v1/t/acme/export?kind=metrics");
    assert_eq!(status, 200, "{body}");
    let exported: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let exported_site = |site: &str| exported.iter().filter(|r| r["site"] == site).count() as u64;
    assert_eq!(
        (exported_site("hq"), exported_site("lab")),
        (hq_windows, lab_windows)
    );
    let (status, csv) = curl(
        &certs,
        api_port,
        &shared,
        "/v1/t/acme/export?kind=metrics&format=csv",
    );
    assert_eq!(status, 200, "{csv}");
    assert_eq!(csv.lines().count() as u64, 1 + hq_windows + lab_windows);
    // A key limited to the lab site sees the lab only, whichever store holds what: listings,
    // streams, roll-ups and the export; and a request for hq gets nothing of it.
    let (status, page) = https(&lab_only, "/v1/t/acme/metrics?limit=1000");
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len() as u64, lab_windows, "{page}");
    assert!(items.iter().all(|r| r["site"] == "lab"), "{page}");
    let (_, streams) = https(&lab_only, "/v1/t/acme/streams");
    assert_eq!(streams["items"].as_array().unwrap().len(), 2, "{streams}");
    assert!(
        streams["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["site"] == "lab"),
        "{streams}"
    );
    let (_, limited) = https(&lab_only, "/v1/t/acme/rollups/hour-of-day");
    assert_eq!(limited["windows"], lab_windows, "{limited}");
    let (_, body) = curl(
        &certs,
        api_port,
        &lab_only,
        "/v1/t/acme/export?kind=metrics",
    );
    assert_eq!(body.lines().count() as u64, lab_windows);
    assert!(
        !body.contains("\"hq\""),
        "hq's records exported to a lab-only key"
    );
    let (status, page) = https(&lab_only, "/v1/t/acme/metrics?site=hq");
    assert!(
        status == 403 || page["items"] == serde_json::json!([]),
        "{status} {page}"
    );

    // The controls: a key only A knows is refused by B, and the front door says so (502)
    // rather than serving A's half; with B stopped, 504 naming B's set, not a partial answer,
    // for every forwarded read.
    for path in [
        "/v1/t/acme/metrics",
        "/v1/t/acme/streams",
        "/v1/t/acme/integrity",
    ] {
        let (status, body) = https(&a_only, path);
        assert_eq!(status, 502, "{path}: {body}");
        assert!(body.to_string().contains("401"), "{path}: {body}");
    }
    assert!(b.stop());
    for path in [
        "/v1/t/acme/rollups/day",
        "/v1/t/acme/streams",
        "/v1/t/acme/integrity",
        "/v1/t/acme/images",
        "/v1/t/acme/export?kind=metrics",
    ] {
        let (status, body) = https(&shared, path);
        assert!(
            status == 504 && body.to_string().contains("veil/acme/lab/**"),
            "{path}: {status} {body}"
        );
    }
    assert!(a.stop());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_mutual_tls_mesh_carries_each_device_to_its_store_and_no_device_poses_as_a_store() {
    use veil_testkit::zenoh_acl::{MeshStore, mesh_access_control, with_access_control};
    // The shipped example is the generator's output (VEIL_UPDATE_EXAMPLES=1 rewrites it).
    let example = veil_e2e::repo_path("configs/zenoh/router-1-mtls-acl.json5");
    let expected = with_access_control(
        &std::fs::read_to_string(veil_e2e::repo_path("configs/zenoh/router-1-mtls.json5")).unwrap(),
        &mesh_access_control(
            &["veil-sink-service"],
            &[MeshStore::owner("store-a", &["veil/acme/**"])],
            &["acme/hq/cam-1"],
            &["operator"],
        ),
    )
    .unwrap();
    if std::env::var_os("VEIL_UPDATE_EXAMPLES").is_some() {
        std::fs::write(&example, &expected).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&example).unwrap_or_default(),
        expected,
        "configs/zenoh/router-1-mtls-acl.json5 is stale: it is router-1-mtls.json5 with \
         zenoh_acl::mesh_access_control for the router certificate, store-a owning veil/acme/**, \
         acme/hq/cam-1 and operator"
    );
    let dir = temp("mesh-mtls");
    let certs = dir.join("certs");
    let (device, hostile, store_cn) = ("acme/hq/cam-1", "beta/hq/cam-2", "store-a");
    veil_testkit::certs::generate(
        &certs,
        "Veil test",
        &[device, hostile, store_cn, "store-b", "store-r", "store-c"],
    )
    .unwrap();
    let ports = [
        (7461, veil_e2e::store::free_port()),
        (7462, veil_e2e::store::free_port()),
    ];
    let acl = mesh_access_control(
        &["veil-sink-service"],
        &[
            // A owns acme's hq, C acme's lab, R keeps a replica of A's set.
            MeshStore::owner(store_cn, &["veil/acme/hq/**"]),
            MeshStore::owner("store-c", &["veil/acme/lab/**"]),
            MeshStore {
                name: "store-r",
                owns: Vec::new(),
                replicates: vec!["veil/acme/hq/**".to_owned()],
            },
            // Store B's assignment overlaps A's on purpose: the control below.
            MeshStore::owner("store-b", &["veil/acme/hq/**"]),
        ],
        &[device, hostile],
        &[],
    );
    let local = |path: &Path| {
        let text = std::fs::read_to_string(path)
            .unwrap()
            .replace("configs/certs/", &format!("{}/", certs.display()));
        std::fs::write(path, text).unwrap();
    };
    let mut routers = Vec::new();
    for n in 1..=2 {
        let path = config_with_ports(
            &format!("configs/zenoh/router-{n}-mtls.json5"),
            &ports,
            &dir,
            &format!("router-{n}.json5"),
        );
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, with_access_control(&text, &acl).unwrap()).unwrap();
        local(&path);
        routers.push(Router::start(&path, ports[n - 1].1));
    }
    let client = |name: &str, order: &[(u16, u16); 2]| {
        let stem = veil_testkit::certs::device_file_stem(name);
        let path = config_with_ports(
            "configs/zenoh/client-routers-mtls.json5",
            order,
            &dir,
            &format!("{stem}.json5"),
        );
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("configs/certs/client", &format!("configs/certs/{stem}"));
        std::fs::write(&path, text).unwrap();
        local(&path);
        path
    };
    let swapped = [(7461, ports[1].1), (7462, ports[0].1)];
    // Each store with its own certificate: A behind router 2, C and the replica R behind
    // router 1; A acknowledges what R confirmed and serves the HTTPS API (the front door).
    let mesh_store = |name: &str, sets: &str, order: &[(u16, u16); 2], extra: &str| {
        let (config, key) = store(&dir, name, &["veil/acme/x/**"], order);
        let zenoh = client(name, order);
        let text = std::fs::read_to_string(&config).unwrap();
        let mut text = text
            .lines()
            .map(|l| {
                if l.starts_with("config = ") {
                    format!("config = \"{}\"", zenoh.display())
                } else if l.starts_with("owns = ") {
                    sets.to_owned()
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        text.push_str(&format!("\n{extra}\n"));
        std::fs::write(&config, text).unwrap();
        (config, key)
    };
    let (replica, replica_key) =
        mesh_store("store-r", "replicates = [\"veil/acme/hq/**\"]", &ports, "");
    let api_port = veil_e2e::store::free_port();
    let (config, key) = mesh_store(
        store_cn,
        "owns = [\"veil/acme/hq/**\"]",
        &swapped,
        &format!(
            "[replication]\nreplicas = [\"{replica_key}\"]\n[api]\nlisten = \"127.0.0.1:{api_port}\"\n\
             cert = \"{0}/service.pem\"\nkey = \"{0}/service-key.pem\"",
            certs.display()
        ),
    );
    let (lab, _) = mesh_store("store-c", "owns = [\"veil/acme/lab/**\"]", &ports, "");
    // One credential for A and C (made in A, imported into C).
    let out = sink_service(
        &config,
        &[
            "api-keys", "create", "--tenant", "acme", "--role", "operator",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let credential = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let id = credential.split('_').nth(1).unwrap();
    let exported = sink_service(&config, &["api-keys", "export", id, "--tenant", "acme"]);
    let file = dir.join("key.json");
    std::fs::write(&file, &exported.stdout).unwrap();
    let imported = sink_service(&lab, &["api-keys", "import", file.to_str().unwrap()]);
    assert!(imported.status.success(), "{imported:?}");
    let replica_service = serve(&replica);
    let lab_service = serve(&lab);
    let mut service = serve(&config);

    // The device behind router 1: every record acknowledged by its store across the mesh.
    let device_zenoh = client(device, &ports);
    let description = format!(
        "videotestsrc num-buffers=200 pattern=black ! video/x-raw,width=64,height=48,framerate=10/1 ! \
         aggregator window=1 start-time=2026-11-23T10:00:00Z ! \
         auditsink tenant=acme site=hq device=cam-1 store-public-key={key} checkpoint-interval=5 \
         eos-timeout=60000 ack-timeout=300 zenoh-config={} spool-dir={}",
        device_zenoh.display(),
        dir.join("spool").display()
    );
    let (last, complete) = veil_e2e::audit_outcome(&veil_e2e::run_to_eos(&description, 300));
    assert!(
        complete && last > 20,
        "{last} records, complete: {complete} (the replica's confirmations crossed the mesh?)"
    );

    // The front door through the access control: A's API answers for acme, asking C (which
    // owns the lab site) across the mesh; with C stopped it is 504 (C was asked: the control).
    let front_door = || curl(&certs, api_port, &credential, "/v1/t/acme/rollups/day");
    let (status, answer) = front_door();
    assert_eq!(status, 200, "{answer}");
    let body: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert!(body["windows"].as_u64().unwrap() > 10, "{body}");
    let lab_id = lab_service
        .1
        .split("(id ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap()
        .to_owned();
    assert!(lab_service.stop());
    let (status, answer) = front_door();
    assert!(
        status == 504 && answer.contains("veil/acme/lab/**"),
        "{status} {answer}"
    );
    // With C gone, a device's certificate poses as C to the front door: a queryable on C's set
    // answering a made-up record and C's answered marker (C's store id known). The routers
    // drop its declaration: still 504, nothing made up served. Control: the same forgery from
    // C's own certificate is heard (the access control, nothing else, keeps the device out).
    let marker = format!(
        "veil-store/answered/{lab_id}/{}",
        hex::encode("veil/acme/lab/**")
    );
    let pose = |who: &str| {
        let probe = Command::new(veil_e2e::python_client())
            .arg(veil_e2e::repo_path("tests/python/zenoh_probe.py"))
            .arg(client(who, &ports))
            .args(["answer", "veil/acme/lab/**", "4", &marker])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_secs(2));
        let (status, answer) = front_door();
        let out = probe.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let heard: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (status, answer, heard["queries"].as_u64().unwrap())
    };
    let (status, answer, queries) = pose(hostile);
    assert!(
        status == 504 && queries == 0,
        "a device posed as a store: {status} {answer}, {queries} queries reached it"
    );
    let (status, answer, queries) = pose("store-c");
    assert!(
        status == 200 && queries > 0,
        "control: {status} {answer}, {queries} queries"
    );

    // Another device's certificate announces itself owner of everything, first; so does store
    // B's, beyond the set its rules give it: the routers drop both and store A keeps running.
    // Control: store B announces the set its rules give it (overlapping A's), it arrives, and
    // store A gives way.
    use veil_e2e::{announce_token, winning_claim};
    for who in [hostile, "store-b"] {
        announce_token(&client(who, &ports), &winning_claim("veil/**"));
        std::thread::sleep(Duration::from_secs(1));
        assert!(
            service.0.try_wait().unwrap().is_none(),
            "{who}'s announcement of veil/** through the mesh stopped the store"
        );
    }
    announce_token(
        &client("store-b", &ports),
        &winning_claim("veil/acme/hq/**"),
    );
    let status = service
        .0
        .wait_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("a store's announcement did not cross the mesh (control)");
    assert_eq!(status.code(), Some(3));
    assert!(replica_service.stop());
    let report = verify(&config);
    assert_eq!(report["chains"]["acme/cam-1/default"], last, "{report}");
    let report = verify(&replica);
    assert_eq!(report["chains"]["acme/cam-1/default"], last, "{report}");
    drop(routers);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `GET https://127.0.0.1:<port><path>` with `curl` (a client we did not write), trusting the
/// CA in `certs`, with the API key `credential`: the status and the body.
fn curl(certs: &Path, port: u16, credential: &str, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(certs.join("ca.pem"))
        .args(["-H", &format!("Authorization: Bearer {credential}")])
        .args(["-w", "\n%{http_code}"])
        .arg(format!("https://127.0.0.1:{port}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), body.to_owned())
}

/// Flips one bit of a store's sled log (`db`): in a written byte a third of the way in, so that
/// it lands in a logged message, not in a segment's unused tail. Returns the offset.
fn flip_a_bit(store: &Path) -> u64 {
    let file = store.join("db");
    let mut bytes = std::fs::read(&file).unwrap();
    let from = bytes.len() / 3;
    let offset = from
        + bytes[from..]
            .iter()
            .position(|b| *b != 0)
            .expect("a written byte after the first third");
    bytes[offset] ^= 0x10;
    std::fs::write(&file, bytes).unwrap();
    offset as u64
}

/// The records and the per-chain heads `verify` reports, asserting it passes.
fn records_and_chains(config: &Path) -> (u64, serde_json::Value) {
    let report = verify(config);
    assert_eq!(report["staged"], 0, "{report}");
    assert_eq!(report["quarantined"], 0, "{report}");
    (
        report["records"].as_u64().unwrap(),
        report["chains"].clone(),
    )
}

#[test]
fn a_damaged_store_is_rebuilt_from_its_replica_with_every_acknowledged_record() {
    let dir = temp("replica");
    let (_r1, _r2, ports) = mesh(&dir);
    // The replica behind router 2, the owner behind router 1; the owner acknowledges only what
    // the replica confirmed, and backs itself up every 2 s (keeping 2).
    let (replica, replica_key) = store(&dir, "replica", &["veil/acme/**"], &swapped(&ports));
    let text = std::fs::read_to_string(&replica).unwrap();
    std::fs::write(&replica, text.replace("owns = [", "replicates = [")).unwrap();
    let (primary, primary_key) = store(&dir, "primary", &["veil/acme/**"], &ports);
    let backups = dir.join("primary-backups");
    let mut text = std::fs::read_to_string(&primary).unwrap();
    text.push_str(&format!(
        "[replication]\nreplicas = [\"{replica_key}\"]\n[backup]\ndir = \"{}\"\nkey_file = \"{}\"\nevery = \"2s\"\nkeep = 2\n",
        backups.display(),
        dir.join("primary-keys/backup.key").display()
    ));
    std::fs::write(&primary, text).unwrap();
    let mut replica_service = Some(serve(&replica));
    let primary_service = serve(&primary);

    // What the devices hear: the owner's acknowledgements (chain unit, sequence number), by
    // moment.
    let watcher = zenoh::open(veil_e2e::client_config(&format!(
        "tcp/127.0.0.1:{}",
        ports[0].1
    )))
    .wait()
    .unwrap();
    type Heard = Vec<(Instant, String, u64)>;
    let acks: Arc<Mutex<Heard>> = Arc::default();
    let log = acks.clone();
    let _watch = watcher
        .declare_subscriber("veil-ack/**")
        .callback(move |sample| {
            let ack = veil_wire::Ack::from_slice(&sample.payload().to_bytes());
            if let (Some(ack), Ok(mut l)) = (ack, log.lock()) {
                l.push((Instant::now(), sample.key_expr().to_string(), ack.seq));
            }
        })
        .wait()
        .unwrap();
    // The highest acknowledged sequence number per chain unit among acknowledgements heard
    // before `to`.
    let acked_before = |to: Instant| {
        let mut highest = std::collections::BTreeMap::new();
        for (t, unit, seq) in acks.lock().unwrap().iter() {
            if *t < to {
                let h = highest.entry(unit.clone()).or_insert(0u64);
                *h = (*h).max(*seq);
            }
        }
        highest
    };

    let device = |i: usize, buffers: u32| {
        let zenoh = config_with_ports(
            "configs/zenoh/device-routers.json5",
            &ports,
            &dir,
            &format!("device-{i}.json5"),
        );
        let description = format!(
            "videotestsrc num-buffers={buffers} pattern=black ! video/x-raw,width=64,height=48,framerate=10/1 ! \
             identity sleep-time=33000 ! aggregator window=1 start-time=2026-11-23T10:00:00Z ! \
             auditsink tenant=acme site=hq device=cam-{i} store-public-key={primary_key} checkpoint-interval=5 \
             eos-timeout=120000 ack-timeout=300 zenoh-config={} spool-dir={}",
            zenoh.display(),
            dir.join(format!("spool-{i}")).display()
        );
        std::thread::spawn(move || {
            veil_e2e::audit_outcome(&veil_e2e::run_to_eos(&description, 300))
        })
    };
    let start = Instant::now();
    let threads: Vec<_> = (0..2).map(|i| device(i, 600)).collect();
    // An attacker behind the replica's router (PyPI eclipse-zenoh) hears the real
    // confirmations for 4.5 s, then forges and replays them while the replica is down.
    let attacker_config = dir.join("attacker.json5");
    std::fs::write(
        &attacker_config,
        format!(
            "{{mode: \"client\", connect: {{endpoints: [\"tcp/127.0.0.1:{}\"]}}, scouting: {{multicast: {{enabled: false}}}}}}",
            ports[1].1
        ),
    )
    .unwrap();
    let attacker = Command::new(veil_e2e::python_client())
        .arg(veil_e2e::repo_path("tests/python/forge_confirmations.py"))
        .arg(&attacker_config)
        .args(["4.5", "6"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(5));
    // The replica goes away for 6 s: the owner goes on storing, acknowledges nothing.
    eprintln!("SIGKILL the replica");
    replica_service.take().unwrap().kill();
    let down = Instant::now();
    std::thread::sleep(Duration::from_secs(6));
    let up = Instant::now();
    replica_service = Some(serve(&replica));
    eprintln!("replica back");
    let outcomes: Vec<(u64, bool)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    eprintln!(
        "devices done after {:.0} s: {outcomes:?}",
        start.elapsed().as_secs_f64()
    );
    let attack = attacker.wait_with_output().unwrap();
    let attack: serde_json::Value =
        serde_json::from_slice(&attack.stdout).unwrap_or_else(|e| panic!("{e}: {attack:?}"));
    eprintln!("attacker: {attack}");
    // The attack was live: it heard both devices' confirmations where the replica publishes
    // them, and sent its forgeries into the same router while the replica was down.
    assert_eq!(attack["captured"], 2, "{attack}");
    assert!(attack["published"].as_u64().unwrap() >= 50, "{attack}");
    for (i, (last, complete)) in outcomes.iter().enumerate() {
        assert!(*complete, "cam-{i}: not every record acknowledged");
        assert!(*last > 50, "cam-{i}: only {last} records");
    }
    // No acknowledgement moved on while the replica was down (1 s allowed for what was in
    // flight); before and after, they did (the control).
    let (at_down, at_up) = (
        acked_before(down + Duration::from_secs(1)),
        acked_before(up),
    );
    let at_end = acked_before(Instant::now());
    assert_eq!(
        at_down.len(),
        2,
        "both devices acknowledged before: {at_down:?}"
    );
    assert_eq!(
        at_down, at_up,
        "acknowledgements moved on without the replica (forged confirmations counted?)"
    );
    for (unit, seq) in &at_up {
        assert!(at_end[unit] > *seq, "{unit}: {seq} → {}", at_end[unit]);
    }
    assert!(primary_service.stop());
    assert!(replica_service.take().unwrap().stop());

    // Both copies hold every record, and verify.
    let total: u64 = outcomes.iter().map(|(last, _)| last).sum();
    let (n, chains) = records_and_chains(&primary);
    assert_eq!(n, total);
    assert_eq!(records_and_chains(&replica), (n, chains.clone()));

    // The scheduled backups: at most 2 kept, none half-written, the newest restores and
    // verifies (taken while the devices published: a prefix of the records).
    let mut taken: Vec<String> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    taken.sort();
    assert!(
        (1..=2).contains(&taken.len()) && taken.iter().all(|n| n.ends_with(".bak")),
        "{taken:?}"
    );
    let (scratch, _) = store(&dir, "scratch", &["veil/initech/**"], &ports);
    let restored = sink_service(
        &scratch,
        &[
            "restore",
            "--in",
            backups.join(taken.last().unwrap()).to_str().unwrap(),
            "--key",
            dir.join("primary-keys/backup.key").to_str().unwrap(),
        ],
    );
    assert!(restored.status.success(), "{restored:?}");
    let (in_backup, _) = records_and_chains(&scratch);
    assert!(
        in_backup > 0 && in_backup <= total,
        "{in_backup} of {total}"
    );

    // One flipped bit: the owner's store refuses to open, `verify` and `serve` alike.
    let offset = flip_a_bit(&dir.join("primary"));
    let damaged = sink_service(&primary, &["verify"]);
    let said = String::from_utf8_lossy(&damaged.stderr).to_string();
    assert!(
        !damaged.status.success(),
        "a flipped bit at {offset} went unnoticed"
    );
    assert!(said.contains("corrupt"), "{said}");

    // The documented recovery (docs/deploy.md, "A second copy"): a backup of the replica
    // (stopped for it), the damaged store moved aside, the backup restored in its place.
    let copy = dir.join("replica.bak");
    let key = dir.join("replica-keys/backup.key");
    let out = sink_service(
        &replica,
        &[
            "backup",
            "--out",
            copy.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    std::fs::rename(dir.join("primary"), dir.join("primary.damaged")).unwrap();
    let out = sink_service(
        &primary,
        &[
            "restore",
            "--in",
            copy.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(records_and_chains(&primary), (total, chains));

    // Serving again, both: a device's further records are stored and acknowledged.
    let replica_service = serve(&replica);
    let primary_service = serve(&primary);
    let (last, complete) = device(0, 100).join().unwrap();
    assert!(complete && last > outcomes[0].0, "{last} {complete}");
    assert!(primary_service.stop());
    assert!(replica_service.stop());
    let (n, _) = records_and_chains(&primary);
    assert_eq!(records_and_chains(&replica).0, n);
    assert!(n > total, "{n} after {total}");
    std::fs::remove_dir_all(&dir).unwrap();
}
