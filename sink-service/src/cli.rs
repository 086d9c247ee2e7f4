// SPDX-License-Identifier: MIT OR Apache-2.0
//! The `sink-service` command line (clap) and its logging (tracing, to standard error; the
//! commands' own output goes to standard output).
//!
//! Exit codes: 0 done, 1 `verify` found a failure, 2 anything else went wrong (a bad argument,
//! an unreadable configuration, a store in use), with the reason on standard error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::api::keys::{KeyStore, NewKey, Role, Scope};
use crate::audit::{Action, AuditLog};
use crate::config::Config;
use crate::crypto::SecretKey;
use crate::stations::Stations;
use crate::store::{Store, pending_kek_path};
use crate::{backup, query, retention, serve, store, summary, verify};

#[derive(Parser, Debug)]
#[command(
    name = "sink-service",
    version,
    about = "Veil's sink service: verifies, encrypts and stores the devices' records, and serves them over Zenoh and HTTPS",
    after_help = "Logs go to standard error; RUST_LOG-style filters in RUST_LOG or --log (default: info,zenoh=warn)."
)]
pub struct Cli {
    /// The service's configuration.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        default_value = "configs/sink-service.toml"
    )]
    pub config: PathBuf,
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Log filter (RUST_LOG syntax), e.g. `debug` or `info,veil_sink_service::ingest=trace`.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per event (for log collectors).
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Ingest, store and serve until SIGTERM or SIGINT (Zenoh; with [api], HTTPS too).
    Serve,
    /// Re-check every chain and signature of the store (exit 1 on any failure).
    Verify,
    /// What is stored, readably, with the integrity status.
    Summary,
    /// Stored records as JSON lines.
    Export(ExportArgs),
    /// The store's keys: the key-encryption key and the acknowledgement signing key.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// An encrypted backup of the store (the backup key is created if missing).
    Backup {
        /// Where the backup goes.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The backup's own key file.
        #[arg(long, value_name = "KEYFILE")]
        key: PathBuf,
    },
    /// Restores a backup into an empty store.
    Restore {
        /// The backup file.
        #[arg(long = "in", value_name = "FILE")]
        input: PathBuf,
        /// The backup's key file.
        #[arg(long, value_name = "KEYFILE")]
        key: PathBuf,
    },
    /// Applies the retention limits now.
    Sweep,
    /// API keys of a tenant (on a store no service holds; logged as actor `cli`).
    #[command(subcommand)]
    ApiKeys(ApiKeysCommand),
    /// Enrolled devices: the keys that sign each device's checkpoints (on a store no service
    /// holds; every change is in the audit log).
    #[command(subcommand)]
    Devices(DevicesCommand),
    /// The service's own audit log as JSON lines.
    Audit {
        /// Only entries about this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Only entries after this sequence number.
        #[arg(long, default_value_t = 0, value_name = "SEQ")]
        after: u64,
    },
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Key expression of the records to export.
    #[arg(long, default_value = "veil/**", value_name = "KEYEXPR")]
    pub key: String,
    /// Capture time from (RFC 3339 or ns since the epoch).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Capture time to, exclusive.
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
}

/// A device's public key: given, or read from its key file.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct DeviceKeyArg {
    /// The device's Ed25519 public key, 64 hex digits (its checkpoints show it too).
    #[arg(long, value_name = "HEX")]
    pub public_key: Option<String>,
    /// The device's key file (`auditsink key-file`).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// The device's `auditsink spool-dir` on this machine: its key file where auditsink keeps
    /// it by default.
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
}

/// Whether a missing key file may be created.
#[derive(Args, Debug)]
pub struct CreateKeyArg {
    /// Create the key file (mode 0600) when it is missing: a device provisioned on this
    /// machine. Without it a missing file is an error (a typo enrolls nothing).
    #[arg(long)]
    pub create: bool,
}

impl DeviceKeyArg {
    fn public_hex(&self, tenant: &str, device: &str, create: bool) -> anyhow::Result<String> {
        let file = match (&self.public_key, &self.key_file, &self.spool_dir) {
            (Some(k), _, _) => return Ok(k.clone()),
            (None, Some(path), _) => path.clone(),
            (None, None, Some(dir)) => {
                veil_wire::spool_dirs::device_dir(dir, tenant, device).join("device.key")
            }
            (None, None, None) => anyhow::bail!("give --public-key, --key-file or --spool-dir"),
        };
        anyhow::ensure!(
            create || file.is_file(),
            "no device key file at {}: give the device's key file, or --create to provision one here",
            file.display()
        );
        Ok(veil_wire::DeviceKey::load_or_create(&file)
            .with_context(|| format!("the device key file {}", file.display()))?
            .public_hex())
    }
}

#[derive(Subcommand, Debug)]
pub enum DevicesCommand {
    /// Enrolls a device: only this key will sign its valid checkpoints.
    Enroll {
        #[arg(long)]
        tenant: String,
        /// The only site its records may name (default: any).
        #[arg(long)]
        site: Option<String>,
        #[arg(long)]
        device: String,
        #[command(flatten)]
        key: DeviceKeyArg,
        #[command(flatten)]
        create: CreateKeyArg,
    },
    /// The tenant's enrolled devices as JSON lines.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Refuses the device's checkpoints from now on (what it stored stays).
    Revoke {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        device: String,
    },
    /// A new key for a device (lost, compromised or replaced); the old key is retired, the
    /// generation goes up; re-admits a revoked device.
    Rekey {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        device: String,
        #[command(flatten)]
        key: DeviceKeyArg,
        #[command(flatten)]
        create: CreateKeyArg,
        /// The device lost its spool and starts its chains over at sequence number 1: they
        /// continue in a new chain epoch, beside the stored ones (without: the stored chains go
        /// on under the new key).
        #[arg(long)]
        new_chain: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Creates the key-encryption key and the acknowledgement signing key (`ack.key` beside
    /// it; both mode 0600) where they are missing, and prints the acknowledgement key's public half.
    Init,
    /// A new key-encryption key; re-wraps the data keys only.
    Rotate,
    /// The public key acknowledgements are signed with (hex), for `auditsink store-public-key`.
    Public,
    /// Replaces the acknowledgement key in two steps, losing nothing: the first run creates
    /// the next key (`<ack key>.next`) and prints it, to be given to every device beside the
    /// current one (`store-public-key=CURRENT,NEXT`); the second makes it the current key,
    /// used from the next `serve` start.
    RotateAck,
}

#[derive(Subcommand, Debug)]
pub enum ApiKeysCommand {
    /// A new key, printed once.
    Create {
        #[arg(long)]
        tenant: String,
        /// operator, engineer or admin.
        #[arg(long, group = "grant", required_unless_present = "scopes")]
        role: Option<String>,
        /// Explicit scopes instead of a role, comma-separated (read, write, analytics, export,
        /// webhooks, images, admin).
        #[arg(long, group = "grant", value_delimiter = ',')]
        scopes: Option<Vec<String>>,
        /// A name for people.
        #[arg(long, default_value = "")]
        name: String,
        /// Rate-limit tier ([api.tiers.NAME]).
        #[arg(long, default_value = "standard")]
        tier: String,
        /// Expiry (RFC 3339).
        #[arg(long, value_name = "TIME")]
        expires: Option<String>,
        /// Limit the key to this site (repeat or comma-separate for several; default: all).
        #[arg(long = "site", value_name = "SITE", value_delimiter = ',')]
        sites: Vec<String>,
        /// Limit the key to this device (repeatable; default: all).
        #[arg(long = "device", value_name = "DEVICE", value_delimiter = ',')]
        devices: Vec<String>,
        /// Limit the key to this stream (repeatable; default: all).
        #[arg(long = "stream", value_name = "STREAM", value_delimiter = ',')]
        streams: Vec<String>,
    },
    /// One key's stored form (its secret's hash, never the secret), for `import` into another
    /// store of the tenant's sites (docs/deploy.md).
    Export {
        id: String,
        #[arg(long)]
        tenant: String,
    },
    /// A key exported by another store (a file, or - for standard input): the same credential
    /// then works here too. Import again after a revocation or rotation there.
    Import { file: PathBuf },
    /// The tenant's keys (without secrets).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// A new secret for a key; the old one stops working at once.
    Rotate {
        /// The key's id.
        id: String,
        #[arg(long)]
        tenant: String,
    },
    /// Revokes a key.
    Revoke {
        /// The key's id.
        id: String,
        #[arg(long)]
        tenant: String,
    },
}

/// Installs the tracing subscriber: to standard error, human or JSON lines, filtered by
/// `--log`, else `RUST_LOG`, else `info,zenoh=warn`.
pub fn init_logging(format: LogFormat, filter: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = filter
        .map(EnvFilter::new)
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info,zenoh=warn"));
    // Colours only for a terminal: a log file or collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // A second initialisation (tests calling main twice) keeps the first subscriber.
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// The acknowledgement signing key (created, mode 0600, on first use).
fn ack_key(config: &Config) -> anyhow::Result<veil_wire::DeviceKey> {
    let path = config.store.ack_key_path();
    veil_wire::DeviceKey::load_or_create(&path)
        .with_context(|| format!("the acknowledgement key {}", path.display()))
}

/// The acknowledgement key that exists: printing or rotating never creates one (a new key
/// would silently disown every device set up with the old one).
fn existing_ack_key(config: &Config) -> anyhow::Result<veil_wire::DeviceKey> {
    let path = config.store.ack_key_path();
    anyhow::ensure!(
        path.exists(),
        "no acknowledgement key at {}: create it with `sink-service keys init` (same --config)",
        path.display()
    );
    ack_key(config)
}

/// Writes one line of a listing; `false` when the reader has gone (`| head`), which ends the
/// listing quietly instead of failing it.
fn print_line(out: &mut impl std::io::Write, line: &str) -> anyhow::Result<bool> {
    match writeln!(out, "{line}") {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Parses the arguments, runs the command, and maps the outcome to the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, cli.log.as_deref());
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("sink-service: {e:#}");
            if e.is::<crate::ownership::OwnershipConflict>() {
                ExitCode::from(crate::ownership::OwnershipConflict::EXIT_CODE)
            } else {
                ExitCode::from(2)
            }
        }
    }
}

/// Runs one command; `Ok(false)` when `verify` found failures.
pub fn run(cli: Cli) -> anyhow::Result<bool> {
    let Some(command) = cli.command else {
        eprint!("{}", Cli::command().render_help());
        anyhow::bail!("no command given");
    };
    let config = Config::load(&cli.config)?;
    let open = || Store::open(&config.store.path, &config.store.kek_file);
    match command {
        Command::Serve => serve::serve(&config, Arc::new(open()?), |ready| println!("{ready}"))?,
        Command::Verify => {
            let report = verify::verify(&open()?)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            for e in &report.errors {
                tracing::error!("verify: {e}");
            }
            return Ok(report.ok());
        }
        Command::Summary => print!("{}", summary::summary(&open()?)?),
        Command::Export(args) => {
            let mut params = Vec::new();
            for (p, v) in [("from", &args.from), ("to", &args.to)] {
                if let Some(v) = v {
                    params.push(format!("{p}={v}"));
                }
            }
            let range = query::parse_range(&params.join(";")).map_err(anyhow::Error::msg)?;
            let ke = zenoh::key_expr::KeyExpr::try_from(args.key.as_str())
                .map_err(|e| anyhow::anyhow!("--key {}: {e}", args.key))?;
            let mut out = std::io::stdout().lock();
            for (_, bytes) in query::history(&open()?, &ke, range, None, &|_, _, _, _| true)? {
                if !print_line(&mut out, &String::from_utf8_lossy(&bytes))? {
                    break;
                }
            }
        }
        Command::Keys(KeysCommand::Init) => {
            if config.store.kek_file.exists() {
                SecretKey::load(&config.store.kek_file)?;
                println!("{} exists", config.store.kek_file.display());
            } else {
                SecretKey::generate()?.save(&config.store.kek_file)?;
                println!("created {} (mode 0600)", config.store.kek_file.display());
            }
            let ack_key = ack_key(&config)?;
            println!(
                "acknowledgement key {} (public key {}: give it to devices as auditsink store-public-key)",
                config.store.ack_key_path().display(),
                ack_key.public_hex()
            );
        }
        Command::Keys(KeysCommand::Public) => {
            println!("{}", existing_ack_key(&config)?.public_hex())
        }
        Command::Keys(KeysCommand::RotateAck) => {
            // Not while a service signs with the current key: it would go on signing with a key
            // no longer on disk until restarted (opening the store says whether one holds it).
            drop(open()?);
            let old = existing_ack_key(&config)?.public_hex();
            let current = config.store.ack_key_path();
            let mut next = current.clone().into_os_string();
            next.push(".next");
            let next = PathBuf::from(next);
            let switching = next.exists();
            let key = veil_wire::DeviceKey::load_or_create(&next)
                .with_context(|| format!("the next acknowledgement key {}", next.display()))?;
            println!("{}", key.public_hex());
            if switching {
                std::fs::rename(&next, &current).with_context(|| {
                    format!("moving {} to {}", next.display(), current.display())
                })?;
                eprintln!(
                    "step 2 of 2: acknowledgements are signed with the key above from the next \
                     `serve` start (restart it now); then devices may drop the old key {old}"
                );
            } else {
                eprintln!(
                    "step 1 of 2: the next acknowledgement key is above ({}); give every device \
                     both keys, store-public-key={old},{}, then run `keys rotate-ack` again",
                    next.display(),
                    key.public_hex()
                );
            }
        }
        Command::Keys(KeysCommand::Rotate) => {
            let store = open()?;
            let pending = pending_kek_path(&config.store.kek_file);
            let _ = std::fs::remove_file(&pending);
            let new = SecretKey::generate()?;
            new.save(&pending)?;
            let n = store.rewrap(&new)?;
            std::fs::rename(&pending, &config.store.kek_file)?;
            println!(
                "re-wrapped {n} data keys under a new key-encryption key (fingerprint {})",
                new.fingerprint()
            );
        }
        Command::Backup { out, key } => {
            let backup_key = backup::load_or_create_key(&key)?;
            let n = backup::backup(&open()?, &out, &backup_key)?;
            println!(
                "backed up {n} entries to {} (key {})",
                out.display(),
                key.display()
            );
        }
        Command::Restore { input, key } => {
            let key = SecretKey::load(&key)?;
            let n = backup::restore(&open()?, &input, &key)?;
            println!("restored {n} entries into {}", config.store.path.display());
        }
        Command::ApiKeys(action) => {
            let store = open()?;
            let audit = AuditLog::open(&store)?;
            api_keys(&store, &audit, &config, action)?;
        }
        Command::Devices(action) => {
            let store = open()?;
            let audit = AuditLog::open(&store)?;
            enrolled_devices(&store, &audit, action)?;
        }
        Command::Audit { tenant, after } => {
            let store = open()?;
            let mut after = after;
            let mut out = std::io::stdout().lock();
            'pages: loop {
                let batch = crate::audit::entries(&store, after, 1000, tenant.as_deref())?;
                let Some(last) = batch.last() else { break };
                after = last.seq;
                for e in &batch {
                    if !print_line(&mut out, &serde_json::to_string(e)?)? {
                        break 'pages;
                    }
                }
            }
        }
        Command::Sweep => {
            let n = retention::sweep(&open()?, &config.retention(), store::now_ns())?;
            println!("deleted {n} records");
        }
    }
    Ok(true)
}

/// `api-keys create|list|rotate|revoke`, logged in the audit log as actor `cli`.
/// `devices enroll|list|revoke|rekey`, each change in the audit log (actor `cli`).
fn enrolled_devices(
    store: &Store,
    audit: &AuditLog,
    command: DevicesCommand,
) -> anyhow::Result<()> {
    use crate::devices;
    let now = store::now_ns();
    let log = |e: &devices::Enrollment, action: &str| {
        audit.record(
            store,
            Action {
                actor: "cli",
                tenant: Some(&e.tenant),
                source_ip: None,
                action,
                outcome: "success",
                detail: serde_json::json!({"device": e.device, "site": e.site,
                    "public_key": e.public_key, "generation": e.generation,
                    "chain_epoch": e.chain_epoch}),
            },
        )?;
        store.flush()
    };
    match command {
        DevicesCommand::Enroll {
            tenant,
            site,
            device,
            key,
            create,
        } => {
            // Refused before any key file is made: bad names, a device already enrolled.
            veil_wire::names::check_name("tenant", &tenant)?;
            veil_wire::names::check_name("device", &device)?;
            if let Some(site) = &site {
                veil_wire::names::check_name("site", site)?;
            }
            anyhow::ensure!(
                devices::get(store, &tenant, &device)?.is_none(),
                "{tenant}/{device} is already enrolled: use `devices rekey` for a new key"
            );
            let e = devices::enroll(
                store,
                &tenant,
                &device,
                site.as_deref(),
                &key.public_hex(&tenant, &device, create.create)?,
                now,
            )?;
            log(&e, "device.enroll")?;
            eprintln!("enrolled {tenant}/{device} with key {}", e.public_key);
        }
        DevicesCommand::List { tenant } => {
            let mut out = std::io::stdout().lock();
            for e in devices::list(store, &tenant)? {
                if !print_line(&mut out, &e.public().to_string())? {
                    break;
                }
            }
        }
        DevicesCommand::Revoke { tenant, device } => {
            let e = devices::revoke(store, &tenant, &device, now)?;
            log(&e, "device.revoke")?;
            eprintln!("revoked {tenant}/{device}: its checkpoints are refused from now on");
        }
        DevicesCommand::Rekey {
            tenant,
            device,
            key,
            create,
            new_chain,
        } => {
            anyhow::ensure!(
                devices::get(store, &tenant, &device)?.is_some(),
                "{tenant}/{device} is not enrolled: use `devices enroll`"
            );
            let public = key.public_hex(&tenant, &device, create.create)?;
            let e = devices::rekey(store, &tenant, &device, &public, new_chain, now)?;
            log(&e, "device.rekey")?;
            eprintln!(
                "re-keyed {tenant}/{device}: generation {}, chain epoch {}, key {}",
                e.generation, e.chain_epoch, e.public_key
            );
        }
    }
    Ok(())
}

fn api_keys(
    store: &Store,
    audit: &AuditLog,
    config: &Config,
    command: ApiKeysCommand,
) -> anyhow::Result<()> {
    let keys = KeyStore::open(store)?;
    let now = store::now_ns();
    let log = |tenant: &str, action: &str, detail: serde_json::Value| {
        audit.note(
            store,
            Action {
                actor: "cli",
                tenant: Some(tenant),
                source_ip: None,
                action,
                outcome: "success",
                detail,
            },
        )
    };
    match command {
        ApiKeysCommand::Create {
            tenant,
            role,
            scopes,
            name,
            tier,
            expires,
            sites,
            devices,
            streams,
        } => {
            let role = role
                .map(|r| {
                    Role::parse(&r)
                        .with_context(|| format!("role {r:?}: operator, engineer or admin"))
                })
                .transpose()?;
            let scopes = scopes
                .map(|list| {
                    list.iter()
                        .map(|s| {
                            Scope::parse(s.trim()).with_context(|| format!("unknown scope {s:?}"))
                        })
                        .collect::<anyhow::Result<_>>()
                })
                .transpose()?;
            let tiers = config.api.clone().unwrap_or_default().tiers;
            anyhow::ensure!(
                tiers.contains_key(&tier),
                "tier {tier:?} is not configured ([api.tiers.NAME]; configured: {})",
                tiers.keys().cloned().collect::<Vec<_>>().join(", ")
            );
            // A key born expired is a mistake (a date in the past), not a key anyone wants.
            if let Some(e) = &expires
                && veil_wire::time::parse_time(e).is_some_and(|t| t <= now)
            {
                anyhow::bail!("--expires {e} is in the past");
            }
            let new = NewKey {
                tenant: tenant.clone(),
                name,
                role,
                scopes,
                tier,
                expires,
                stations: Stations::new(&sites, &devices, &streams)?,
            };
            let (key, token) = keys.create(store, new, now)?;
            log(
                &tenant,
                "key.create",
                serde_json::json!({"key": key.id, "scopes": key.scopes, "tier": key.tier,
                                   "stations": key.stations.public()}),
            );
            println!("{token}");
            let limited = if key.stations.is_whole_tenant() {
                "all its stations".to_owned()
            } else {
                format!("only {}", key.stations.public())
            };
            eprintln!(
                "created key {} for tenant {tenant} with scopes {:?}, seeing {limited}: the line above is shown only once",
                key.id,
                key.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>()
            );
        }
        ApiKeysCommand::Export { id, tenant } => {
            let key = keys
                .get(&tenant, &id)
                .with_context(|| format!("tenant {tenant} has no key {id}"))?;
            log(&tenant, "key.export", serde_json::json!({"key": id}));
            println!("{}", serde_json::to_string(&key)?);
        }
        ApiKeysCommand::Import { file } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading standard input")?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let key: crate::api::keys::ApiKey = serde_json::from_str(&text)
                .with_context(|| format!("{}: not an exported key", file.display()))?;
            let (id, tenant) = (key.id.clone(), key.tenant.clone());
            let detail = serde_json::json!({"key": id, "scopes": key.scopes, "tier": key.tier,
                "stations": key.stations.public(), "revoked": key.revoked, "rotated": key.rotated});
            keys.import(store, key)
                .with_context(|| format!("{}", file.display()))?;
            log(&tenant, "key.import", detail);
            println!("imported {id} for tenant {tenant}");
        }
        ApiKeysCommand::List { tenant } => {
            for k in keys.list(&tenant) {
                println!("{}", k.public());
            }
        }
        ApiKeysCommand::Rotate { id, tenant } => {
            let (_, token) = keys
                .rotate(store, &tenant, &id, now)?
                .with_context(|| format!("tenant {tenant} has no key {id}"))?;
            log(&tenant, "key.rotate", serde_json::json!({"key": id}));
            println!("{token}");
            eprintln!(
                "key {id} has a new secret (the line above, shown only once); the old one no longer works"
            );
        }
        ApiKeysCommand::Revoke { id, tenant } => {
            keys.revoke(store, &tenant, &id, now)?
                .with_context(|| format!("tenant {tenant} has no key {id}"))?;
            log(&tenant, "key.revoke", serde_json::json!({"key": id}));
            println!("revoked {id}");
        }
    }
    store.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("sink-service").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_before_or_after_the_command() {
        let a = parse(&["--config", "x.toml", "verify"]).unwrap();
        let b = parse(&["verify", "--config", "x.toml"]).unwrap();
        assert_eq!(a.config, PathBuf::from("x.toml"));
        assert_eq!(b.config, PathBuf::from("x.toml"));
        assert!(matches!(a.command, Some(Command::Verify)));
        let k = parse(&["api-keys", "rotate", "0123", "--tenant", "acme"]).unwrap();
        assert!(matches!(
            k.command,
            Some(Command::ApiKeys(ApiKeysCommand::Rotate { ref id, ref tenant })) if id == "0123" && tenant == "acme"
        ));
    }

    #[test]
    fn a_key_gets_a_role_or_scopes_not_both_nor_neither() {
        assert!(parse(&["api-keys", "create", "--tenant", "a", "--role", "operator"]).is_ok());
        let s = parse(&[
            "api-keys",
            "create",
            "--tenant",
            "a",
            "--scopes",
            "read,export",
        ])
        .unwrap();
        assert!(matches!(
            s.command,
            Some(Command::ApiKeys(ApiKeysCommand::Create { scopes: Some(ref v), .. })) if v == &["read", "export"]
        ));
        assert!(
            parse(&[
                "api-keys", "create", "--tenant", "a", "--role", "admin", "--scopes", "read"
            ])
            .is_err()
        );
        assert!(parse(&["api-keys", "create", "--tenant", "a"]).is_err());
        assert!(parse(&["frobnicate"]).is_err());
    }
}
