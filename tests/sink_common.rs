// SPDX-License-Identifier: MIT OR Apache-2.0
//! The sink service as a process, for the end-to-end tests that put real pipelines in front of
//! it: this package's own `veil-sink-service` binary (the service's command line).

#![allow(dead_code, unused_imports)]

use std::path::Path;

pub use veil_testkit::service::{Service, configs, temp};

pub fn sink_service(config: &Path, args: &[&str]) -> std::process::Output {
    veil_testkit::service::run(env!("CARGO_BIN_EXE_veil-sink-service"), config, args)
}

/// Starts `serve`, waits for its "ready" line and keeps reading its output (echoed to stderr).
pub fn serve(config: &Path) -> Service {
    veil_testkit::service::serve(env!("CARGO_BIN_EXE_veil-sink-service"), config)
}
