//! `sink-service [--config FILE] COMMAND`: see `sink-service help`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use veil_sink_service::config::Config;
use veil_sink_service::crypto::SecretKey;
use veil_sink_service::store::{Store, pending_kek_path};
use veil_sink_service::{backup, retention, serve, store, summary, verify};

const USAGE: &str = "usage: sink-service [--config FILE] COMMAND
  serve                      ingest, store and serve (until SIGTERM/SIGINT)
  verify                     re-check the whole store (exit 1 on any failure)
  summary                    what is stored, readably, with the integrity status
  export [--key KEYEXPR] [--from TIME] [--to TIME]
                             stored records as JSON lines (default key veil/**)
  keys init                  create the key-encryption key file (mode 0600) if missing
  keys rotate                new key-encryption key; re-wraps the data keys only
  backup --out FILE --key KEYFILE    encrypted backup (KEYFILE created if missing)
  restore --in FILE --key KEYFILE    into an empty store
  sweep                      apply the retention limits now
  api-keys create --tenant T (--role operator|engineer|admin | --scopes a,b) [--name N]
                  [--tier standard] [--expires 2027-01-01T00:00:00Z]
                             a new API key, printed once (store not in use)
  api-keys list --tenant T | api-keys rotate ID --tenant T | api-keys revoke ID --tenant T
  audit [--tenant T] [--after SEQ]   the service's audit log as JSON lines
default config: configs/sink-service.toml";

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn run(args: Vec<String>) -> anyhow::Result<bool> {
    let config_path = flag(&args, "--config")
        .map(PathBuf::from)
        .unwrap_or_else(|| "configs/sink-service.toml".into());
    let positional: Vec<&String> = {
        let mut skip = false;
        args.iter()
            .filter(|a| {
                let keep = !skip && !a.starts_with("--");
                skip = a.starts_with("--");
                keep
            })
            .collect()
    };
    let Some(command) = positional.first().map(|s| s.as_str()) else {
        println!("{USAGE}");
        return Ok(true);
    };
    if command == "help" {
        println!("{USAGE}");
        return Ok(true);
    }
    let config = Config::load(&config_path)?;
    let open = || Store::open(&config.store.path, &config.store.kek_file);
    match (command, positional.get(1).map(|s| s.as_str())) {
        ("serve", _) => serve::serve(&config, Arc::new(open()?))?,
        ("verify", _) => {
            let report = verify::verify(&open()?)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            for e in &report.errors {
                eprintln!("verify: {e}");
            }
            return Ok(report.ok());
        }
        ("summary", _) => print!("{}", summary::summary(&open()?)?),
        ("export", _) => {
            let key = flag(&args, "--key").unwrap_or_else(|| "veil/**".into());
            let mut params = Vec::new();
            for p in ["from", "to"] {
                if let Some(v) = flag(&args, &format!("--{p}")) {
                    params.push(format!("{p}={v}"));
                }
            }
            let range = veil_sink_service::query::parse_range(&params.join(";"))
                .map_err(anyhow::Error::msg)?;
            let ke = zenoh::key_expr::KeyExpr::try_from(key.as_str())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            for (_, bytes) in veil_sink_service::query::history(&open()?, &ke, range)? {
                println!("{}", String::from_utf8_lossy(&bytes));
            }
        }
        ("keys", Some("init")) => {
            if config.store.kek_file.exists() {
                SecretKey::load(&config.store.kek_file)?;
                println!("{} exists", config.store.kek_file.display());
            } else {
                SecretKey::generate()?.save(&config.store.kek_file)?;
                println!("created {} (mode 0600)", config.store.kek_file.display());
            }
        }
        ("keys", Some("rotate")) => {
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
        ("backup", _) => {
            let out = flag(&args, "--out").context("backup needs --out FILE")?;
            let key_path =
                PathBuf::from(flag(&args, "--key").context("backup needs --key KEYFILE")?);
            let key = if key_path.exists() {
                SecretKey::load(&key_path)?
            } else {
                let k = SecretKey::generate()?;
                k.save(&key_path)?;
                k
            };
            let n = backup::backup(&open()?, out.as_ref(), &key)?;
            println!(
                "backed up {n} entries to {out} (key {})",
                key_path.display()
            );
        }
        ("restore", _) => {
            let input = flag(&args, "--in").context("restore needs --in FILE")?;
            let key = SecretKey::load(
                flag(&args, "--key")
                    .context("restore needs --key KEYFILE")?
                    .as_ref(),
            )?;
            let n = backup::restore(&open()?, input.as_ref(), &key)?;
            println!("restored {n} entries into {}", config.store.path.display());
        }
        ("api-keys", Some(action)) => {
            let store = open()?;
            let audit = veil_sink_service::audit::AuditLog::open(&store)?;
            let id = positional.get(2).map(|s| s.as_str());
            api_keys(&store, &audit, action, id, &args)?;
        }
        ("audit", _) => {
            let store = open()?;
            let after = flag(&args, "--after")
                .map(|a| a.parse::<u64>())
                .transpose()
                .context("--after takes a sequence number")?
                .unwrap_or(0);
            let tenant = flag(&args, "--tenant");
            let mut after = after;
            loop {
                let batch =
                    veil_sink_service::audit::entries(&store, after, 1000, tenant.as_deref())?;
                let Some(last) = batch.last() else { break };
                after = last.seq;
                for e in &batch {
                    println!("{}", serde_json::to_string(e)?);
                }
            }
        }
        ("sweep", _) => {
            let n = retention::sweep(&open()?, &config.retention(), store::now_ns())?;
            println!("deleted {n} records");
        }
        _ => bail!("unknown command {command:?}\n{USAGE}"),
    }
    Ok(true)
}

/// `api-keys create|list|rotate|revoke` on a store no service holds, logged as actor `cli`.
fn api_keys(
    store: &Store,
    audit: &veil_sink_service::audit::AuditLog,
    action: &str,
    id: Option<&str>,
    args: &[String],
) -> anyhow::Result<()> {
    use veil_sink_service::api::keys::{KeyStore, NewKey, Role, Scope};
    let keys = KeyStore::open(store)?;
    let tenant = flag(args, "--tenant").context("api-keys needs --tenant")?;
    let now = store::now_ns();
    let log = |action: &str, detail: serde_json::Value| {
        audit.note(
            store,
            veil_sink_service::audit::Action {
                actor: "cli",
                tenant: Some(&tenant),
                source_ip: None,
                action,
                outcome: "success",
                detail,
            },
        )
    };
    let needs_id = || id.context("which key? give its id after the action");
    match action {
        "create" => {
            let role = flag(args, "--role")
                .map(|r| {
                    Role::parse(&r)
                        .with_context(|| format!("role {r:?}: operator, engineer or admin"))
                })
                .transpose()?;
            let scopes = flag(args, "--scopes")
                .map(|list| {
                    list.split(',')
                        .map(|s| {
                            Scope::parse(s.trim()).with_context(|| format!("unknown scope {s:?}"))
                        })
                        .collect::<anyhow::Result<_>>()
                })
                .transpose()?;
            let new = NewKey {
                tenant: tenant.clone(),
                name: flag(args, "--name").unwrap_or_default(),
                role,
                scopes,
                tier: flag(args, "--tier").unwrap_or_else(|| "standard".into()),
                expires: flag(args, "--expires"),
            };
            let (key, token) = keys.create(store, new, now)?;
            log(
                "key.create",
                serde_json::json!({"key": key.id, "scopes": key.scopes, "tier": key.tier}),
            );
            println!("{token}");
            eprintln!(
                "created key {} for tenant {tenant} with scopes {:?}: the line above is shown only once",
                key.id,
                key.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>()
            );
        }
        "list" => {
            for k in keys.list(&tenant) {
                println!("{}", k.public());
            }
        }
        "rotate" => {
            let id = needs_id()?;
            let (_, token) = keys
                .rotate(store, &tenant, id, now)?
                .with_context(|| format!("tenant {tenant} has no key {id}"))?;
            log("key.rotate", serde_json::json!({"key": id}));
            println!("{token}");
            eprintln!(
                "key {id} has a new secret (the line above, shown only once); the old one no longer works"
            );
        }
        "revoke" => {
            let id = needs_id()?;
            keys.revoke(store, &tenant, id, now)?
                .with_context(|| format!("tenant {tenant} has no key {id}"))?;
            log("key.revoke", serde_json::json!({"key": id}));
            println!("revoked {id}");
        }
        other => bail!("api-keys {other}: create, list, rotate or revoke"),
    }
    store.flush()
}

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("sink-service: {e:#}");
            ExitCode::from(2)
        }
    }
}
