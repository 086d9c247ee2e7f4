// SPDX-License-Identifier: MIT OR Apache-2.0
//! A development certificate authority for Zenoh over TLS and mutual TLS: a CA, a service
//! certificate (for `localhost` and 127.0.0.1) and device (client) certificates, as PEM files.
//! Private keys are written with mode 0600. For production, use your own PKI.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

fn write(path: &Path, text: &str, private: bool) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

fn leaf(
    name: &str,
    sans: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(sans)?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    Ok(params)
}

/// The file stem of a device's certificate: its name, with a `tenant/site/device` name's
/// slashes as dots (`acme/hq/cam-1` → `acme.hq.cam-1.pem`).
pub fn device_file_stem(name: &str) -> String {
    name.replace('/', ".")
}

/// Writes `ca.pem`, `ca-key.pem`, `service.pem`, `service-key.pem` and, for each device name,
/// `<stem>.pem` and `<stem>-key.pem` into `dir` ([`device_file_stem`]). The device name is the
/// certificate's common name: `tenant/site/device` is what the shipped Zenoh access-control
/// configurations match (`configs/zenoh/*-acl.json5`).
pub fn generate(dir: &Path, organization: &str, devices: &[&str]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{organization} development CA"));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    write(&dir.join("ca.pem"), &ca.pem(), false)?;

    let service_key = KeyPair::generate()?;
    let mut service = leaf(
        "veil-sink-service",
        vec!["localhost".into(), "127.0.0.1".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    // Also a client's: zenohd routers of a mesh use it both to listen and to connect to each
    // other (configs/zenoh/router-*-mtls.json5).
    service
        .extended_key_usages
        .push(ExtendedKeyUsagePurpose::ClientAuth);
    let service = service.signed_by(&service_key, &ca)?;
    write(&dir.join("service.pem"), &service.pem(), false)?;
    write(
        &dir.join("service-key.pem"),
        &service_key.serialize_pem(),
        true,
    )?;

    for device in devices {
        let key = KeyPair::generate()?;
        // A `tenant/site/device` name is no DNS name: such a certificate has none.
        let sans = if device.contains('/') {
            Vec::new()
        } else {
            vec![(*device).to_owned()]
        };
        let cert = leaf(device, sans, ExtendedKeyUsagePurpose::ClientAuth)?.signed_by(&key, &ca)?;
        let stem = device_file_stem(device);
        write(&dir.join(format!("{stem}.pem")), &cert.pem(), false)?;
        write(
            &dir.join(format!("{stem}-key.pem")),
            &key.serialize_pem(),
            true,
        )?;
    }
    Ok(())
}
