// SPDX-License-Identifier: MIT OR Apache-2.0
//! Several stores behind a mesh of two real `zenohd` routers (docs/deploy.md):
//!
//!     source scripts/lib.sh && cargo bench -p veil-sink-service --bench mesh
//!
//! 1. Aggregate ingest: six devices (one Zenoh session and thread each, alternating between the
//!    two routers) publish pre-built chains (a checkpoint every 100 records) with congestion
//!    control Block; one, two or three `sink-service serve` children own disjoint tenants.
//!    Records/s from the first put to the acknowledgement of the last: every record decoded,
//!    verified, encrypted, durably committed and acknowledged by its owner.
//! 2. Device → store latency at 1,000 records/s from one device for 10 s: from each record's
//!    put to the first acknowledgement covering it (so group commit and the flush included),
//!    p50/p99, through two routers (device on router 1, store on router 2) and direct (the
//!    device a client of the store's own listener).

#[path = "../tests/common.rs"]
mod common;

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use veil_testkit::mesh::{Router, config_with_ports};
use zenoh::Wait;
use zenoh::qos::CongestionControl;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// A `serve` child for the config, started and ready; killed by [`stop`].
/// `serve` with `config`, its log in `serve.log` beside the config.
fn start(config: &Path) -> Child {
    let log = std::fs::File::create(config.with_file_name("serve.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sink-service"))
        .args(["--config", config.to_str().unwrap(), "serve"])
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.next().unwrap().unwrap().contains("ready"));
    child
}

/// Services stopped when dropped: also when a run fails (an assertion), so that none keeps
/// running after the benchmark.
struct Services(Vec<Child>);

impl Drop for Services {
    fn drop(&mut self) {
        for child in self.0.drain(..) {
            stop(child);
        }
    }
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

/// A store's config in its own folder: `zenoh` (a Zenoh config file), `owns` (or, with
/// `replicates`, the sets it keeps a replica of) and `extra` TOML.
fn store_config(
    dir: &Path,
    name: &str,
    zenoh: &Path,
    owns: &[String],
    role: &str,
    extra: &str,
) -> PathBuf {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    veil_sink_service::crypto::SecretKey::generate()
        .unwrap()
        .save(&folder.join("kek"))
        .unwrap();
    let owns = owns
        .iter()
        .map(|k| format!("{k:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let config = folder.join("sink.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = \"{}\"\nkek_file = \"{}\"\n[zenoh]\nconfig = \"{}\"\n{role} = [{owns}]\n\
             admin = \"veil-admin/{name}\"\n[trust]\nmode = \"tofu\"\n{extra}\n",
            folder.join("store").display(),
            folder.join("kek").display(),
            zenoh.display()
        ),
    )
    .unwrap();
    config
}

fn client(endpoint: &str) -> zenoh::Session {
    zenoh::open(veil_testkit::net::client_config(endpoint))
        .wait()
        .unwrap()
}

/// Acknowledged sequence numbers per ack key, and their sum.
type Acks = Arc<(Mutex<HashMap<String, u64>>, AtomicU64)>;

fn watch_acks(session: &zenoh::Session) -> (Acks, zenoh::pubsub::Subscriber<()>) {
    let acks: Acks = Arc::default();
    let seen = acks.clone();
    let sub = session
        .declare_subscriber("veil-ack/**")
        .callback(move |s| {
            if let Some(a) = veil_wire::Ack::from_slice(&s.payload().to_bytes()) {
                let mut m = seen.0.lock().unwrap();
                let e = m.entry(s.key_expr().to_string()).or_default();
                *e = (*e).max(a.seq);
                seen.1.store(m.values().sum(), Ordering::Release);
            }
        })
        .wait()
        .unwrap();
    (acks, sub)
}

/// Records/s acknowledged with `stores` owners behind two routers (each tenant owned by one),
/// and, with `replica`, one more service keeping a replica of every tenant (the owners then
/// acknowledge only what it confirmed: docs/deploy.md, "A second copy").
fn aggregate_ingest(stores: usize, replica: bool, total: u64) -> f64 {
    let dir = common::temp(&format!("bench-mesh-{stores}-{replica}"));
    let ports = [
        (7451, veil_testkit::net::free_port()),
        (7452, veil_testkit::net::free_port()),
    ];
    let _r1 = Router::start(
        &config_with_ports("configs/zenoh/router-1.json5", &ports, &dir, "r1.json5"),
        ports[0].1,
    );
    let _r2 = Router::start(
        &config_with_ports("configs/zenoh/router-2.json5", &ports, &dir, "r2.json5"),
        ports[1].1,
    );
    let devices = 6usize;
    let every_tenant: Vec<String> = (0..devices).map(|d| format!("veil/bench{d}/**")).collect();
    // The replica behind router 2, its acknowledgement key made here to list it at the owners.
    let mut children = Services(Vec::new());
    let mut replication = String::new();
    if replica {
        let zenoh = config_with_ports(
            "configs/zenoh/service-routers.json5",
            &[(7451, ports[1].1), (7452, ports[0].1)],
            &dir,
            "replica.json5",
        );
        let config = store_config(&dir, "replica", &zenoh, &every_tenant, "replicates", "");
        let key =
            veil_wire::DeviceKey::load_or_create(&dir.join("replica").join("ack.key")).unwrap();
        replication = format!("[replication]\nreplicas = [\"{}\"]", key.public_hex());
        children.0.push(start(&config));
    }
    // Stores alternate between routers too; store k owns the tenants of devices d with
    // d % stores == k.
    children.0.extend((0..stores).map(|k| {
        let order = if k % 2 == 0 {
            ports
        } else {
            [(7451, ports[1].1), (7452, ports[0].1)]
        };
        let zenoh = config_with_ports(
            "configs/zenoh/service-routers.json5",
            &order,
            &dir,
            &format!("store-{k}.json5"),
        );
        let owns: Vec<String> = (0..devices)
            .filter(|d| d % stores == k)
            .map(|d| format!("veil/bench{d}/**"))
            .collect();
        start(&store_config(
            &dir,
            &format!("store-{k}"),
            &zenoh,
            &owns,
            "owns",
            &replication,
        ))
    }));
    let chains: Vec<Vec<(String, Vec<u8>)>> = (0..devices)
        .map(|d| {
            let mut dev = common::Device::new(&format!("bench{d}"), "cam", d as u8 + 1);
            let per = total / devices as u64;
            dev.records(per - per / 101, 100)
                .iter()
                .map(|r| (r.key_expr(), r.to_vec()))
                .collect()
        })
        .collect();
    let n: u64 = chains.iter().map(|c| c.len() as u64).sum();
    let endpoint = |d: usize| format!("tcp/127.0.0.1:{}", ports[d % 2].1);
    let watcher = client(&endpoint(0));
    let (acks, _sub) = watch_acks(&watcher);
    let sessions: Vec<zenoh::Session> = (0..devices).map(|d| client(&endpoint(d))).collect();
    // Let the routers learn every subscriber before the first put.
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let mut sessions = common::publish_in_parallel(chains.clone(), sessions);
    // As auditsink does: what stays unacknowledged for a while is sent again (a record the
    // store could not take — see docs/deploy.md, "Figures" — holds its chain up until then).
    let mut resent = 0usize;
    let mut last = (0, Instant::now());
    while acks.1.load(Ordering::Acquire) < n
        && started.elapsed() < Duration::from_secs(30 + total / 1000)
    {
        std::thread::sleep(Duration::from_millis(2));
        let now = acks.1.load(Ordering::Acquire);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(2) {
            let acked = acks.0.lock().unwrap().clone();
            let again: Vec<Vec<(String, Vec<u8>)>> = chains
                .iter()
                .enumerate()
                .map(|(d, chain)| {
                    let upto = acked
                        .get(&format!("veil-ack/bench{d}/hq/cam/door"))
                        .copied()
                        .unwrap_or(0) as usize;
                    chain[upto.min(chain.len())..].to_vec()
                })
                .collect();
            resent += again.iter().map(Vec::len).sum::<usize>();
            sessions = common::publish_in_parallel(again, sessions);
            last.1 = Instant::now();
        }
    }
    let took = started.elapsed();
    assert_eq!(acks.1.load(Ordering::Acquire), n, "everything acknowledged");
    if resent > 0 {
        println!("  ({resent} records sent again after a stall)");
    }
    let rate = n as f64 / took.as_secs_f64();
    println!(
        "{stores} store(s){} behind 2 routers, {devices} devices: {n} records acknowledged in {:.2} s = {rate:.0} records/s",
        if replica { " + 1 replica" } else { "" },
        took.as_secs_f64()
    );
    drop(sessions);
    drop(children);
    let _ = std::fs::remove_dir_all(&dir);
    rate
}

/// p50/p99 in ms from put to acknowledgement at `rate` records/s for `seconds`.
fn latency(through_routers: bool, rate: u64, seconds: u64) -> (f64, f64) {
    let dir = common::temp(&format!("bench-latency-{through_routers}"));
    let store_port = veil_testkit::net::free_port();
    let ports = [
        (7451, veil_testkit::net::free_port()),
        (7452, veil_testkit::net::free_port()),
    ];
    let mut routers = Vec::new();
    let (zenoh, device_endpoint) = if through_routers {
        routers.push(Router::start(
            &config_with_ports("configs/zenoh/router-1.json5", &ports, &dir, "r1.json5"),
            ports[0].1,
        ));
        routers.push(Router::start(
            &config_with_ports("configs/zenoh/router-2.json5", &ports, &dir, "r2.json5"),
            ports[1].1,
        ));
        // The store on router 2 only, the device on router 1: two router hops.
        let zenoh = config_with_ports(
            "configs/zenoh/device-tcp.json5",
            &[(7447, ports[1].1)],
            &dir,
            "store.json5",
        );
        (zenoh, format!("tcp/127.0.0.1:{}", ports[0].1))
    } else {
        let zenoh = config_with_ports(
            "configs/zenoh/service-tcp.json5",
            &[(7447, store_port)],
            &dir,
            "store.json5",
        );
        (zenoh, format!("tcp/127.0.0.1:{store_port}"))
    };
    let child = start(&store_config(
        &dir,
        "store",
        &zenoh,
        &["veil/**".to_owned()],
        "owns",
        "",
    ));
    let n = rate * seconds;
    let mut dev = common::Device::new("bench", "cam", 1);
    let chain: Vec<(u64, String, Vec<u8>)> = dev
        .records(n - n / 101, 100)
        .iter()
        .map(|r| (r.seq, r.key_expr(), r.to_vec()))
        .collect();
    let session = client(&device_endpoint);
    // Each acknowledgement's moment, as the device's session hears it.
    let timeline: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let heard = timeline.clone();
    let _sub = session
        .declare_subscriber("veil-ack/**")
        .callback(move |s| {
            if let Some(a) = veil_wire::Ack::from_slice(&s.payload().to_bytes()) {
                heard.lock().unwrap().push((a.seq, Instant::now()));
            }
        })
        .wait()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let mut sent_at: Vec<(u64, Instant)> = Vec::with_capacity(chain.len());
    let started = Instant::now();
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    for (i, (seq, key, payload)) in chain.iter().enumerate() {
        if let Some(wait) = (period * i as u32).checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        sent_at.push((*seq, Instant::now()));
        session
            .put(key.clone(), payload.clone())
            .congestion_control(CongestionControl::Block)
            .wait()
            .unwrap();
    }
    let last = sent_at.last().map(|s| s.0).unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while timeline.lock().unwrap().last().is_none_or(|a| a.0 < last) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Each record's latency: to the first acknowledgement at or beyond its sequence number.
    let acks = timeline.lock().unwrap().clone();
    let mut ms = Vec::with_capacity(sent_at.len());
    let mut a = 0;
    let mut next = 0;
    while next < sent_at.len() && a < acks.len() {
        if acks[a].0 >= sent_at[next].0 {
            ms.push(
                acks[a]
                    .1
                    .saturating_duration_since(sent_at[next].1)
                    .as_secs_f64()
                    * 1e3,
            );
            next += 1;
        } else {
            a += 1;
        }
    }
    assert_eq!(next, sent_at.len(), "everything acknowledged");
    stop(child);
    drop(routers);
    let _ = std::fs::remove_dir_all(&dir);
    ms.sort_by(f64::total_cmp);
    (percentile(&ms, 0.5), percentile(&ms, 0.99))
}

fn main() {
    // VEIL_BENCH_MESH=replica runs only the replica case (with VEIL_BENCH_MESH_RECORDS records).
    let total = std::env::var("VEIL_BENCH_MESH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150_000);
    if std::env::var("VEIL_BENCH_MESH").as_deref() == Ok("replica") {
        aggregate_ingest(1, true, total);
        return;
    }

    let rates: Vec<f64> = (1..=3).map(|k| aggregate_ingest(k, false, total)).collect();
    println!(
        "scaling: {}",
        rates
            .iter()
            .enumerate()
            .map(|(k, r)| format!(
                "{} store(s) {:.0} records/s ({:.2}x)",
                k + 1,
                r,
                r / rates[0]
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // A second copy, on 30,000 records: at 150,000 the two services, two routers and six
    // publishers on two cores fall behind far enough that records are lost in transit (gaps
    // the publishers must fill again; docs/deploy.md, "Figures").
    let (alone, replicated) = (
        aggregate_ingest(1, false, 30_000),
        aggregate_ingest(1, true, 30_000),
    );
    println!(
        "a second copy (30,000 records): 1 store {alone:.0} records/s, 1 store + 1 replica {replicated:.0} records/s ({:.2}x)",
        replicated / alone
    );
    for through in [false, true] {
        let (p50, p99) = latency(through, 1000, 10);
        println!(
            "device → store at 1,000 records/s, {}: put to acknowledgement p50 {p50:.1} ms, p99 {p99:.1} ms",
            if through {
                "through two routers"
            } else {
                "direct"
            }
        );
    }
}
