//! Named watchlists: the user keeps several lists ("Crypto", "Tech", …) and one is active. The active list's
//! symbols are the model's `watchlist` (what the page subscribes to and shows); this module keeps the names, which
//! one is active, and the symbols of the others. Pure data, saved whole as [`Saved`].

use hamster_shared::Symbol;
use serde::Serialize;

use crate::json_object::json_object;

/// Longest list name.
pub(crate) const MAX_NAME: usize = 24;
/// Most lists.
pub(crate) const MAX_LISTS: usize = 12;

/// The lists, and which one is active.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WatchLists {
    pub(crate) names: Vec<String>,
    /// Symbols per list; the active one's entry is stale while it is active (the model's watchlist is current).
    stored: Vec<Vec<Symbol>>,
    pub(crate) active: usize,
}

/// How the lists are saved (and told to other tabs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Saved {
    pub active: usize,
    pub lists: Vec<SavedList>,
}

json_object!(Saved, "saved watchlists", required { active: usize, lists: Vec<SavedList> } optional {});

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SavedList {
    pub name: String,
    pub symbols: Vec<Symbol>,
}

json_object!(SavedList, "a saved watchlist", required { name: String, symbols: Vec<Symbol> } optional {});

/// Why a list name is refused.
pub(crate) fn check_name(lists: &WatchLists, name: &str, except: Option<usize>) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("a list needs a name".into());
    }
    if name.chars().count() > MAX_NAME {
        return Err(format!("at most {MAX_NAME} characters"));
    }
    if lists.names.iter().enumerate().any(|(i, n)| Some(i) != except && n.eq_ignore_ascii_case(name)) {
        return Err(format!("there is already a list called {name}"));
    }
    Ok(name.to_owned())
}

impl WatchLists {
    /// One list, "Watchlist", holding `active`.
    pub(crate) fn single(active: Vec<Symbol>) -> WatchLists {
        WatchLists { names: vec!["Watchlist".into()], stored: vec![active], active: 0 }
    }

    /// Lists as saved; `None` if they make no sense (no list, an active index out of range).
    pub(crate) fn from_saved(saved: Saved) -> Option<WatchLists> {
        if saved.lists.is_empty() || saved.active >= saved.lists.len() {
            return None;
        }
        let (names, stored) = saved.lists.into_iter().map(|l| (l.name, l.symbols)).unzip();
        Some(WatchLists { names, stored, active: saved.active })
    }

    /// The active list's symbols as saved.
    pub(crate) fn active_symbols(&self) -> Vec<Symbol> {
        self.stored.get(self.active).cloned().unwrap_or_default()
    }

    /// What to save, with `current` as the active list's symbols.
    pub(crate) fn saved(&self, current: &[Symbol]) -> Saved {
        let lists = self
            .names
            .iter()
            .zip(&self.stored)
            .enumerate()
            .map(|(i, (name, symbols))| SavedList {
                name: name.clone(),
                symbols: if i == self.active { current.to_vec() } else { symbols.clone() },
            })
            .collect();
        Saved { active: self.active, lists }
    }

    /// Makes list `to` active, keeping `current` as the old one's symbols; returns the new list's symbols.
    pub(crate) fn switch(&mut self, to: usize, current: &[Symbol]) -> Option<Vec<Symbol>> {
        if to >= self.names.len() || to == self.active {
            return None;
        }
        self.stored[self.active] = current.to_vec();
        self.active = to;
        Some(self.stored[to].clone())
    }

    /// Adds an empty list named `name` (checked by [`check_name`]); returns its index.
    pub(crate) fn create(&mut self, name: String) -> Option<usize> {
        if self.names.len() >= MAX_LISTS {
            return None;
        }
        self.names.push(name);
        self.stored.push(Vec::new());
        Some(self.names.len() - 1)
    }

    pub(crate) fn rename(&mut self, at: usize, name: String) {
        if let Some(n) = self.names.get_mut(at) {
            *n = name;
        }
    }

    /// Deletes list `at` (never the last one). When it was active, the one before it (or after) becomes active
    /// and its symbols are returned.
    pub(crate) fn delete(&mut self, at: usize) -> Option<Vec<Symbol>> {
        if self.names.len() <= 1 || at >= self.names.len() {
            return None;
        }
        self.names.remove(at);
        self.stored.remove(at);
        if at == self.active {
            self.active = at.saturating_sub(1);
            return Some(self.stored[self.active].clone());
        }
        if at < self.active {
            self.active -= 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syms(list: &[&str]) -> Vec<Symbol> {
        list.iter().map(|s| Symbol::parse(s).unwrap()).collect()
    }

    #[test]
    fn switching_keeps_each_lists_symbols() {
        let mut l = WatchLists::single(syms(&["AAPL"]));
        let crypto = l.create("Crypto".into()).unwrap();
        assert_eq!(l.switch(crypto, &syms(&["AAPL", "MSFT"])), Some(Vec::new()));
        assert_eq!(l.switch(0, &syms(&["BTC/USD"])), Some(syms(&["AAPL", "MSFT"])));
        assert_eq!(l.switch(0, &[]), None, "already active");
        let saved = l.saved(&syms(&["AAPL", "MSFT", "NVDA"]));
        assert_eq!(saved.lists[0].symbols, syms(&["AAPL", "MSFT", "NVDA"]), "the active list is what is current");
        assert_eq!(saved.lists[1].symbols, syms(&["BTC/USD"]));
        let back =
            WatchLists::from_saved(serde_json::from_str(&serde_json::to_string(&saved).unwrap()).unwrap()).unwrap();
        assert_eq!(back.names, ["Watchlist", "Crypto"]);
        assert_eq!(back.active_symbols(), syms(&["AAPL", "MSFT", "NVDA"]));
    }

    #[test]
    fn deleting_the_active_list_activates_a_neighbour_and_the_last_list_stays() {
        let mut l = WatchLists::single(syms(&["AAPL"]));
        let b = l.create("B".into()).unwrap();
        l.switch(b, &syms(&["AAPL"]));
        assert_eq!(l.delete(b), Some(syms(&["AAPL"])));
        assert_eq!((l.active, l.names.len()), (0, 1));
        assert_eq!(l.delete(0), None, "the last list cannot go");
    }

    #[test]
    fn names_are_checked() {
        let l = WatchLists::single(Vec::new());
        assert!(check_name(&l, "  ", None).is_err());
        assert!(check_name(&l, "watchlist", None).is_err(), "case-insensitive duplicate");
        assert_eq!(check_name(&l, "watchlist", Some(0)), Ok("watchlist".into()), "renaming itself");
        assert!(check_name(&l, &"x".repeat(MAX_NAME + 1), None).is_err());
        assert_eq!(check_name(&l, " Crypto ", None), Ok("Crypto".into()));
        assert!(WatchLists::from_saved(Saved { active: 2, lists: Vec::new() }).is_none());
    }
}
