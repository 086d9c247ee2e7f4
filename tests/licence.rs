// SPDX-License-Identifier: MIT OR Apache-2.0
//! One licence everywhere: `MIT OR Apache-2.0` in Cargo (every crate takes the workspace's),
//! meson and an SPDX line at the top of every source file and script; the two licence texts in
//! the repository; and every GStreamer plugin declaring GStreamer's token for it
//! (`veil_meta::element::GST_PLUGIN_LICENSE`: GStreamer refuses unlisted strings).

use std::path::PathBuf;

const SPDX: &str = "SPDX-License-Identifier: MIT OR Apache-2.0";

fn repo() -> PathBuf {
    veil_e2e::repository_root()
}

#[test]
fn every_source_file_says_its_licence() {
    let root = repo();
    let mut files = veil_e2e::repository_files();
    files.push(root.join(".ci/run"));
    let sources: Vec<&PathBuf> = files
        .iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(".rs")
                || name.ends_with(".sh")
                || name.ends_with(".py")
                || name == "meson.build"
                || name == "run"
        })
        .collect();
    assert!(sources.len() > 100, "{} source files found", sources.len());
    let missing: Vec<String> = sources
        .iter()
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            !text.lines().take(3).any(|l| l.contains(SPDX))
        })
        .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "no SPDX line in the first 3 lines: {missing:?}"
    );
}

#[test]
fn cargo_meson_and_the_plugins_agree() {
    let root = repo();
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    assert!(read("Cargo.toml").contains("license = \"MIT OR Apache-2.0\""));
    assert!(read("meson.build").contains("license : 'MIT OR Apache-2.0'"));
    assert!(read("LICENSE-MIT").starts_with("MIT License"));
    assert!(read("LICENSE-APACHE").contains("Apache License"));
    let manifests = veil_e2e::repository_files();
    for m in manifests.iter().filter(|p| {
        p.file_name().is_some_and(|n| n == "Cargo.toml") && *p != &root.join("Cargo.toml")
    }) {
        let text = std::fs::read_to_string(m).unwrap();
        assert!(
            text.contains("license.workspace = true"),
            "{} must take the workspace's licence",
            m.display()
        );
    }
    let token = format!("\"{}\",", veil_meta::element::GST_PLUGIN_LICENSE);
    for plugin in ["inference", "anonymizer", "aggregator", "audit"] {
        let lib = read(&format!("plugins/{plugin}/src/lib.rs"));
        assert!(
            lib.contains("gst::plugin_define!") && lib.contains(&token),
            "plugins/{plugin} must declare {token} to GStreamer"
        );
    }
}
