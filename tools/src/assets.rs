// SPDX-License-Identifier: MIT OR Apache-2.0
//! Where the set-up script put the models and media (`$VEIL_ASSETS`, default
//! `~/.cache/veil/assets`). A missing asset is an error that says how to get it — tests never
//! skip silently.

use std::path::PathBuf;

pub fn root() -> PathBuf {
    if let Ok(dir) = std::env::var("VEIL_ASSETS") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var("VEIL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            std::env::var("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|_| {
                    PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache")
                })
                .join("veil")
        });
    cache.join("assets")
}

/// The path of an asset, e.g. `models/centerface.onnx` or `media/vtest.avi`.
pub fn path(relative: &str) -> anyhow::Result<PathBuf> {
    let p = root().join(relative);
    if p.is_file() {
        Ok(p)
    } else {
        anyhow::bail!(
            "missing asset {}: run scripts/setup.sh (the test command runs it for you), \
             or point VEIL_ASSETS at a directory that has it",
            p.display()
        )
    }
}

/// Like [`path`], panicking with the same message: for tests.
pub fn require(relative: &str) -> PathBuf {
    path(relative).unwrap_or_else(|e| panic!("{e}"))
}
