// SPDX-License-Identifier: MIT OR Apache-2.0
//! End-to-end tests of Veil; see the files beside this one. Shared helpers only.

/// Registers every Veil plugin in this process (no GST_PLUGIN_PATH needed).
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(register_all);
}

fn register_all() {
    gst::init().expect("gst init");
    veil_meta::status::register();
    gstveilinference::plugin_register_static().expect("register veilinference");
    gstveilanonymizer::plugin_register_static().expect("register veilanonymizer");
    gstveilaggregator::plugin_register_static().expect("register veilaggregator");
    gstveilaudit::plugin_register_static().expect("register veilaudit");
}

// The helpers that need no GStreamer live in veil-testkit (the sink service's tests use them
// without pulling GStreamer in); re-exported here under their old names.
pub use veil_testkit::net::{client_config, random_ms};
pub use veil_testkit::paths::{python_client, repo_path};
pub use veil_testkit::teststore as store;

/// Runs a pipeline description to EOS (at most `timeout_s`); returns its element messages, and
/// its warnings as structures named `warning` (`text`, `debug`). Panics on an error.
pub fn run_to_eos(description: &str, timeout_s: u64) -> Vec<gst::Structure> {
    use gst::prelude::*;
    init();
    let pipeline = gst::parse::launch(description).expect("pipeline description");
    let bus = pipeline.bus().expect("bus");
    if pipeline.set_state(gst::State::Playing).is_err() {
        let error =
            bus.timed_pop_filtered(gst::ClockTime::from_seconds(1), &[gst::MessageType::Error]);
        let text = match error.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Error(e)) => format!("{} ({:?})", e.error(), e.debug()),
            _ => "no error message".into(),
        };
        panic!("the pipeline does not start: {text}");
    }
    let mut messages = Vec::new();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(timeout_s)) {
        match msg.view() {
            gst::MessageView::Element(e) => messages.extend(e.structure().map(|s| s.to_owned())),
            gst::MessageView::Warning(w) => messages.push(
                gst::Structure::builder("warning")
                    .field("text", w.error().to_string())
                    .field(
                        "debug",
                        w.debug().map(|d| d.to_string()).unwrap_or_default(),
                    )
                    .build(),
            ),
            gst::MessageView::Error(e) => panic!("{} ({:?})", e.error(), e.debug()),
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).expect("to NULL");
    messages
}

/// From `auditsink`'s bus messages: the last sequence number queued, and whether the store
/// acknowledged everything at EOS.
pub fn audit_outcome(messages: &[gst::Structure]) -> (u64, bool) {
    let last = messages
        .iter()
        .filter(|s| s.name() == gstveilaudit::MSG_QUEUED)
        .filter_map(|s| s.get::<u64>("last").ok())
        .max()
        .unwrap_or(0);
    let complete = messages
        .iter()
        .find(|s| s.name() == gstveilaudit::MSG_EOS)
        .and_then(|s| s.get::<bool>("complete").ok())
        .unwrap_or(false);
    (last, complete)
}

/// Every file of the repository (`tests/..`), skipping hidden folders and build output
/// (`target`, `build`): what the repository-wide checks (licence lines, event-name spellings)
/// read.
pub fn repository_files() -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "build" {
                    walk(&path, out);
                }
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repository_root(), &mut out);
    out
}

/// The repository's root (the folder above `tests/`), without `..` in it.
/// Where cargo put the running test binary's build (`<target>/debug/deps/<test>-<hash>`): the
/// plugins and tools a test runs as processes are in its `debug/`.
pub fn target_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.ancestors()
        .nth(3)
        .expect("target directory above the test executable")
        .to_owned()
}

pub fn repository_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_owned()
}

/// What a made-up store would announce to claim `set` (sink-service's owner token key), dated 0
/// so that it precedes every real store's announcement: the attacker's claim in the ownership
/// tests.
pub fn winning_claim(set: &str) -> String {
    let hexed: String = set.bytes().map(|b| format!("{b:02x}")).collect();
    format!("veil-store/owner/{}/0/{hexed}", "ab".repeat(16))
}

/// Holds a liveliness token on `key` for 3 s with the PyPI `eclipse-zenoh` client and the Zenoh
/// configuration `config` (tests/python/zenoh_probe.py).
pub fn announce_token(config: &std::path::Path, key: &str) {
    let out = std::process::Command::new(python_client())
        .arg(repo_path("tests/python/zenoh_probe.py"))
        .arg(config)
        .args(["token", key, "3"])
        .output()
        .expect("the Python client runs");
    assert!(out.status.success(), "{out:?}");
}
