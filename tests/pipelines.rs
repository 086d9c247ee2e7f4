// SPDX-License-Identifier: MIT OR Apache-2.0
//! Every description in `pipelines/` works as shipped: filled by `envsubst` the way the README
//! and the scripts fill it, it parses (every element and property exists) and prerolls (caps
//! negotiate, the models load, the first frame goes through every element to the sink) with no
//! error on the bus. A description that names a property no element has, or a model or config
//! file that is not where the set-up puts it, fails here.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use gst::prelude::*;
use veil_testkit::paths::repo_path;
use veil_tools::assets;

/// The variables the README and scripts/*.sh set, with values that exist after the set-up.
fn variables(tmp: &Path) -> Vec<(&'static str, String)> {
    let path = |p: PathBuf| p.display().to_string();
    vec![
        (
            "MODELS",
            path(
                assets::require("models/centerface.onnx")
                    .parent()
                    .expect("models directory")
                    .to_path_buf(),
            ),
        ),
        ("INPUT", path(assets::require("media/vtest.avi"))),
        ("OUTPUT", path(tmp.join("out.mp4"))),
        ("FACES", "min-face-size=20 threads=2".into()),
        ("MASKS", String::new()),
        ("ZONES", path(repo_path("configs/zones/vtest.toml"))),
        ("START", "2026-11-23T10:00:00Z".into()),
        ("TENANT", "acme".into()),
        ("SITE", "hq".into()),
        ("DEVICE", "cam-1".into()),
        ("STREAM", "entrance".into()),
        ("ZENOH", path(repo_path("configs/zenoh/device-tcp.json5"))),
        ("SPOOL", path(tmp.join("spool"))),
        // `sink-service keys public`: any Ed25519 public key parses.
        (
            "STORE_KEY",
            veil_wire::DeviceKey::from_seed([1; 32]).public_hex(),
        ),
        ("OBJECT", "person".into()),
        (
            "COMPLIANCE",
            path(repo_path("configs/compliance/vtest-walkway.toml")),
        ),
        (
            "INSPECTION",
            path(repo_path("configs/inspection/darkblob.toml")),
        ),
        ("RETENTION", "failures".into()),
    ]
}

/// `envsubst < FILE | grep -v '^#'`, as the scripts run it.
fn fill(file: &Path, vars: &[(&str, String)]) -> String {
    let text = std::fs::read_to_string(file).expect("pipeline file");
    let mut child = Command::new("envsubst")
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("envsubst (gettext-base)");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to envsubst");
    let out = child.wait_with_output().expect("envsubst output");
    assert!(
        out.status.success(),
        "envsubst failed on {}",
        file.display()
    );
    let filled = String::from_utf8(out.stdout).expect("UTF-8");
    let lines: Vec<&str> = filled.lines().filter(|l| !l.starts_with('#')).collect();
    let description = lines.join(" ");
    assert!(
        !description.contains('$'),
        "{}: a variable the scripts do not set: {description}",
        file.display()
    );
    description
}

/// Parses and prerolls `description`; the error text if either fails.
fn preroll(description: &str) -> Result<(), String> {
    let pipeline = gst::parse::launch(description).map_err(|e| format!("parse: {e}"))?;
    let bus = pipeline.bus().ok_or("no bus")?;
    let started = pipeline.set_state(gst::State::Paused);
    let outcome = match started {
        Err(_) => Err("the state change to PAUSED failed".to_string()),
        Ok(_) => {
            let (result, state, _) = pipeline.state(gst::ClockTime::from_seconds(120));
            match result {
                Ok(_) if state == gst::State::Paused => Ok(()),
                _ => Err(format!("no preroll within 120 s (state {state:?})")),
            }
        }
    };
    let error = bus.iter().find_map(|m| match m.view() {
        gst::MessageView::Error(e) => Some(format!("{} ({:?})", e.error(), e.debug())),
        _ => None,
    });
    let _ = pipeline.set_state(gst::State::Null);
    match (outcome, error) {
        (_, Some(e)) => Err(e),
        (r, None) => r,
    }
}

#[test]
fn every_shipped_pipeline_parses_and_prerolls() {
    veil_e2e::init();
    let tmp = std::env::temp_dir().join(format!("veil-pipelines-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("temp dir");
    let vars = variables(&tmp);
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_path("pipelines"))
        .expect("pipelines/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pipeline"))
        // A live camera's pipeline needs a camera: tests/live.rs runs it against an RTSP server.
        .filter(|p| !p.to_string_lossy().ends_with("-rtsp.pipeline"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "pipelines/ holds {files:?}");
    let mut failures = Vec::new();
    for file in &files {
        let mut description = fill(file, &vars);
        // The README ends the sink-less descriptions with a sink of the user's choice, and the
        // preview's window cannot open here: both get a fakesink.
        description = description.replace("autovideosink sync=true", "fakesink");
        let last = description.rsplit('!').next().unwrap_or_default();
        if !last.contains("sink") {
            description.push_str(" ! fakesink");
        }
        if let Err(e) = preroll(&description) {
            failures.push(format!("{}: {e}", file.display()));
        }
    }
    // The control: a description with a property no element has must fail the same check.
    let broken = fill(&files[0], &vars).replace("inferfilter name=faces", "inferfilter no-such=1");
    assert!(
        preroll(&broken).is_err(),
        "the check passes a broken description"
    );
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(failures.is_empty(), "{failures:#?}");
}
