// SPDX-License-Identifier: MIT OR Apache-2.0
//! The pieces of a multi-site topology on loopback: real `zenohd` routers (the binary the
//! set-up builds, `$VEIL_ZENOHD`) and a TCP relay that can cut a device off the network.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::paths::{cache, repo_path};

/// The `zenohd` the set-up built (`$VEIL_ZENOHD`, else the cache's), of the zenoh crate's version.
pub fn zenohd() -> PathBuf {
    let path = std::env::var_os("VEIL_ZENOHD")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache().join("cargo-tools/bin/zenohd"));
    assert!(
        path.is_file(),
        "{} is missing: run scripts/setup.sh (it builds zenohd once)",
        path.display()
    );
    path
}

/// A repository config file with its loopback ports replaced (`from` → `to`, each
/// `127.0.0.1:<from>`), written into `dir` under `name`.
pub fn config_with_ports(template: &str, ports: &[(u16, u16)], dir: &Path, name: &str) -> PathBuf {
    let mut text = std::fs::read_to_string(repo_path(template)).expect("config template");
    for (from, to) in ports {
        text = text.replace(&format!("127.0.0.1:{from}"), &format!("127.0.0.1:{to}"));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writing a config");
    path
}

/// A `zenohd` child (SIGKILLed when dropped); its log goes to `<dir>/<name>.log`.
pub struct Router {
    child: Option<Child>,
    config: PathBuf,
    log: PathBuf,
    pub port: u16,
}

impl Router {
    /// Starts `zenohd --config CONFIG` and waits until it accepts connections on `port`.
    pub fn start(config: &Path, port: u16) -> Router {
        let log = config.with_extension("log");
        let mut router = Router {
            child: None,
            config: config.to_owned(),
            log,
            port,
        };
        router.restart();
        router
    }

    /// (Re)starts the process after [`Router::kill`].
    pub fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("router log");
        let child = Command::new(zenohd())
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("starting zenohd");
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "zenohd on port {} did not listen within 20 s; see {}",
                self.port,
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: the router vanishes without closing anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP relay from a port of its own to `upstream`: a device connects through it, and
/// [`Relay::cut`] takes the device off the network (open connections reset, new ones refused
/// until the cut ends), as a pulled cable or a dead switch port would.
pub struct Relay {
    pub port: u16,
    cut_until: Arc<Mutex<Option<Instant>>>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    pub fn start(upstream: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("relay port");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("relay address").port();
        let relay = Relay {
            port,
            cut_until: Arc::default(),
            open: Arc::default(),
            stop: Arc::default(),
        };
        let (cut_until, open, stop) = (
            relay.cut_until.clone(),
            relay.open.clone(),
            relay.stop.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                let Ok((inbound, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let cut = cut_until
                    .lock()
                    .map(|c| c.is_some_and(|t| Instant::now() < t))
                    .unwrap_or(true);
                if cut {
                    drop(inbound); // refused: the device sees the connection close at once
                    continue;
                }
                let _ = inbound.set_nonblocking(false);
                let Ok(outbound) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                if let Ok(mut o) = open.lock() {
                    o.extend(inbound.try_clone().ok());
                    o.extend(outbound.try_clone().ok());
                }
                pump(&inbound, &outbound);
                pump(&outbound, &inbound);
            }
        });
        relay
    }

    /// Resets every connection through the relay and refuses new ones for `duration`.
    pub fn cut(&self, duration: Duration) {
        if let Ok(mut c) = self.cut_until.lock() {
            *c = Some(Instant::now() + duration);
        }
        if let Ok(mut open) = self.open.lock() {
            for s in open.drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.cut(Duration::ZERO);
    }
}

/// Copies `from` to `to` on a thread of its own until either side closes.
fn pump(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    });
}
