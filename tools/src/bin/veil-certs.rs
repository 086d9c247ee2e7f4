// SPDX-License-Identifier: MIT OR Apache-2.0
//! `veil-certs [--out DIR] [--org NAME] [DEVICE...]`: a development CA and certificates for the
//! TLS and mutual-TLS Zenoh configurations in configs/zenoh (default DIR: configs/certs, default
//! device: `device`).

fn main() -> anyhow::Result<()> {
    let mut out = std::path::PathBuf::from("configs/certs");
    let mut org = "Veil".to_string();
    let mut devices = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => {
                out = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--out needs a directory"))?
                    .into()
            }
            "--org" => {
                org = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--org needs a name"))?
            }
            "-h" | "--help" => {
                println!("usage: veil-certs [--out DIR] [--org NAME] [DEVICE...]");
                return Ok(());
            }
            name => devices.push(name.to_owned()),
        }
    }
    if devices.is_empty() {
        devices.push("device".into());
    }
    let names: Vec<&str> = devices.iter().map(String::as_str).collect();
    veil_tools::certs::generate(&out, &org, &names)?;
    println!(
        "wrote a development CA, a service certificate and {} device certificate(s) to {}",
        names.len(),
        out.display()
    );
    Ok(())
}
