// SPDX-License-Identifier: MIT OR Apache-2.0
//! `veil-certs [--out DIR] [--org NAME] [--operator NAME]... [--acl-out FILE] [DEVICE...]`: a
//! development CA and certificates for the TLS and mutual-TLS Zenoh configurations in
//! configs/zenoh and the HTTPS API, and the service's Zenoh access control for them.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// A development CA, a service certificate (localhost, 127.0.0.1) and one client certificate per
/// device and operator (ECDSA P-256; keys mode 0600). For development and tests, not production.
#[derive(Parser)]
#[command(name = "veil-certs", version)]
struct Cli {
    /// Where the PEM files go.
    #[arg(long, value_name = "DIR", default_value = "configs/certs")]
    out: PathBuf,
    /// The organization named in every certificate.
    #[arg(long, value_name = "NAME", default_value = "Veil")]
    org: String,
    /// An operator's client certificate (common name NAME): may query history and the admin
    /// queryables through the access control (the service still asks for an API key).
    #[arg(long = "operator", value_name = "NAME")]
    operators: Vec<String>,
    /// Also write FILE: the service's mutual-TLS Zenoh configuration
    /// (configs/zenoh/service-mtls.json5 with the certificates of --out) with access control for
    /// these devices and operators.
    #[arg(long, value_name = "FILE")]
    acl_out: Option<PathBuf>,
    /// Device names: one client certificate each, the name its common name; `DEVICE.pem` +
    /// `DEVICE-key.pem`. Name devices `TENANT/SITE/DEVICE` for the access control (files
    /// `TENANT.SITE.DEVICE.pem`).
    #[arg(value_name = "DEVICE", default_values_t = ["device".to_string()])]
    devices: Vec<String>,
}

/// Checks the names before anything is written: a device `TENANT/SITE/DEVICE` of valid names
/// (or, without --acl-out, one plain name), operators plain names, no name twice and no two
/// names sharing a file.
fn check_names(devices: &[&str], operators: &[&str], acl: bool) -> anyhow::Result<()> {
    use veil_wire::names::check_name;
    for device in devices {
        let parts: Vec<&str> = device.split('/').collect();
        match parts.as_slice() {
            [tenant, site, name] => {
                check_name("tenant", tenant)?;
                check_name("site", site)?;
                check_name("device", name)?;
            }
            [name] if !acl => check_name("device", name)?,
            _ => anyhow::bail!(
                "device {device:?}: name devices TENANT/SITE/DEVICE (each of letters, digits, ., _, -){}",
                if acl { " for --acl-out" } else { "" }
            ),
        }
    }
    for operator in operators {
        check_name("operator", operator)?;
    }
    let mut stems = std::collections::HashSet::new();
    for name in devices.iter().chain(operators) {
        let stem = veil_testkit::certs::device_file_stem(name);
        anyhow::ensure!(
            stems.insert(stem.clone()),
            "{name:?} is given twice, or shares the file {stem}.pem with another name"
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let devices: Vec<&str> = cli.devices.iter().map(String::as_str).collect();
    let operators: Vec<&str> = cli.operators.iter().map(String::as_str).collect();
    check_names(&devices, &operators, cli.acl_out.is_some())?;
    let clients: Vec<&str> = devices.iter().chain(&operators).copied().collect();
    veil_tools::certs::generate(&cli.out, &cli.org, &clients)?;
    println!(
        "wrote a development CA, a service certificate and {} client certificate(s) to {}",
        clients.len(),
        cli.out.display()
    );
    if let Some(path) = &cli.acl_out {
        let scoped: Vec<&str> = devices
            .iter()
            .copied()
            .filter(|d| d.contains('/'))
            .collect();
        let base = veil_testkit::paths::repo_path("configs/zenoh/service-mtls.json5");
        // The certificates are the ones just written, by absolute path: the service may run
        // from anywhere.
        let out = std::fs::canonicalize(&cli.out)
            .with_context(|| format!("resolving {}", cli.out.display()))?;
        let certs = format!("{}/", out.display());
        let text = std::fs::read_to_string(&base)
            .with_context(|| format!("reading {}", base.display()))?
            .replace("configs/certs/", &certs);
        let acl = veil_testkit::zenoh_acl::access_control(&scoped, &operators);
        let config = veil_testkit::zenoh_acl::with_access_control(&text, &acl)?;
        let tmp = path.with_extension("json5.tmp");
        std::fs::write(&tmp, config).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
        println!(
            "wrote {} (access control for {} device(s), {} operator(s))",
            path.display(),
            scoped.len(),
            operators.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_names;

    /// A name that is not exactly TENANT/SITE/DEVICE would widen (or break) the access
    /// control written for it; nothing is written for it.
    #[test]
    fn names_are_checked_before_anything_is_written() {
        assert!(check_names(&["acme/hq/cam-1"], &["ops"], true).is_ok());
        assert!(check_names(&["device"], &[], false).is_ok());
        for bad in [
            "acme/hq",
            "acme/hq/**",
            "acme/*/cam-1",
            "acme/hq/cam-1/extra",
            "device",
        ] {
            assert!(check_names(&[bad], &[], true).is_err(), "{bad}");
        }
        assert!(
            check_names(&["a.b/c/d", "a/b.c/d"], &[], true).is_err(),
            "one file"
        );
        assert!(check_names(&["acme/hq/cam-1", "acme/hq/cam-1"], &[], true).is_err());
        assert!(check_names(&["acme/hq/cam-1"], &[""], true).is_err());
    }
}
