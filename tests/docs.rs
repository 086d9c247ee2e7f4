// SPDX-License-Identifier: MIT OR Apache-2.0
//! The documentation holds together in a clone: every relative link of README.md, SECURITY.md
//! and docs/**/*.md names a file (or folder) inside the repository, every `#anchor` a heading
//! of its target, and the README stays short.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .canonicalize()
        .expect("repository path")
}

fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md"), root.join("SECURITY.md")];
    let mut dirs = vec![root.join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files
}

/// `](target)` links outside code blocks and inline code.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_block = false;
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            continue;
        }
        // Drop inline code spans, then find the links.
        let mut plain = String::new();
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                plain.push_str(part);
            }
        }
        let mut rest = plain.as_str();
        while let Some(at) = rest.find("](") {
            let tail = &rest[at + 2..];
            let Some(end) = tail.find(')') else { break };
            out.push((n + 1, tail[..end].to_owned()));
            rest = &tail[end..];
        }
    }
    out
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces as dashes.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    let mut in_block = false;
    text.lines()
        .filter(|l| {
            if l.trim_start().starts_with("```") {
                in_block = !in_block;
            }
            !in_block && l.starts_with('#')
        })
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect()
}

#[test]
fn every_link_resolves_inside_the_repository() {
    let root = repo();
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in markdown_files(&root) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, target) in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, fragment) = match target.split_once('#') {
                Some((p, f)) => (p, Some(f)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            let place = format!(
                "{}:{line}: {target}",
                file.strip_prefix(&root).unwrap().display()
            );
            match resolved.canonicalize() {
                Ok(p) if p.starts_with(&root) => {
                    if let Some(fragment) = fragment
                        && p.extension().is_some_and(|e| e == "md")
                    {
                        let target_text = std::fs::read_to_string(&p).unwrap();
                        if !anchors(&target_text).iter().any(|a| a == fragment) {
                            broken.push(format!("{place} (no heading #{fragment})"));
                        }
                    }
                }
                Ok(_) => broken.push(format!("{place} (outside the repository)")),
                Err(_) => broken.push(format!("{place} (missing)")),
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} links found: is the parser right?"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_link_checker_catches_what_it_should() {
    // Positive controls for the parser and the anchor rule.
    let text = "see [a](docs/x.md) and `[not](a link)`\n```\n[nor](this)\n```\n[b](#two-words)";
    let found: Vec<String> = links(text).into_iter().map(|l| l.1).collect();
    assert_eq!(found, vec!["docs/x.md", "#two-words"]);
    assert_eq!(
        anchor(" The `auditsink` element: records!"),
        "the-auditsink-element-records"
    );
    assert!(anchors("# Two words\n```\n# not\n```").contains(&"two-words".to_owned()));
}

#[test]
fn the_readme_stays_short() {
    let size = std::fs::metadata(repo().join("README.md")).unwrap().len();
    assert!(
        size <= 12 * 1024,
        "README.md is {size} bytes; the details belong in docs/"
    );
}
