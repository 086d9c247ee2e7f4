// SPDX-License-Identifier: MIT OR Apache-2.0
//! What the device runs, as a `config` record body: every element of the pipeline (Veil's with
//! their settings), and the SHA-256 of every model and configuration file they read, so that
//! model deployments and configuration changes are auditable after the fact.
//!
//! ```json
//! {"elements":[{"name":"faces","factory":"inferfilter","properties":{"threshold":"0.5",...}},
//!              {"name":"decodebin0","factory":"decodebin"}],
//!  "files":[{"element":"faces","property":"model","path":"/…/centerface.onnx",
//!            "sha256":"…","bytes":7531008}],
//!  "software":{"veil":"0.1.0","gstreamer":"GStreamer 1.22.0"}}
//! ```

use std::collections::HashMap;
use std::io::Read;
use std::sync::{LazyLock, Mutex};
use std::time::SystemTime;

use gst::glib;
use gst::prelude::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Elements whose settings are recorded in full; of the others only name and factory.
const VEIL_FACTORIES: [&str; 4] = ["inferfilter", "anonymizer", "aggregator", "auditsink"];
/// Never recorded: secrets, and what changes on every frame.
const PRIVATE_PROPERTIES: [&str; 4] = ["key-file", "last-sample", "parent", "name"];

/// Whether a string property names a file whose content is configuration.
pub fn is_file_property(name: &str) -> bool {
    name == "model" || name == "zenoh-config" || (name.ends_with("-file") && name != "key-file")
}

/// Whether a change of this property calls for a new `config` record.
pub fn is_recorded_property(element: &gst::Element, property: &str) -> bool {
    element
        .factory()
        .is_some_and(|f| VEIL_FACTORIES.contains(&f.name().as_str()))
        && !PRIVATE_PROPERTIES.contains(&property)
}

type FileKey = (std::path::PathBuf, u64, Option<SystemTime>);
/// Hashing a model takes a while; a file is hashed again only when its size or time changes.
static DIGESTS: LazyLock<Mutex<HashMap<FileKey, String>>> = LazyLock::new(Default::default);

fn file_digest(path: &str) -> Option<(String, u64)> {
    let meta = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
    let key = (path.into(), meta.len(), meta.modified().ok());
    if let Some(d) = DIGESTS.lock().ok()?.get(&key) {
        return Some((d.clone(), meta.len()));
    }
    let mut file = std::fs::File::open(path).ok()?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let digest = hex::encode(hasher.finalize());
    DIGESTS.lock().ok()?.insert(key, digest.clone());
    Some((digest, meta.len()))
}

fn value_text(value: &glib::Value) -> Value {
    if let Ok(b) = value.get::<bool>() {
        return json!(b);
    }
    match value.serialize() {
        Ok(s) => json!(s.as_str()),
        Err(_) => Value::Null,
    }
}

/// The configuration of the pipeline `top` (the outermost bin).
pub fn snapshot(top: &gst::Bin) -> Value {
    let mut elements: Vec<gst::Element> = top.iterate_recurse().into_iter().flatten().collect();
    elements.sort_by_key(|e| e.name());
    let mut described = Vec::new();
    let mut files = Vec::new();
    for element in &elements {
        let factory = element
            .factory()
            .map(|f| f.name().to_string())
            .unwrap_or_default();
        let mut entry = json!({"name": element.name().as_str(), "factory": factory});
        if VEIL_FACTORIES.contains(&factory.as_str()) {
            let mut properties = serde_json::Map::new();
            for pspec in element.list_properties() {
                let name = pspec.name();
                // Read-only properties are statistics, not configuration.
                if !pspec.flags().contains(glib::ParamFlags::READWRITE)
                    || PRIVATE_PROPERTIES.contains(&name)
                {
                    continue;
                }
                let value = element.property_value(name);
                if is_file_property(name)
                    && let Ok(Some(path)) = value.get::<Option<String>>()
                    && let Some((sha256, bytes)) = file_digest(&path)
                {
                    files.push(json!({
                        "element": element.name().as_str(),
                        "property": name,
                        "path": path,
                        "sha256": sha256,
                        "bytes": bytes,
                    }));
                }
                properties.insert(name.to_owned(), value_text(&value));
            }
            entry["properties"] = Value::Object(properties);
        }
        described.push(entry);
    }
    json!({
        "elements": described,
        "files": files,
        "software": {
            "veil": env!("CARGO_PKG_VERSION"),
            "gstreamer": gst::version_string().as_str(),
        },
    })
}
