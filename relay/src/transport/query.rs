//! The `?symbols=A,B` query that SSE and REST share, parsed strictly: a request naming an invalid or unroutable
//! symbol fails whole with 400 and its reason (a socket command would instead reject that symbol alone).

use hamster_shared::symbol::split_list;
use hamster_shared::{ErrorCode, Symbol};
use serde::Deserialize;

use crate::commands::{self, TooManySymbols};
use crate::error::HttpError;
use crate::upstream::Upstream;

/// `?symbols=A,B`
#[derive(Debug, Deserialize)]
pub(crate) struct SymbolsQuery {
    pub(crate) symbols: Option<String>,
}

/// Parses `?symbols=` strictly: any invalid or unroutable symbol fails the request with 400 and its reason.
pub(crate) fn parse_symbols(upstream: &Upstream, list: &str) -> Result<Vec<Symbol>, HttpError> {
    let raw: Vec<String> = split_list(list).map(str::to_owned).collect();
    TooManySymbols::check(&raw)?;
    let (symbols, rejected) = commands::resolve(upstream, &raw);
    if let Some(rejection) = rejected.into_iter().next() {
        return Err(rejection.into());
    }
    if symbols.is_empty() {
        return Err(HttpError::bad_request(ErrorCode::InvalidSymbol, "no symbols given; use ?symbols=AAPL,BTC/USD"));
    }
    Ok(symbols)
}
