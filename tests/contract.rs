// SPDX-License-Identifier: MIT OR Apache-2.0
//! The event contract is written once: every event name and dwell band label appears as a
//! string literal only in `plugins/veil-wire/src/event.rs`, and in no script; everything else
//! names them through `veil_wire::event`. (Prose — comments, property descriptions, docs, the
//! JSON Schema — may mention them.)

use std::path::PathBuf;

use veil_wire::event::{DwellBand, EventKind};

const HOME: &str = "plugins/veil-wire/src/event.rs";

fn repo() -> PathBuf {
    veil_e2e::repository_root()
}

/// The sources and scripts of the repository.
fn sources() -> Vec<PathBuf> {
    veil_e2e::repository_files()
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.ends_with(".rs") || name.ends_with(".sh") || name.ends_with(".py")
        })
        .collect()
}

/// The string literals of one line of Rust (escaped quotes inside are not literal ends).
fn literals(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    let mut escaped = false;
    for c in code.chars() {
        match (&mut current, c) {
            (Some(s), _) if escaped => {
                s.push(c);
                escaped = false;
            }
            (Some(_), '\\') => escaped = true,
            (Some(s), '"') => {
                out.push(std::mem::take(s));
                current = None;
            }
            (Some(s), c) => s.push(c),
            (None, '"') => current = Some(String::new()),
            (None, _) => {}
        }
    }
    out
}

fn words(line: &str) -> Vec<&str> {
    line.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '+'))
        .filter(|w| !w.is_empty())
        .collect()
}

#[test]
fn event_names_and_dwell_bands_are_written_once() {
    let root = repo();
    let names: Vec<&str> = EventKind::ALL
        .iter()
        .map(|k| k.name())
        .chain(DwellBand::ALL.iter().map(|b| b.label()))
        .collect();
    let all = sources();
    assert!(all.len() > 50, "only {} files found", all.len());
    let mut found_at_home = 0;
    let mut elsewhere = Vec::new();
    for path in all {
        let rel = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mut text = std::fs::read_to_string(&path).unwrap();
        if rel == HOME {
            // The home's own tests spell the names to pin them: count its code only.
            let end = text.find("#[cfg(test)]").unwrap_or(text.len());
            text.truncate(end);
        }
        let rust = rel.ends_with(".rs");
        for (n, line) in text.lines().enumerate() {
            let hits: Vec<String> = if rust {
                literals(line)
                    .into_iter()
                    .filter(|l| names.contains(&l.as_str()))
                    .collect()
            } else if line.trim_start().starts_with('#') {
                Vec::new()
            } else {
                words(line)
                    .into_iter()
                    .filter(|w| names.contains(w))
                    .map(str::to_owned)
                    .collect()
            };
            if rel == HOME {
                found_at_home += hits.len();
            } else {
                elsewhere.extend(hits.into_iter().map(|h| format!("{rel}:{}: {h}", n + 1)));
            }
        }
    }
    assert_eq!(
        found_at_home,
        names.len(),
        "each name once in {HOME} (the scan must see them there)"
    );
    assert!(
        elsewhere.is_empty(),
        "written out again outside {HOME}:\n{}",
        elsewhere.join("\n")
    );
}

#[test]
fn the_scanner_finds_literals_and_words() {
    assert_eq!(
        literals(r#"let a = "veil-x"; call("x\"y") // "veil-y""#),
        vec!["veil-x", "x\"y"]
    );
    assert_eq!(
        words("grep -E 'veil-audit-eos|9s+'"),
        vec!["grep", "-E", "veil-audit-eos", "9s+"]
    );
}
