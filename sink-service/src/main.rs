// SPDX-License-Identifier: MIT OR Apache-2.0
//! `sink-service [--config FILE] COMMAND`: see `sink-service --help` and [`veil_sink_service::cli`].

fn main() -> std::process::ExitCode {
    veil_sink_service::cli::main()
}
