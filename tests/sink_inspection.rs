// SPDX-License-Identifier: MIT OR Apache-2.0
//! Visual inspection end to end: synthesized parts (light, or with a dark blob) → `inferfilter`
//! with the purpose-built darkblob classifier → `aggregator` inspection mode → `auditsink` →
//! Zenoh over plain TCP on loopback → `sink-service serve`. A tcpdump capture of the loopback
//! traffic shows what really left the device.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine;
use serde_json::Value;

#[path = "sink_common.rs"]
mod common;

use common::{configs, serve, sink_service, temp};

const W: usize = 128;
/// Which parts are bad: alternating, with a run of two.
const BAD: [bool; 10] = [
    false, true, false, true, true, false, false, true, false, true,
];

fn shift(i: usize) -> usize {
    i * 2
}

/// The raw RGB clip of the parts, 10 frames/s.
fn clip(dir: &Path) -> PathBuf {
    let path = dir.join("parts.rgb");
    let mut data = Vec::new();
    for (i, &bad) in BAD.iter().enumerate() {
        data.extend(veil_tools::synth::inspection_part(W, W, bad, shift(i)));
    }
    std::fs::write(&path, data).unwrap();
    path
}

/// tcpdump on the loopback interface for one TCP port, until stopped.
struct Capture {
    child: Child,
    file: PathBuf,
}

impl Capture {
    fn start(port: u16, file: PathBuf) -> Capture {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0"));
        let mut cmd = if root {
            Command::new("tcpdump")
        } else {
            let mut c = Command::new("sudo");
            c.args(["-n", "tcpdump"]);
            c
        };
        // Immediate mode: without it, packets wait in the kernel's ring-buffer blocks and are
        // lost when the capture stops (seen here: "0 packets captured").
        let mut child = cmd
            .args(["-i", "lo", "--immediate-mode", "-U", "-s", "0", "-w"])
            .arg(&file)
            .args(["tcp", "port", &port.to_string()])
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump (scripts/setup.sh installs it; it needs root or sudo)");
        // Wait until it listens.
        let stderr = child.stderr.take().unwrap();
        let mut lines = std::io::BufReader::new(stderr).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        assert!(first.contains("listening on lo"), "tcpdump: {first}");
        std::thread::spawn(move || for _ in lines {});
        Capture { child, file }
    }

    /// Stops the capture and returns its bytes.
    fn stop(mut self) -> Vec<u8> {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(self.child.id().to_string())
            .status();
        // (Under sudo the signal reaches sudo, which passes it on.)
        let _ = self.child.wait();
        std::fs::read(&self.file).unwrap()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Runs the inspection pipeline with `retention` into a fresh service; returns the stored
/// inspection and image records and the capture.
fn run(name: &str, retention: &str) -> (Vec<Value>, Vec<Value>, Vec<u8>) {
    let dir = temp(name);
    let port = veil_e2e::store::free_port();
    let (config, device) = configs(&dir, port);
    assert!(sink_service(&config, &["keys", "init"]).status.success());
    let rules = dir.join("inspection.toml");
    std::fs::write(
        &rules,
        "trigger = \"frame\"\n[[rule]]\nname = \"dark-blob\"\nlabel = \"ng\"\nmin_confidence = 0.6\n",
    )
    .unwrap();
    let service = serve(&config);
    let capture = Capture::start(port, dir.join("loopback.pcap"));
    let description = format!(
        "filesrc location={clip} ! rawvideoparse format=rgb width={W} height={W} framerate=10/1 ! \
         inferfilter decoder=classifier model={model} labels=ok,ng inference-size=64x64 ! \
         aggregator inspection-file={rules} image-retention={retention} start-time=2026-11-23T10:00:00Z ! \
         auditsink tenant=acme site=plant device=line-1 stream=station zenoh-config={device} spool-dir={spool}",
        clip = clip(&dir).display(),
        model = veil_tools::assets::require("models/darkblob.onnx").display(),
        rules = rules.display(),
        device = device.display(),
        spool = dir.join("spool").display(),
    );
    let (_, complete) = veil_e2e::audit_outcome(&veil_e2e::run_to_eos(&description, 120));
    assert!(complete, "every record acknowledged by the service");
    let bytes = capture.stop();
    assert!(service.stop());
    let export = |kind: &str| -> Vec<Value> {
        let out = sink_service(
            &config,
            &[
                "export",
                "--key",
                &format!("veil/acme/plant/line-1/station/{kind}"),
            ],
        );
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let result = (export("inspection"), export("image"), bytes);
    if std::env::var_os("VEIL_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn decisions(inspections: &[Value]) -> Vec<String> {
    inspections
        .iter()
        .map(|r| r["body"]["decision"].as_str().unwrap().to_owned())
        .collect()
}

fn expected() -> Vec<String> {
    BAD.iter()
        .map(|&b| if b { "NG" } else { "OK" }.to_owned())
        .collect()
}

/// The JPEG the device would make of part `i` (RGB in, so the conversion is a copy).
fn jpeg_of_part(i: usize) -> Vec<u8> {
    let rgb = veil_tools::synth::inspection_part(W, W, BAD[i], shift(i));
    gstveilaggregator::images::encode_jpeg(&rgb, W as u32, W as u32, 85).unwrap()
}

#[test]
fn failures_retention_keeps_exactly_the_ng_images_and_no_ok_frame_leaves() {
    let (inspections, images, capture) = run("inspect-failures", "failures");
    assert_eq!(decisions(&inspections), expected());
    let ng_parts: Vec<u64> = (0..BAD.len())
        .filter(|&i| BAD[i])
        .map(|i| i as u64 + 1)
        .collect();
    let image_parts: Vec<u64> = images
        .iter()
        .map(|r| r["body"]["part"].as_u64().unwrap())
        .collect();
    assert_eq!(
        image_parts, ng_parts,
        "the service holds exactly the NG images"
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    for image in &images {
        let part = image["body"]["part"].as_u64().unwrap() as usize;
        let data = image["body"]["data"].as_str().unwrap();
        let jpeg = b64.decode(data).unwrap();
        // The stored image is the device's JPEG of that part, and its inspection names it.
        assert_eq!(jpeg, jpeg_of_part(part - 1));
        let inspection = &inspections[part - 1];
        assert_eq!(
            inspection["body"]["image"]["sha256"],
            image["body"]["sha256"]
        );
        // Positive control: the NG image's bytes are visible in the capture.
        assert!(
            contains(&capture, data.as_bytes()),
            "the NG image of part {part} is in the loopback capture"
        );
    }
    // No OK frame's JPEG, in any form, crossed the wire.
    for i in (0..BAD.len()).filter(|&i| !BAD[i]) {
        let jpeg = jpeg_of_part(i);
        let text = b64.encode(&jpeg);
        assert!(
            !contains(&capture, text.as_bytes()),
            "OK part {} leaked",
            i + 1
        );
        assert!(
            !contains(&capture, &jpeg[..64]),
            "OK part {} leaked raw",
            i + 1
        );
        assert!(inspections[i]["body"]["image"].is_null());
    }
}

#[test]
fn no_retention_sends_no_image_at_all() {
    let (inspections, images, capture) = run("inspect-none", "none");
    assert_eq!(decisions(&inspections), expected());
    assert!(images.is_empty());
    // The records did cross the captured link (a positive control) …
    assert!(contains(&capture, b"\"decision\":\"NG\""));
    // … and no JPEG did: neither base64 ("/9j/" is FF D8 FF) nor raw.
    assert!(!contains(&capture, b"/9j/"));
    assert!(!contains(&capture, &[0xff, 0xd8, 0xff]));
}
