//! README's "Configuration" table, checked against the flags clap actually parses ([`Config::command`]).
//!
//! The table is what operators read, so it must not drift from the code:
//! * every visible long flag and every environment variable of the relay appears in the table's flag and env
//!   columns; flags hidden with `hide = true` are environment-only and need only their variable there;
//! * every flag and variable the table names in those columns exists, and sits in the row of its own flag;
//! * a default the table states (in backticks) is clap's default; a descriptive default ("none", "random", "2×
//!   heartbeat") is only allowed where clap has none;
//! * an adapter's own flags (`--binance-*`, `--uw-*`, …) may instead be documented on the provider pages,
//!   `docs/providers/*.md`, with their variables: README summarises them in one row.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use clap::{Arg, CommandFactory};

use super::Config;
use crate::providers::ADAPTERS;

const README: &str = include_str!("../../../README.md");

/// One row of the table: the code spans of its flag, env and default columns, and whether it is elided (`…`).
#[derive(Debug)]
struct Row {
    line: String,
    flags: Vec<String>,
    envs: Vec<String>,
    defaults: Vec<String>,
    elided: bool,
}

/// The inline code spans of one Markdown table cell.
fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

/// The rows of the table under README's `## Configuration` heading.
fn readme_rows() -> Vec<Row> {
    let section = README.split("\n## Configuration\n").nth(1).expect("README has a ## Configuration section");
    let table = section.lines().skip_while(|l| !l.starts_with('|')).take_while(|l| l.starts_with('|'));
    let rows: Vec<Row> = table
        .skip(2) // header and separator
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 4, "a configuration row has four cells: {line}");
            Row {
                line: line.to_owned(),
                flags: code_spans(cells[0]),
                envs: code_spans(cells[1]),
                defaults: code_spans(cells[2]),
                elided: cells[0].contains('…') || cells[1].contains('…'),
            }
        })
        .collect();
    assert!(rows.len() > 20, "README's configuration table was not found or is nearly empty");
    rows
}

fn long(arg: &Arg) -> Option<String> {
    arg.get_long().map(|l| format!("--{l}"))
}

fn env(arg: &Arg) -> Option<String> {
    arg.get_env().map(|e| e.to_string_lossy().into_owned())
}

/// clap's default as the table writes it: the values joined with commas, or `None`.
fn default(arg: &Arg) -> Option<String> {
    let values = arg.get_default_values();
    (!values.is_empty()).then(|| values.iter().map(|v| v.to_string_lossy()).collect::<Vec<_>>().join(","))
}

/// The relay's own arguments (clap's `--help`/`--version` aside).
fn relay_args() -> Vec<Arg> {
    Config::command().get_arguments().filter(|a| !matches!(a.get_id().as_str(), "help" | "version")).cloned().collect()
}

/// Long flags that belong to an adapter rather than the relay core.
fn adapter_flags() -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    for adapter in ADAPTERS {
        flags.extend((adapter.args)(clap::Command::new(adapter.name)).get_arguments().filter_map(long));
    }
    flags
}

/// Whether `text` mentions `word` as a whole flag or variable (`--binance-max-streams` is not mentioned by
/// `--binance-max-streams-per-request`).
fn mentions(text: &str, word: &str) -> bool {
    let part = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices(word).any(|(at, _)| {
        let ends = !text[at + word.len()..].chars().next().is_some_and(part);
        // A flag starts with `--`, so only its end needs a boundary; a variable must not end a longer one either.
        let starts = word.starts_with('-') || !text[..at].chars().next_back().is_some_and(part);
        starts && ends
    })
}

/// The provider pages, concatenated.
fn provider_pages() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/providers");
    let mut pages = String::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{}: {e}", dir.display())).path();
        if path.extension().is_some_and(|x| x == "md") {
            pages += &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
    pages
}

#[test]
fn every_flag_and_variable_is_in_the_table_or_on_its_provider_page() {
    let rows = readme_rows();
    let table_flags: BTreeSet<&str> = rows.iter().flat_map(|r| &r.flags).map(String::as_str).collect();
    let table_envs: BTreeSet<&str> = rows.iter().flat_map(|r| &r.envs).map(String::as_str).collect();
    let adapter_flags = adapter_flags();
    let pages = provider_pages();
    let mut missing = Vec::new();
    for arg in relay_args() {
        let (flag, var) = (long(&arg), env(&arg));
        let name = flag.clone().or(var.clone()).unwrap_or_else(|| arg.get_id().to_string());
        let in_table = |f: &Option<String>, v: &Option<String>| {
            (arg.is_hide_set() || f.as_deref().is_none_or(|f| table_flags.contains(f)))
                && v.as_deref().is_none_or(|v| table_envs.contains(v))
        };
        if in_table(&flag, &var) {
            continue;
        }
        if flag.as_ref().is_some_and(|f| adapter_flags.contains(f)) {
            let on_pages = [&flag, &var].into_iter().flatten().all(|word| mentions(&pages, word));
            if on_pages {
                continue;
            }
            missing.push(format!("{name} (env {var:?}): neither in README's table nor on a docs/providers/ page"));
        } else {
            missing.push(format!("{name} (env {var:?}): not in README's configuration table"));
        }
    }
    assert!(missing.is_empty(), "undocumented configuration:\n{}", missing.join("\n"));
}

#[test]
fn every_row_names_real_flags_with_their_variables_and_defaults() {
    let args = relay_args();
    let by_flag: BTreeMap<String, &Arg> = args.iter().filter_map(|a| long(a).map(|f| (f, a))).collect();
    let by_env: BTreeMap<String, &Arg> = args.iter().filter_map(|a| env(a).map(|e| (e, a))).collect();
    let adapter_flags = adapter_flags();
    for row in readme_rows() {
        let line = &row.line;
        for flag in &row.flags {
            assert!(flag.starts_with("--"), "flag column holds {flag:?}, not a long flag: {line}");
            assert!(by_flag.contains_key(flag), "{flag} is not a relay flag: {line}");
        }
        for var in &row.envs {
            assert!(by_env.contains_key(var), "{var} is not a relay environment variable: {line}");
        }
        // The arguments the row describes: its flags, or for environment-only rows its variables.
        let described: Vec<&Arg> = if row.flags.is_empty() {
            row.envs.iter().map(|v| by_env[v]).collect()
        } else {
            row.flags.iter().map(|f| by_flag[f]).collect()
        };
        assert!(!described.is_empty(), "row names no flag and no variable: {line}");
        for arg in &described {
            let var = env(arg);
            assert!(
                var.as_ref().is_none_or(|v| row.envs.contains(v)) || row.elided,
                "{} belongs in this row's env column: {line}",
                var.unwrap_or_default()
            );
            if row.flags.is_empty() {
                assert!(arg.is_hide_set(), "{:?} has a visible flag: name it in the flag column: {line}", long(arg));
            }
        }
        for var in &row.envs {
            assert!(
                described.iter().any(|a| env(a).as_ref() == Some(var)),
                "{var} belongs to another flag than this row's: {line}"
            );
        }
        let summary = described.iter().all(|a| long(a).is_some_and(|f| adapter_flags.contains(&f)));
        if summary && row.elided {
            continue; // the adapters' summary row: their defaults are on the provider pages and in `--help`
        }
        if row.defaults.is_empty() {
            for arg in &described {
                assert_eq!(
                    default(arg),
                    None,
                    "clap has a default for {:?}: write it in backticks in the default column: {line}",
                    long(arg)
                );
            }
        } else {
            assert_eq!(
                row.defaults.len(),
                described.len(),
                "one default per flag, in the flags' order (`a` / `b`): {line}"
            );
            for (arg, stated) in described.iter().zip(&row.defaults) {
                assert_eq!(default(arg).as_ref(), Some(stated), "default of {:?}: {line}", long(arg));
            }
        }
    }
}

#[test]
fn mentions_respects_word_boundaries() {
    assert!(mentions("set `--binance-max-streams` (1024)", "--binance-max-streams"));
    assert!(!mentions("`--binance-max-streams-per-request`", "--binance-max-streams"));
    assert!(mentions("`UW_WS_URL`.", "UW_WS_URL"));
    assert!(!mentions("`BINANCE_MAX_STREAMS_PER_REQUEST`", "BINANCE_MAX_STREAMS"));
    assert!(!mentions("`XUW_WS_URL`", "UW_WS_URL"));
}
