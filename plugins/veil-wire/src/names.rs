// SPDX-License-Identifier: MIT OR Apache-2.0
//! Names that make up key expressions: tenant, site, device, stream.
//!
//! Key expressions are tenant-first, `veil/<tenant>/<site>/<device>/<stream>/<kind>`, so that
//! Zenoh access control can isolate tenants with `veil/<tenant>/**`. Acknowledgements from the
//! store travel on `veil-ack/<tenant>/<site>/<device>/<stream>`, outside `veil/**`, so a store
//! subscribed to `veil/**` never receives its own acknowledgements.

use serde::{Deserialize, Serialize};

/// Prefix of every record's key expression.
pub const RECORD_PREFIX: &str = "veil";
/// Prefix of the store's acknowledgements.
pub const ACK_PREFIX: &str = "veil-ack";
const MAX_NAME_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{field} {value:?} is not a valid name: use 1 to 64 of A-Z a-z 0-9 . _ -, not starting with '.'"
)]
pub struct NameError {
    pub field: &'static str,
    pub value: String,
}

/// Checks one key-expression chunk: no separators, wildcards or Zenoh's special characters.
pub fn check_name(field: &'static str, value: &str) -> Result<(), NameError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_NAME_LEN
        && !value.starts_with('.')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(NameError {
            field,
            value: value.to_owned(),
        })
    }
}

/// Where records come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Names {
    pub tenant: String,
    pub site: String,
    pub device: String,
    pub stream: String,
}

impl Names {
    pub fn new(tenant: &str, site: &str, device: &str, stream: &str) -> Result<Self, NameError> {
        check_name("tenant", tenant)?;
        check_name("site", site)?;
        check_name("device", device)?;
        check_name("stream", stream)?;
        Ok(Names {
            tenant: tenant.into(),
            site: site.into(),
            device: device.into(),
            stream: stream.into(),
        })
    }

    /// `veil/<tenant>/<site>/<device>/<stream>/<kind>`.
    pub fn record_key(&self, kind: &str) -> String {
        format!(
            "{RECORD_PREFIX}/{}/{}/{}/{}/{kind}",
            self.tenant, self.site, self.device, self.stream
        )
    }

    /// `veil-ack/<tenant>/<site>/<device>/<stream>`.
    pub fn ack_key(&self) -> String {
        format!(
            "{ACK_PREFIX}/{}/{}/{}/{}",
            self.tenant, self.site, self.device, self.stream
        )
    }

    pub fn unit(&self) -> ChainUnit {
        ChainUnit {
            tenant: self.tenant.clone(),
            device: self.device.clone(),
            stream: self.stream.clone(),
        }
    }

    /// Reads names and kind back from a record's key expression.
    pub fn parse_record_key(key: &str) -> Option<(Names, String)> {
        let parts: Vec<&str> = key.split('/').collect();
        match parts.as_slice() {
            [RECORD_PREFIX, tenant, site, device, stream, kind] => {
                let names = Names::new(tenant, site, device, stream).ok()?;
                check_name("kind", kind).ok()?;
                Some((names, (*kind).to_owned()))
            }
            _ => None,
        }
    }
}

/// One hash chain: its own sequence numbers, spool and deduplication key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChainUnit {
    pub tenant: String,
    pub device: String,
    pub stream: String,
}

impl std::fmt::Display for ChainUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.tenant, self.device, self.stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_separators_and_wildcards() {
        for bad in [
            "", "a/b", "*", "a**", "$x", "a?b", "#", "@ack", ".hidden", "é",
        ] {
            assert!(check_name("tenant", bad).is_err(), "{bad:?} accepted");
        }
        for good in ["acme", "store-12", "cam_3", "v1.2"] {
            check_name("tenant", good).unwrap();
        }
        assert!(check_name("site", &"x".repeat(65)).is_err());
    }

    #[test]
    fn key_expressions_are_tenant_first_and_parse_back() {
        let n = Names::new("acme", "store-12", "cam-3", "entrance").unwrap();
        assert_eq!(
            n.record_key("metrics"),
            "veil/acme/store-12/cam-3/entrance/metrics"
        );
        assert_eq!(n.ack_key(), "veil-ack/acme/store-12/cam-3/entrance");
        let (back, kind) = Names::parse_record_key(&n.record_key("event")).unwrap();
        assert_eq!((back, kind.as_str()), (n, "event"));
        assert!(Names::parse_record_key("veil/acme/x/y/metrics").is_none());
        assert!(Names::parse_record_key("other/acme/a/b/c/metrics").is_none());
    }
}
