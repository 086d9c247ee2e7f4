// SPDX-License-Identifier: MIT OR Apache-2.0
//! The service's TOML configuration (`configs/sink-service.toml` is a working example).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub store: StoreConfig,
    #[serde(default)]
    pub zenoh: ZenohConfig,
    #[serde(default)]
    pub trust: TrustConfig,
    #[serde(default)]
    pub retention: RetentionConfig,
    #[serde(default)]
    pub limits: Limits,
    /// The HTTPS API; absent: no API.
    pub api: Option<ApiConfig>,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub webhooks: WebhookConfig,
    #[serde(default)]
    pub replication: ReplicationConfig,
    /// Scheduled encrypted backups; absent: none (backups by hand with `sink-service backup`).
    pub backup: Option<BackupSchedule>,
    /// Prometheus metrics for operations; absent: none.
    pub metrics: Option<MetricsConfig>,
    /// SHA-256 of the configuration file (for the audit log's `config.load`).
    #[serde(skip)]
    pub sha256: String,
}

/// `[metrics]`: `GET /metrics` in the Prometheus text format on a listener of its own, plain
/// HTTP (scrapers rarely speak TLS to each target): keep it on loopback or an operations
/// network — it names tenants' devices and streams in its labels.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// `address:port`, e.g. "127.0.0.1:9464".
    pub listen: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// `address:port` to listen on.
    pub listen: String,
    /// The server's certificate chain and private key (PEM).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Development only: plain HTTP instead of HTTPS (never on a network).
    pub insecure_http: bool,
    /// Threads serving requests.
    pub workers: usize,
    /// Rate-limit tiers by name; a key names its tier (default `standard`).
    pub tiers: BTreeMap<String, Tier>,
    /// Failed authentications allowed per source address and minute; beyond, 429.
    pub auth_failures_per_minute: u32,
    /// The largest page a list endpoint returns.
    pub max_page: usize,
    /// How long a read of a tenant other services own waits for their answers over Zenoh
    /// ([`crate::federation`]), in ms.
    pub federation_timeout_ms: u64,
    /// A console session ends after this long without a request ("30m").
    pub session_idle: String,
    /// A console session ends this long after sign-in, used or not ("8h").
    pub session_max: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub requests: u32,
    pub window: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: "127.0.0.1:8443".into(),
            cert: None,
            key: None,
            insecure_http: false,
            workers: 2,
            tiers: [
                (
                    "standard".to_owned(),
                    Tier {
                        requests: 600,
                        window: "60s".into(),
                    },
                ),
                (
                    "bulk".to_owned(),
                    Tier {
                        requests: 6000,
                        window: "60s".into(),
                    },
                ),
            ]
            .into(),
            auth_failures_per_minute: 30,
            max_page: 1000,
            federation_timeout_ms: 5000,
            session_idle: "30m".into(),
            session_max: "8h".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// How long audit entries are kept ("400d"); unset: forever.
    pub keep: Option<String>,
    /// A key's successful authentications from one address are logged once per this interval
    /// ("0s": every request). Failures are always logged.
    pub success_interval: String,
    /// SIEM targets.
    pub forward: Vec<crate::siem::Target>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            keep: Some("400d".into()),
            success_interval: "5m".into(),
            forward: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    pub max_attempts: u32,
    /// The first retry waits this long, each next one twice as long, at most `backoff_max`.
    pub backoff_base: String,
    pub backoff_max: String,
    pub timeout: String,
    /// Development only: plain http:// targets.
    pub allow_http: bool,
    /// Targets on loopback/private addresses (off: a tenant cannot make the service call
    /// into its own network).
    pub allow_private: bool,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            max_attempts: 12,
            backoff_base: "1s".into(),
            backoff_max: "1h".into(),
            timeout: "10s".into(),
            allow_http: false,
            allow_private: false,
        }
    }
}

impl WebhookConfig {
    pub fn policy(&self) -> anyhow::Result<crate::webhooks::Policy> {
        Ok(crate::webhooks::Policy {
            max_attempts: self.max_attempts.max(1),
            backoff_base: parse_duration(&self.backoff_base)?,
            backoff_max: parse_duration(&self.backoff_max)?,
            timeout: parse_duration(&self.timeout)?,
            allow_http: self.allow_http,
            allow_private: self.allow_private,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The sled directory (`~/` is expanded).
    pub path: PathBuf,
    /// The key-encryption key: 64 hex digits, mode 0600 (`sink-service keys init` makes one).
    pub kek_file: PathBuf,
    /// The Ed25519 key the service signs acknowledgements with (hex seed, mode 0600; created by
    /// `keys init` or at the first `serve`; default: `ack.key` beside the KEK). Devices are
    /// given its public key (`sink-service keys public`) as `auditsink store-public-key`.
    #[serde(default)]
    pub ack_key_file: Option<PathBuf>,
}

impl StoreConfig {
    pub fn ack_key_path(&self) -> PathBuf {
        self.ack_key_file
            .clone()
            .unwrap_or_else(|| self.kek_file.with_file_name("ack.key"))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZenohConfig {
    /// Zenoh configuration file (JSON5); default: listen on tcp/127.0.0.1:7447.
    pub config: Option<PathBuf>,
    /// The key expressions this service stores, acknowledges and answers history for (each
    /// under `veil/**`, none intersecting another); announced to other services, and the
    /// service refuses to start when another store announces an intersecting set.
    /// Unset: `["veil/**"]` (everything).
    pub owns: Option<Vec<String>>,
    /// Before `owns`: one key expression to ingest. Still read, as `owns = [subscribe]`.
    pub subscribe: Option<String>,
    /// Prefix of the admin queryables (`<admin>/verify`, `<admin>/stats`).
    pub admin: String,
    /// How long `serve` waits, after announcing what it owns, for other stores' announcements
    /// still crossing the routers before it says it is ready (ms). Default: 1000 for a client
    /// of routers (Zenoh mode `client`), 0 for a service devices connect to.
    pub ownership_grace_ms: Option<u64>,
    /// Key expressions this service keeps a second copy of, as a replica of their owner
    /// ([`crate::replication`]): stored and verified, never acknowledged to a device, confirmed
    /// to the owner instead. Same rules as `owns`, and no entry may intersect an owned one. With
    /// `replicates` set and `owns` unset, the service owns nothing.
    pub replicates: Vec<String>,
}

/// The owner's side of replication ([`crate::replication`]).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicationConfig {
    /// The acknowledgement public keys (64 hex digits, `sink-service keys public` on each
    /// replica) of the replicas that must confirm a record before this owner acknowledges it.
    /// Empty: acknowledge on the owner's own commit.
    pub replicas: Vec<String>,
}

impl ReplicationConfig {
    /// The replicas' keys, checked.
    ///
    /// Errors: an entry that is not an Ed25519 public key in hex, or a key listed twice (the
    /// second would wait for a confirmation that is always counted for the first).
    pub fn keys(&self) -> anyhow::Result<Vec<veil_wire::VerifyingKey>> {
        let mut keys: Vec<veil_wire::VerifyingKey> = Vec::new();
        for k in &self.replicas {
            let key = veil_wire::checkpoint::parse_public_key(k)
                .map_err(|e| anyhow::anyhow!("replication.replicas: {k:?}: {e}"))?;
            anyhow::ensure!(
                !keys.contains(&key),
                "replication.replicas: {k:?} is listed twice"
            );
            keys.push(key);
        }
        Ok(keys)
    }
}

/// `[backup]`: encrypted backups taken by `serve` itself ([`crate::backup`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupSchedule {
    /// Where the backups go (`veil-<UTC time>.bak`); created if missing.
    pub dir: PathBuf,
    /// The backups' key (created if missing; keep a copy away from the backups).
    pub key_file: PathBuf,
    /// How often ("6h"); the first one is taken one interval after `serve` starts.
    pub every: String,
    /// How many of the newest backups are kept (older ones are deleted).
    #[serde(default = "default_backups_kept")]
    pub keep: usize,
}

fn default_backups_kept() -> usize {
    7
}

impl Default for ZenohConfig {
    fn default() -> Self {
        ZenohConfig {
            config: None,
            owns: None,
            subscribe: None,
            admin: "veil-admin/sink".into(),
            ownership_grace_ms: None,
            replicates: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TrustMode {
    /// Only the key enrolled for a device (`sink-service devices enroll`) signs its valid
    /// checkpoints; unknown, revoked and re-keyed-away keys are refused.
    #[default]
    Enrolled,
    /// Only the keys listed per tenant sign valid checkpoints.
    Pinned,
    /// Trust on first use (a lab setting; the service warns at start): a device's first key is
    /// pinned to its tenant and device; a key already pinned to another tenant is refused.
    Tofu,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TrustConfig {
    pub mode: TrustMode,
    /// tenant → Ed25519 public keys (hex) of its devices.
    pub tenants: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// kind → how long records are kept ("30s", "12h", "90d"); kinds not listed are kept.
    pub keep: BTreeMap<String, String>,
    pub sweep_interval: String,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            keep: BTreeMap::new(),
            sweep_interval: "60s".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Larger payloads are quarantined (truncated) and counted. Room for inspection images.
    pub max_payload_bytes: usize,
    /// Acknowledgements (and the flush before them) at most this often, in ms: group commit.
    pub ack_interval_ms: u64,
    /// Records held in memory per chain unit while waiting for a missing one.
    pub max_out_of_order: usize,
    /// A gap (records held behind a missing one) still open after this long, in ms, becomes an
    /// integrity event.
    pub gap_report_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload_bytes: 16 << 20,
            ack_interval_ms: 20,
            max_out_of_order: 10_000,
            gap_report_ms: 30_000,
        }
    }
}

/// "90d", "12h", "15m", "30s" or plain seconds.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let t = text.trim();
    let (number, unit) = t.split_at(
        t.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(t.len()),
    );
    let n: f64 = number
        .parse()
        .with_context(|| format!("duration {text:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => anyhow::bail!("duration {text:?}: use s, m, h or d"),
    };
    Duration::try_from_secs_f64(secs)
        .map_err(|_| anyhow::anyhow!("duration {text:?}: not a duration this service can wait"))
}

pub fn expand_home(path: &Path) -> PathBuf {
    match path.strip_prefix("~") {
        Ok(rest) => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(rest),
        Err(_) => path.to_owned(),
    }
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut config: Config =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        config.sha256 = veil_wire::record::sha256_hex(text.as_bytes());
        // Every error names the file (a service usually has several configurations).
        config
            .checked()
            .with_context(|| format!("in {}", path.display()))
    }

    /// Paths expanded and every setting checked.
    fn checked(mut self) -> anyhow::Result<Config> {
        let config = &mut self;
        config.store.path = expand_home(&config.store.path);
        config.store.kek_file = expand_home(&config.store.kek_file);
        config.store.ack_key_file = config.store.ack_key_file.as_deref().map(expand_home);
        if let Some(api) = &mut config.api {
            api.cert = api.cert.as_deref().map(expand_home);
            api.key = api.key.as_deref().map(expand_home);
            for (name, tier) in &api.tiers {
                anyhow::ensure!(tier.requests > 0, "api.tiers.{name}: requests must be > 0");
                parse_duration(&tier.window)?;
            }
            anyhow::ensure!(
                api.tiers.contains_key("standard"),
                "api.tiers must define `standard` (the default tier)"
            );
        }
        for value in config
            .audit
            .keep
            .iter()
            .chain([&config.audit.success_interval])
        {
            parse_duration(value)?;
        }
        config.webhooks.policy()?;
        config.replication.keys()?;
        if let Some(backup) = &mut config.backup {
            backup.dir = expand_home(&backup.dir);
            backup.key_file = expand_home(&backup.key_file);
            anyhow::ensure!(
                parse_duration(&backup.every)? >= Duration::from_secs(1),
                "backup.every: at least 1s"
            );
            anyhow::ensure!(backup.keep >= 1, "backup.keep: at least 1");
        }
        config.replicated()?;
        for kind in config.retention.keep.keys() {
            anyhow::ensure!(
                veil_wire::Kind::parse(kind).is_some(),
                "retention: unknown kind {kind:?}"
            );
        }
        for value in config
            .retention
            .keep
            .values()
            .chain([&config.retention.sweep_interval])
        {
            parse_duration(value)?;
        }
        Ok(self)
    }

    /// Retention per kind.
    pub fn retention(&self) -> BTreeMap<veil_wire::Kind, Duration> {
        self.retention
            .keep
            .iter()
            .filter_map(|(k, v)| Some((veil_wire::Kind::parse(k)?, parse_duration(v).ok()?)))
            .collect()
    }

    /// The owned key expressions, checked ([`crate::ownership::parse_owned`]).
    pub fn owned(&self) -> anyhow::Result<Vec<zenoh::key_expr::OwnedKeyExpr>> {
        match (&self.zenoh.subscribe, &self.zenoh.owns) {
            (None, None) if !self.zenoh.replicates.is_empty() => Ok(Vec::new()),
            (Some(_), Some(_)) => anyhow::bail!(
                "zenoh.subscribe and zenoh.owns are both set: keep owns (subscribe is its old name)"
            ),
            (Some(one), None) => crate::ownership::parse_owned(std::slice::from_ref(one))
                .map_err(|e| anyhow::anyhow!("zenoh.subscribe (read as owns): {e}")),
            (None, Some(list)) => crate::ownership::parse_owned(list),
            (None, None) => crate::ownership::parse_owned(&["veil/**".to_owned()]),
        }
    }

    /// The replicated key expressions, checked as `owns` is, and against the owned ones.
    ///
    /// Errors: an entry `owns` would refuse, or one intersecting an owned entry.
    pub fn replicated(&self) -> anyhow::Result<Vec<zenoh::key_expr::OwnedKeyExpr>> {
        if self.zenoh.replicates.is_empty() {
            return Ok(Vec::new());
        }
        let replicated = crate::ownership::parse_owned(&self.zenoh.replicates).map_err(|e| {
            anyhow::anyhow!(
                "{}",
                e.to_string().replace("zenoh.owns", "zenoh.replicates")
            )
        })?;
        for owned in self.owned()? {
            if let Some(r) = replicated.iter().find(|r| r.intersects(&owned)) {
                anyhow::bail!(
                    "zenoh.replicates: {r} intersects the owned {owned}: a service keeps a record as its owner or as a replica, not both"
                );
            }
        }
        Ok(replicated)
    }

    /// [`ZenohConfig::ownership_grace_ms`] with its default for `zenoh` (this service's Zenoh
    /// configuration).
    pub fn ownership_grace(&self, zenoh: &zenoh::Config) -> Duration {
        let behind_routers = zenoh
            .get_json("mode")
            .is_ok_and(|m| m.trim_matches('"') == "client");
        Duration::from_millis(self.zenoh.ownership_grace_ms.unwrap_or(if behind_routers {
            1000
        } else {
            0
        }))
    }

    pub fn zenoh(&self) -> anyhow::Result<zenoh::Config> {
        match &self.zenoh.config {
            Some(p) => zenoh::Config::from_file(p)
                .map_err(|e| anyhow::anyhow!("Zenoh configuration {}: {e}", p.display())),
            None => {
                let mut c = zenoh::Config::default();
                for (k, v) in [
                    ("mode", "\"peer\""),
                    ("listen/endpoints", "[\"tcp/127.0.0.1:7447\"]"),
                    ("scouting/multicast/enabled", "false"),
                ] {
                    c.insert_json5(k, v).map_err(|e| anyhow::anyhow!("{e}"))?;
                }
                Ok(c)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_have_units() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(
            parse_duration("90d").unwrap(),
            Duration::from_secs(90 * 86400)
        );
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert!(parse_duration("5 weeks").is_err());
        // Too long for a Duration: an error, not a panic.
        assert!(parse_duration("18446744073709551615s").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn owns_defaults_to_everything_and_reads_the_old_subscribe_but_not_both() {
        let config = |zenoh: &str| -> Config {
            toml::from_str(&format!(
                "[store]\npath = \"s\"\nkek_file = \"k\"\n[zenoh]\n{zenoh}\n"
            ))
            .unwrap()
        };
        let owned = |zenoh: &str| -> Vec<String> {
            config(zenoh)
                .owned()
                .unwrap()
                .iter()
                .map(|k| k.to_string())
                .collect()
        };
        assert_eq!(owned(""), ["veil/**"]);
        assert_eq!(owned("subscribe = \"veil/acme/**\""), ["veil/acme/**"]);
        assert_eq!(
            owned("owns = [\"veil/acme/**\", \"veil/b/hq/**\"]"),
            ["veil/acme/**", "veil/b/hq/**"]
        );
        let e = config("subscribe = \"veil/a/**\"\nowns = [\"veil/**\"]")
            .owned()
            .unwrap_err()
            .to_string();
        assert!(e.contains("both set"), "{e}");
        let e = config("subscribe = \"**\"")
            .owned()
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("zenoh.subscribe"), "{e}");
    }

    #[test]
    fn a_replica_owns_nothing_unless_told_and_never_what_it_replicates() {
        let config = |zenoh: &str| -> Config {
            toml::from_str(&format!(
                "[store]\npath = \"s\"\nkek_file = \"k\"\n[zenoh]\n{zenoh}\n"
            ))
            .unwrap()
        };
        let c = config("replicates = [\"veil/acme/**\"]");
        assert!(c.owned().unwrap().is_empty());
        assert_eq!(c.replicated().unwrap()[0].as_str(), "veil/acme/**");
        let c = config("owns = [\"veil/globex/**\"]\nreplicates = [\"veil/acme/**\"]");
        assert_eq!(c.owned().unwrap()[0].as_str(), "veil/globex/**");
        let e = config("owns = [\"veil/**\"]\nreplicates = [\"veil/acme/**\"]")
            .replicated()
            .unwrap_err()
            .to_string();
        assert!(e.contains("intersects the owned veil/**"), "{e}");
        let e = config("replicates = [\"veil/acme/*\"]")
            .replicated()
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("zenoh.replicates"), "{e}");
        // No replicates: the owner alone.
        assert!(config("").replicated().unwrap().is_empty());
        // A replica listed twice would leave the second slot waiting for ever.
        let key = veil_wire::DeviceKey::generate().unwrap().public_hex();
        let twice: Config = toml::from_str(&format!(
            "[store]\npath = \"s\"\nkek_file = \"k\"\n[replication]\nreplicas = [\"{key}\", \"{}\"]\n",
            key.to_uppercase()
        ))
        .unwrap();
        let e = twice.replication.keys().unwrap_err().to_string();
        assert!(e.contains("listed twice"), "{e}");
    }
}
