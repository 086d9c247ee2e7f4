// SPDX-License-Identifier: MIT OR Apache-2.0
//! Where things are: the repository, and what the set-up installed.

use std::path::PathBuf;

/// A path inside the repository (configs, pipelines, examples).
pub fn repo_path(relative: &str) -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// The cache the set-up fills (`$VEIL_CACHE`, default `~/.cache/veil`).
pub fn cache() -> PathBuf {
    std::env::var("VEIL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/veil")
        })
}

/// The Python of the venv that scripts/setup.sh makes for the Zenoh client examples.
pub fn python_client() -> PathBuf {
    let python = cache().join("client-venv/bin/python");
    assert!(
        python.exists(),
        "missing {}: run scripts/setup.sh (the test command runs it for you)",
        python.display()
    );
    python
}
