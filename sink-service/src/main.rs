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
        ("sweep", _) => {
            let n = retention::sweep(&open()?, &config.retention(), store::now_ns())?;
            println!("deleted {n} records");
        }
        _ => bail!("unknown command {command:?}\n{USAGE}"),
    }
    Ok(true)
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
