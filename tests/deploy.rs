// SPDX-License-Identifier: MIT OR Apache-2.0
//! `deploy/`: the systemd units pass `systemd-analyze verify` without a word, keep their
//! hardening (`systemd-analyze security` offline exposure ≤ 2.0 of 10), and the sysusers file
//! creates the dedicated user. The units name installed paths (`/usr/local/bin/…`), which a test
//! machine does not have, so the copies verified here point at the binaries this build made
//! (the only change); a broken copy shows the check speaks up.

use std::path::{Path, PathBuf};
use std::process::Command;

const UNITS: [&str; 3] = [
    "zenohd.service",
    "veil-sink.service",
    "veil-pipeline@.service",
];

/// The units with `/usr/local/bin/` pointing at `bin`, written into `dir`.
fn units_in(dir: &Path, bin: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for unit in UNITS {
        let text = std::fs::read_to_string(veil_e2e::repo_path(&format!("deploy/systemd/{unit}")))
            .unwrap()
            .replace("/usr/local/bin/", &format!("{}/", bin.display()));
        // A template is verified as an instance of it.
        let name = unit.replace("@.", "@audience.");
        std::fs::write(dir.join(&name), text).unwrap();
        out.push(dir.join(name));
    }
    out
}

/// `systemd-analyze ARGS`: success and everything it printed.
fn analyze(args: &[&str], unit: &Path) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .args(args)
        .arg(unit)
        .current_dir(unit.parent().unwrap())
        .output()
        .expect("systemd-analyze (Debian's systemd package; scripts/setup.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_systemd_units_verify_and_stay_hardened() {
    let dir = std::env::temp_dir().join(format!("veil-deploy-{}", std::process::id()));
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (name, target) in [
        ("zenohd", veil_testkit::mesh::zenohd()),
        (
            "sink-service",
            PathBuf::from(env!("CARGO_BIN_EXE_veil-sink-service")),
        ),
    ] {
        let link = bin.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(target, link).unwrap();
    }
    for unit in units_in(&dir, &bin) {
        let (ok, text) = analyze(&["verify"], &unit);
        assert!(ok && text.trim().is_empty(), "{}: {text}", unit.display());
        let (ok, text) = analyze(&["security", "--offline=true"], &unit);
        assert!(ok, "{text}");
        let exposure: f64 = text
            .lines()
            .find_map(|l| l.split("Overall exposure level for ").nth(1))
            .and_then(|rest| rest.split(": ").nth(1))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no exposure level in {text}"));
        eprintln!("{}: exposure {exposure}", unit.display());
        assert!(exposure <= 2.0, "{}: exposure {exposure}", unit.display());
        let body = std::fs::read_to_string(&unit).unwrap();
        for line in [
            "User=veil",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "ConfigurationDirectory=veil",
            "CapabilityBoundingSet=\n",
        ] {
            assert!(body.contains(line), "{}: no {line:?}", unit.display());
        }
    }

    // Control: the same check on a damaged copy is not silent, and weaker hardening shows.
    let damaged = dir.join("damaged.service");
    let good = std::fs::read_to_string(dir.join("veil-sink.service")).unwrap();
    std::fs::write(
        &damaged,
        good.replace("ProtectSystem=strict", "ProtectSystem=strickt"),
    )
    .unwrap();
    let (_, text) = analyze(&["verify"], &damaged);
    assert!(text.contains("strickt"), "{text}");
    let open = dir.join("open.service");
    let unhardened: String = good
        .lines()
        .filter(|l| {
            !l.starts_with("Protect") && !l.starts_with("Private") && !l.contains("SystemCall")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&open, unhardened).unwrap();
    let (_, text) = analyze(&["security", "--offline=true"], &open);
    assert!(
        !text.contains("exposure level for open.service: 1."),
        "{text}"
    );

    // The pipeline unit's command line, as systemd hands it to the shell ($$ → $, %i → the
    // instance), runs a pipeline file with a variable and a comment line.
    let unit =
        std::fs::read_to_string(veil_e2e::repo_path("deploy/systemd/veil-pipeline@.service"))
            .unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart=/usr/bin/sh -c '"))
        .and_then(|l| l.strip_suffix('\''))
        .expect("ExecStart=/usr/bin/sh -c '…'");
    let pipelines = dir.join("pipelines");
    std::fs::create_dir_all(&pipelines).unwrap();
    std::fs::write(
        pipelines.join("smoke.pipeline"),
        "# a comment line\nvideotestsrc num-buffers=${FRAMES} ! queue !\nvideoconvert ! fakesink\n",
    )
    .unwrap();
    let command = exec
        .replace("$$", "$")
        .replace("%i", "smoke")
        .replace("/etc/veil/pipelines", &pipelines.display().to_string());
    // Under strace: every system call it makes must be one the unit's filter lets through
    // (a filter that denies one GLib makes for each thread killed every pipeline once).
    let calls = dir.join("syscalls.txt");
    let out = Command::new("strace")
        .args(["-f", "-c", "-o"])
        .arg(&calls)
        .args(["/usr/bin/sh", "-c", &command])
        .env("FRAMES", "30")
        .output()
        .expect("strace (scripts/setup.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("Got EOS"),
        "{command}: {text}"
    );
    let used = syscalls_in_summary(&std::fs::read_to_string(&calls).unwrap());
    assert!(
        used.contains("clone") || used.contains("clone3"),
        "{used:?}"
    );
    let denied: Vec<&String> = used.iter().filter(|c| !filter_allows(&unit, c)).collect();
    assert!(
        denied.is_empty(),
        "the pipeline unit's SystemCallFilter denies {denied:?}"
    );
    // Control: the filter this unit had before denies a call the pipeline makes.
    let strict = unit.replace(
        "SystemCallFilter=~@privileged\n",
        "SystemCallFilter=~@privileged @resources\n",
    );
    let strictly_denied: Vec<&String> =
        used.iter().filter(|c| !filter_allows(&strict, c)).collect();
    assert!(!strictly_denied.is_empty(), "{used:?}");
    eprintln!(
        "{} system calls, all allowed; ~@resources would deny {strictly_denied:?}",
        used.len()
    );

    // The dedicated user, as systemd-sysusers would create it (dry run on a copy of /etc).
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    for f in ["passwd", "group"] {
        std::fs::copy(format!("/etc/{f}"), root.join("etc").join(f)).unwrap();
    }
    let out = Command::new("systemd-sysusers")
        .arg(format!("--root={}", root.display()))
        .arg("--dry-run")
        .arg(veil_e2e::repo_path("deploy/sysusers.d/veil.conf"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Creating user 'veil'"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The system call names in `strace -c`'s summary table.
fn syscalls_in_summary(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('%') && !l.starts_with('-'))
        .filter_map(|l| l.split_whitespace().last())
        .filter(|name| {
            *name != "total"
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

/// The system calls of a set (`@name`, nested sets expanded), as `systemd-analyze
/// syscall-filter` lists them.
fn syscall_set(name: &str) -> std::collections::BTreeSet<String> {
    let out = Command::new("systemd-analyze")
        .args(["syscall-filter", name])
        .output()
        .unwrap();
    let mut set = std::collections::BTreeSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines().skip(1) {
        let item = line.trim();
        if item.is_empty() || item.starts_with('#') {
            continue;
        }
        if item.starts_with('@') {
            set.extend(syscall_set(item));
        } else {
            set.insert(item.to_owned());
        }
    }
    set
}

/// Whether a unit's `SystemCallFilter=` lines (an allow list, then `~` deny lists) let `call`
/// through.
fn filter_allows(unit: &str, call: &str) -> bool {
    let mut allowed = true;
    for value in unit
        .lines()
        .filter_map(|l| l.strip_prefix("SystemCallFilter="))
    {
        let (deny, names) = match value.strip_prefix('~') {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        let listed = names.split_whitespace().any(|n| {
            if n.starts_with('@') {
                syscall_set(n).contains(call)
            } else {
                n == call
            }
        });
        if deny == listed {
            allowed = false;
        }
    }
    allowed
}
