// SPDX-License-Identifier: MIT OR Apache-2.0
//! Station scopes: which sites, devices and streams of its tenant an API key may see, and with
//! it what the key creates (narrower keys, webhook subscriptions).
//!
//! Each axis is a set of names; an empty set does not restrict that axis, so the default scope
//! is the whole tenant. A record of `(site, device, stream)` is inside when every restricted
//! axis names it. Something whose site, device or stream is not known (a service alert about a
//! key, say) is inside only for an axis that is not restricted: when in doubt, a scoped key sees
//! less.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// The sites, devices and streams a key is limited to (empty: not limited on that axis).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stations {
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub sites: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub devices: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub streams: BTreeSet<String>,
}

/// One axis: unrestricted, or the name is known and listed.
fn axis_admits(allowed: &BTreeSet<String>, name: Option<&str>) -> bool {
    allowed.is_empty() || name.is_some_and(|n| allowed.contains(n))
}

/// One axis of `outer` holds all of `inner`'s: `outer` unrestricted, or `inner` restricted to a
/// subset.
fn axis_covers(outer: &BTreeSet<String>, inner: &BTreeSet<String>) -> bool {
    outer.is_empty() || (!inner.is_empty() && inner.is_subset(outer))
}

impl Stations {
    /// Builds a scope from names, each checked as a Veil name (`veil_wire::names`).
    ///
    /// Errors: a name that is not a valid site, device or stream name.
    pub fn new<S: AsRef<str>>(sites: &[S], devices: &[S], streams: &[S]) -> anyhow::Result<Self> {
        let set = |what: &'static str, names: &[S]| -> anyhow::Result<BTreeSet<String>> {
            names
                .iter()
                .map(|n| {
                    veil_wire::names::check_name(what, n.as_ref())?;
                    Ok(n.as_ref().to_owned())
                })
                .collect()
        };
        Ok(Stations {
            sites: set("site", sites)?,
            devices: set("device", devices)?,
            streams: set("stream", streams)?,
        })
    }

    /// Not limited on any axis.
    pub fn is_whole_tenant(&self) -> bool {
        self.sites.is_empty() && self.devices.is_empty() && self.streams.is_empty()
    }

    /// Whether a record of this site, device and stream is inside.
    pub fn admits(&self, site: &str, device: &str, stream: &str) -> bool {
        self.admits_known(Some(site), Some(device), Some(stream))
    }

    /// [`Stations::admits`] where some names may be unknown (`None`): an unknown name is inside
    /// only on an unrestricted axis.
    pub fn admits_known(
        &self,
        site: Option<&str>,
        device: Option<&str>,
        stream: Option<&str>,
    ) -> bool {
        axis_admits(&self.sites, site)
            && axis_admits(&self.devices, device)
            && axis_admits(&self.streams, stream)
    }

    /// Whether everything `inner` admits, `self` admits too (axis by axis), i.e. `inner` is as
    /// narrow or narrower. A scoped key manages only keys and subscriptions it covers.
    pub fn covers(&self, inner: &Stations) -> bool {
        axis_covers(&self.sites, &inner.sites)
            && axis_covers(&self.devices, &inner.devices)
            && axis_covers(&self.streams, &inner.streams)
    }

    /// The API's view: all three axes, empty lists meaning "all".
    pub fn public(&self) -> serde_json::Value {
        serde_json::json!({"sites": self.sites, "devices": self.devices, "streams": self.streams})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(sites: &[&str], devices: &[&str], streams: &[&str]) -> Stations {
        Stations::new(sites, devices, streams).unwrap()
    }

    #[test]
    fn an_empty_scope_is_the_whole_tenant() {
        let all = Stations::default();
        assert!(all.is_whole_tenant());
        assert!(all.admits("hq", "cam-1", "entrance"));
        assert!(all.admits_known(None, None, None));
    }

    #[test]
    fn every_restricted_axis_must_name_the_record() {
        let lab = scope(&["lab"], &[], &[]);
        assert!(lab.admits("lab", "cam-1", "s"));
        assert!(!lab.admits("hq", "cam-1", "s"));
        let cam = scope(&["lab"], &["cam-1", "cam-2"], &[]);
        assert!(cam.admits("lab", "cam-2", "s"));
        assert!(!cam.admits("lab", "cam-3", "s"));
        assert!(!cam.admits("hq", "cam-1", "s"));
        // Unknown names: inside only where the axis is open.
        assert!(!lab.admits_known(None, Some("cam-1"), Some("s")));
        assert!(scope(&[], &["cam-1"], &[]).admits_known(None, Some("cam-1"), None));
        assert!(!scope(&[], &["cam-1"], &[]).admits_known(None, None, None));
    }

    #[test]
    fn a_scope_covers_only_narrower_ones() {
        let all = Stations::default();
        let lab = scope(&["lab"], &[], &[]);
        let lab_cam = scope(&["lab"], &["cam-1"], &[]);
        let hq = scope(&["hq"], &[], &[]);
        assert!(all.covers(&lab) && all.covers(&all));
        assert!(lab.covers(&lab) && lab.covers(&lab_cam));
        assert!(
            !lab.covers(&all),
            "a scoped key cannot make a whole-tenant one"
        );
        assert!(!lab.covers(&hq) && !lab_cam.covers(&lab));
        assert!(!lab.covers(&scope(&["lab", "hq"], &[], &[])));
    }

    #[test]
    fn names_are_checked() {
        assert!(Stations::new(&["../etc"], &[], &[]).is_err());
        assert!(Stations::new(&["lab"], &["cam 1"], &[]).is_err());
        let json = serde_json::to_string(&scope(&["lab"], &[], &[])).unwrap();
        assert_eq!(json, r#"{"sites":["lab"]}"#);
        let back: Stations = serde_json::from_str("{}").unwrap();
        assert!(back.is_whole_tenant());
        assert!(serde_json::from_str::<Stations>(r#"{"zones":["a"]}"#).is_err());
    }
}
