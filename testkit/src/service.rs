// SPDX-License-Identifier: MIT OR Apache-2.0
//! `sink-service` processes for tests: configurations on a free port, one-off commands, and a
//! `serve` child that is killed if the test fails. The binary is the caller's
//! (`env!("CARGO_BIN_EXE_…")` of its own package).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::paths::repo_path;

/// A fresh temporary directory for one test.
pub fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("veil-service-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Config files for a service on `port` and a device pointed at it: (service config, device
/// Zenoh config). The service trusts each device's first key (`trust.mode = "tofu"`, the lab
/// setting): these tests are about delivery and storage; enrollment, the default, has tests of
/// its own and the demo enrolls its devices.
pub fn configs(dir: &Path, port: u16) -> (PathBuf, PathBuf) {
    let service_zenoh = dir.join("service.json5");
    std::fs::write(
        &service_zenoh,
        std::fs::read_to_string(repo_path("configs/zenoh/service-tcp.json5"))
            .unwrap()
            .replace("127.0.0.1:7447", &format!("127.0.0.1:{port}")),
    )
    .unwrap();
    let device = dir.join("device.json5");
    std::fs::write(
        &device,
        std::fs::read_to_string(repo_path("configs/zenoh/device-tcp.json5"))
            .unwrap()
            .replace("127.0.0.1:7447", &format!("127.0.0.1:{port}"))
            // Reconnect quickly after the service comes back.
            .replace("period_max_ms: 2000", "period_max_ms: 300"),
    )
    .unwrap();
    let config = dir.join("sink.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = \"{}\"\nkek_file = \"{}\"\n[zenoh]\nconfig = \"{}\"\n[trust]\nmode = \"tofu\"\n",
            dir.join("store").display(),
            dir.join("kek").display(),
            service_zenoh.display()
        ),
    )
    .unwrap();
    (config, device)
}

/// Runs `binary --config CONFIG ARGS…` to its end.
pub fn run(binary: &str, config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(binary)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

/// A `serve` child, killed if the test fails.
/// A running service and its "ready" line.
pub struct Service(pub Child, pub String);

impl Service {
    pub fn kill(&mut self) {
        self.0.kill().unwrap(); // SIGKILL
        self.0.wait().unwrap();
    }

    /// SIGTERM: a clean stop.
    pub fn stop(mut self) -> bool {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status()
            .unwrap();
        self.0.wait().unwrap().success()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `binary serve`, waits for its "ready" line and keeps reading its output (echoed to
/// stderr).
pub fn serve(binary: &str, config: &Path) -> Service {
    let mut child = Command::new(binary)
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = loop {
        let line = lines
            .next()
            .expect("serve exited before it was ready")
            .unwrap();
        eprintln!("{line}");
        if line.contains("ready") {
            break line;
        }
    };
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            eprintln!("{line}");
        }
    });
    Service(child, ready)
}
