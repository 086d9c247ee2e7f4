// SPDX-License-Identifier: MIT OR Apache-2.0
//! `auditsink` refuses to start on bad settings, with a clear element error.

use std::os::unix::fs::PermissionsExt;

use gst::prelude::*;

fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        gst::init().unwrap();
        gstveilaudit::plugin_register_static().unwrap();
    });
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("veil-auditsink-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts `fakesrc ! auditsink <props>`; returns the error the element posted.
fn start_error(props: &str) -> String {
    init();
    let pipeline =
        gst::parse::launch(&format!("fakesrc num-buffers=1 ! auditsink {props}")).unwrap();
    assert!(
        pipeline.set_state(gst::State::Playing).is_err(),
        "started with {props}"
    );
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
        .expect("an error message");
    let text = match msg.view() {
        gst::MessageView::Error(e) => format!("{} {:?}", e.error(), e.debug()),
        _ => unreachable!(),
    };
    pipeline.set_state(gst::State::Null).unwrap();
    text
}

#[test]
fn a_key_file_readable_by_others_is_refused() {
    let dir = temp("key");
    let key = dir.join("device.key");
    std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = start_error(&format!(
        "key-file={} spool-dir={}",
        key.display(),
        dir.display()
    ));
    assert!(error.contains("must be 0600"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn names_that_would_break_key_expressions_are_refused() {
    let dir = temp("names");
    let error = start_error(&format!("tenant=a*b spool-dir={}", dir.display()));
    assert!(
        error.contains("tenant \"a*b\" is not a valid name"),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_spool_in_use_by_another_pipeline_is_refused() {
    init();
    let dir = temp("busy");
    // The store is not running: the first pipeline still starts, and holds its spool.
    let first = gst::parse::launch(&format!(
        "fakesrc ! auditsink spool-dir={} zenoh-config={}",
        dir.display(),
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../configs/zenoh/device-tcp.json5")
            .display()
    ))
    .unwrap();
    first.set_state(gst::State::Paused).unwrap();
    let error = start_error(&format!("spool-dir={}", dir.display()));
    assert!(error.contains("another pipeline"), "{error}");
    first.set_state(gst::State::Null).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
