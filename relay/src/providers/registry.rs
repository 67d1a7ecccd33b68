//! The provider registry: every adapter the relay can run, described as data.
//!
//! Each adapter folder exports one [`Adapter`] (its name, aliases, key variables, a one-line description, its
//! clap flags and a build function), and `providers/mod.rs` lists them in one `adapters!` line each. Everything
//! that used to be written per provider elsewhere — the `--providers` values and their help, the key table, the
//! "not configured" stand-in, the provider flags in `--help` — is derived from that list here. Adding a
//! provider is one new folder and one line.

use std::ffi::OsStr;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::{ArgMatches, Command, FromArgMatches};

use super::stream::timing::Timing;
use super::unconfigured::NotConfigured;
use super::{Provider, ADAPTERS};
use crate::secret::Secret;

/// One adapter the relay can run.
pub(crate) struct Adapter {
    /// Stable lower-case name: `name:SYMBOL` prefixes, `status` messages, `Quote.provider`, `--providers`.
    pub(crate) name: &'static str,
    /// Other spellings accepted in `--providers`.
    pub(crate) aliases: &'static [&'static str],
    /// One line for `--help`.
    pub(crate) about: &'static str,
    /// Environment variables holding its credentials, all required (none for keyless feeds).
    pub(crate) key_vars: &'static [&'static str],
    /// Adds the adapter's own flags (its `clap::Args`' `augment_args`).
    pub(crate) args: fn(Command) -> Command,
    /// Builds the provider; an `Err` is a configuration mistake, reported as `down` with that reason.
    pub(crate) build: fn(Build<'_>) -> Result<Box<dyn Provider>, String>,
}

impl std::fmt::Debug for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for Adapter {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

/// What a build function gets: the parsed flags, the credentials in `key_vars` order, and the shared timing.
pub(crate) struct Build<'a> {
    matches: &'a ArgMatches,
    pub(crate) keys: Vec<Secret>,
    pub(crate) timing: Timing,
}

impl Build<'_> {
    /// The adapter's own flags.
    pub(crate) fn args<A: FromArgMatches>(&self) -> Result<A, String> {
        A::from_arg_matches(self.matches).map_err(|e| e.to_string())
    }

    /// The one credential of a single-key adapter.
    pub(crate) fn key(&self) -> Result<Secret, String> {
        self.keys.first().cloned().ok_or_else(|| "no key".to_owned())
    }
}

/// The adapter named `name` (or one of its aliases), ignoring case and surrounding spaces.
pub(crate) fn find(name: &str) -> Option<&'static Adapter> {
    let name = name.trim().to_ascii_lowercase();
    ADAPTERS.iter().copied().find(|a| a.name == name || a.aliases.contains(&name.as_str()))
}

/// Every adapter's name, for messages.
pub(crate) fn names() -> String {
    ADAPTERS.iter().map(|a| a.name).collect::<Vec<_>>().join(", ")
}

/// Every adapter's flags, in `--help` and in the parsed configuration. The matches are kept whole and each adapter
/// reads its own flags from them when it is built.
#[derive(Clone)]
pub(crate) struct ProviderArgs {
    matches: ArgMatches,
}

impl std::fmt::Debug for ProviderArgs {
    // The matches hold every flag of the command, secrets included; only say which adapters exist.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderArgs").field("adapters", &names()).finish()
    }
}

impl FromArgMatches for ProviderArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(ProviderArgs { matches: matches.clone() })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.matches = matches.clone();
        Ok(())
    }
}

impl clap::Args for ProviderArgs {
    fn augment_args(cmd: Command) -> Command {
        ADAPTERS.iter().fold(cmd, |cmd, adapter| (adapter.args)(cmd))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl ProviderArgs {
    /// Builds the selected providers. One whose key is missing, or whose flags are inconsistent, runs as
    /// [`NotConfigured`]: reported `down` with the reason, its symbols rejected, the relay unharmed.
    pub(crate) fn build(&self, selected: &[&'static Adapter], timing: &Timing) -> Vec<Box<dyn Provider>> {
        selected
            .iter()
            .map(|adapter| {
                let keys: Vec<Secret> = adapter.key_vars.iter().filter_map(|v| Secret::from_env(v)).collect();
                let built = if keys.len() < adapter.key_vars.len() {
                    Err(format!("set {}", adapter.key_vars.join(" and ")))
                } else {
                    (adapter.build)(Build { matches: &self.matches, keys, timing: timing.clone() })
                };
                built.unwrap_or_else(|reason| -> Box<dyn Provider> {
                    Box::new(NotConfigured { name: adapter.name, reason })
                })
            })
            .collect()
    }
}

/// Parses a `--providers` entry into its adapter; `--help` lists the adapters with their descriptions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdapterParser;

impl TypedValueParser for AdapterParser {
    type Value = &'static Adapter;

    fn parse_ref(&self, _cmd: &Command, _arg: Option<&clap::Arg>, value: &OsStr) -> Result<Self::Value, clap::Error> {
        let text = value.to_string_lossy();
        find(&text).ok_or_else(|| {
            clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                format!("unknown provider {:?} in --providers/PROVIDERS; available: {}\n", text.trim(), names()),
            )
        })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            ADAPTERS.iter().map(|a| PossibleValue::new(a.name).aliases(a.aliases.iter().copied()).help(a.about)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_are_unique_and_lower_case() {
        let mut seen = std::collections::HashSet::new();
        for adapter in ADAPTERS {
            for name in std::iter::once(&adapter.name).chain(adapter.aliases) {
                assert_eq!(*name, name.to_ascii_lowercase());
                assert!(seen.insert(*name), "{name} is used twice");
            }
        }
        assert_eq!(find(" Simulator ").map(|a| a.name), Some("sim"));
        assert!(find("nope").is_none());
    }

    #[test]
    fn adapter_flags_do_not_collide() {
        // clap panics on duplicate ids or flags when the command is built.
        let cmd = <ProviderArgs as clap::Args>::augment_args(Command::new("relay"));
        cmd.debug_assert();
    }
}
