// SPDX-License-Identifier: MIT OR Apache-2.0
//! `veil-certs [--out DIR] [--org NAME] [DEVICE...]`: a development CA and certificates for the
//! TLS and mutual-TLS Zenoh configurations in configs/zenoh and the HTTPS API.

use std::path::PathBuf;

use clap::Parser;

/// A development CA, a service certificate (localhost, 127.0.0.1) and one client certificate per
/// device (ECDSA P-256; keys mode 0600). For development and tests, not production.
#[derive(Parser)]
#[command(name = "veil-certs", version)]
struct Cli {
    /// Where the PEM files go.
    #[arg(long, value_name = "DIR", default_value = "configs/certs")]
    out: PathBuf,
    /// The organization named in every certificate.
    #[arg(long, value_name = "NAME", default_value = "Veil")]
    org: String,
    /// Device names: one client certificate each (its common name), `DEVICE.pem` + `DEVICE-key.pem`.
    #[arg(value_name = "DEVICE", default_values_t = ["device".to_string()])]
    devices: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let names: Vec<&str> = cli.devices.iter().map(String::as_str).collect();
    veil_tools::certs::generate(&cli.out, &cli.org, &names)?;
    println!(
        "wrote a development CA, a service certificate and {} device certificate(s) to {}",
        names.len(),
        cli.out.display()
    );
    Ok(())
}
