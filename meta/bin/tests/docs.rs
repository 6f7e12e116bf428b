//! docs/operations.md against the binary: every flag of the serving commands is documented
//! in that command's section and every documented flag exists; every metric name the code
//! defines is in the metrics table. And every test the docs cite as pinning a behaviour
//! exists, so a renamed or deleted test cannot leave a claim unpinned.

use std::collections::BTreeSet;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_bucketfs");

fn repo_file(path: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The long flags `bucketfs <args> --help` lists (without --help).
fn flags_of(args: &[&str]) -> BTreeSet<String> {
    let out = Command::new(BIN)
        .args(args)
        .arg("--help")
        .output()
        .expect("run --help");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| {
            let l = l.trim_start();
            // "--long <V>  help", or "-s, --long <V>  help".
            let long = if l.starts_with("--") {
                l
            } else if l.starts_with('-') {
                l.split_once(", ")?.1
            } else {
                return None;
            };
            let flag = long.strip_prefix("--")?.split([' ', '\t']).next()?;
            (flag != "help").then(|| format!("--{flag}"))
        })
        .collect()
}

/// The text of the section whose heading is `## <title>`.
fn section<'a>(doc: &'a str, title: &str) -> &'a str {
    let start = doc
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("docs/operations.md has no section {title}"));
    let rest = &doc[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    &rest[..end]
}

/// The flags a section's table documents (rows starting with "| `--").
fn documented(section: &str) -> BTreeSet<String> {
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `--"))
        .filter_map(|l| l.split('`').next())
        .map(|f| format!("--{f}"))
        .collect()
}

#[test]
fn every_flag_of_the_serving_commands_is_documented_and_exists() {
    let doc = repo_file("docs/operations.md");
    for (title, args) in [
        ("`bucketfs up`", &["up"][..]),
        ("`bucketfs gateway serve`", &["gateway", "serve"][..]),
        ("`bucketfs meta serve`", &["meta", "serve"][..]),
    ] {
        let have = flags_of(args);
        assert!(!have.is_empty(), "no flags parsed for {title}");
        let doc_flags = documented(section(&doc, title));
        let missing: Vec<_> = have.difference(&doc_flags).collect();
        let stale: Vec<_> = doc_flags.difference(&have).collect();
        assert!(
            missing.is_empty() && stale.is_empty(),
            "{title}: flags not documented: {missing:?}; documented but gone: {stale:?}"
        );
    }
}

#[test]
fn every_metric_is_in_the_metrics_table() {
    let doc = repo_file("docs/operations.md");
    let table = section(&doc, "Metrics");
    let names = repo_file("libs/telemetry/src/metrics/names.rs");
    let metrics: Vec<&str> = names
        .split('"')
        .filter(|s| s.starts_with("bucketfs_") && !s.contains(' '))
        .collect();
    assert!(metrics.len() >= 20, "{metrics:?}");
    for m in metrics {
        assert!(
            table.contains(&format!("| `{m}` |")),
            "metric {m} is not in docs/operations.md"
        );
    }
}

/// Where each crate the docs cite lives, relative to the repository root.
const CRATE_DIRS: &[(&str, &str)] = &[
    ("bucketfs", "meta/bin"),
    ("bucketfs-gateway", "gateway/core"),
    ("bucketfs-nfs-server", "gateway/nfs-server"),
    ("bucketfs-meta-state", "meta/state"),
    ("bucketfs-sim", "sim"),
];

#[test]
fn every_test_the_docs_cite_exists() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut cited = 0;
    for doc in [
        "docs/semantics.md",
        "docs/operations.md",
        "docs/architecture.md",
        "README.md",
    ] {
        let text = repo_file(doc);
        // Citations are `crate::test_file` or `crate::test_file::test_fn` in backticks.
        for token in text.split('`').skip(1).step_by(2) {
            let Some((krate, path)) = token.split_once("::") else {
                continue;
            };
            let Some((_, dir)) = CRATE_DIRS.iter().find(|(name, _)| *name == krate) else {
                continue;
            };
            if !path
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == ':')
            {
                continue;
            }
            let (file, test) = match path.split_once("::") {
                Some((file, test)) => (file, Some(test)),
                None => (path, None),
            };
            let source = root.join(dir).join("tests").join(format!("{file}.rs"));
            let body = std::fs::read_to_string(&source)
                .unwrap_or_else(|e| panic!("{doc} cites `{token}`: {}: {e}", source.display()));
            if let Some(test) = test {
                assert!(
                    body.contains(&format!("fn {test}(")),
                    "{doc} cites `{token}`, but {} has no fn {test}",
                    source.display()
                );
            }
            cited += 1;
        }
    }
    // The docs cite dozens of tests; finding none means the parsing broke, not the docs.
    assert!(cited > 20, "found only {cited} test citations in the docs");
}
