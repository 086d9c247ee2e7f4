// SPDX-License-Identifier: MIT OR Apache-2.0
//! The sink service's command line, built in this package so its end-to-end tests can start it
//! (`CARGO_BIN_EXE_veil-sink-service`); the same code as `sink-service`.

fn main() -> std::process::ExitCode {
    veil_sink_service::cli::main()
}
