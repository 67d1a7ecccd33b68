//! The watchlist table. It re-renders with the model, but its rows are
//! [`QuoteRow`](super::quote_row::QuoteRow)s whose props compare by pointer, so only rows whose data changed
//! render again, in [`RowGroup`]s that render only while on screen.

use std::rc::Rc;

use hamster_shared::Symbol;
use yew::prelude::*;

use super::row_group::{GroupRow, RowGroup, GROUP_ROWS};
use crate::context::AppContext;
use crate::services::on_screen::OnScreen;

/// Row groups this close to the viewport (px) count as on screen: about four rows' worth, so rows scrolling
/// in at a normal pace are up to date before they show.
const ON_SCREEN_MARGIN_PX: u32 = 160;

#[component]
pub(crate) fn Watchlist() -> Html {
    let ctx = use_context::<AppContext>();
    // Stable across renders (the context's dispatcher never changes), so rows keep equal props.
    let on_remove = {
        let ctx = ctx.clone();
        use_callback((), move |symbol: Symbol, _| {
            if let Some(ctx) = &ctx {
                ctx.remove(symbol);
            }
        })
    };
    let on_replace = {
        let ctx = ctx.clone();
        use_callback((), move |(old, new): (Symbol, Symbol), _| {
            if let Some(ctx) = &ctx {
                ctx.replace(old, new);
            }
        })
    };
    let on_visible = {
        let ctx = ctx.clone();
        use_callback((), move |(symbols, on_screen): (Vec<Symbol>, bool), _| {
            if let Some(ctx) = &ctx {
                ctx.on_screen(symbols, on_screen);
            }
        })
    };
    let on_screen = use_memo((), |_| OnScreen::new(ON_SCREEN_MARGIN_PX).map(Rc::new));
    let Some(ctx) = ctx else {
        return Html::default();
    };
    let state = &ctx.state;
    let rows: Vec<GroupRow> = state
        .watchlist
        .iter()
        .filter_map(|s| state.rows.get(s))
        .map(|row| GroupRow { row: Rc::clone(row), stale: state.row_is_stale(row) })
        .collect();
    html! {
        <div class="table-wrap">
            <table class="quotes" role="table">
                <thead role="rowgroup">
                    <tr role="row">
                        <th scope="col" role="columnheader" class="sym">{"Symbol"}</th>
                        <th scope="col" role="columnheader" class="num">{"Price"}</th>
                        <th scope="col" role="columnheader" class="num opt-sm">{"Chg"}</th>
                        <th scope="col" role="columnheader" class="num">{"Chg %"}</th>
                        <th scope="col" role="columnheader" class="num opt">{"Bid / Ask"}</th>
                        <th scope="col" role="columnheader" class="num opt">{"Volume"}</th>
                        <th scope="col" role="columnheader" class="opt opt-md">{"Last tick"}</th>
                        <th scope="col" role="columnheader" class="opt opt-md">{"Provider"}</th>
                        <th scope="col" role="columnheader" class="spark-col">{"Trend"}</th>
                        <th scope="col" role="columnheader"><span class="sr-only">{"Remove"}</span></th>
                    </tr>
                </thead>
                { for rows.chunks(GROUP_ROWS).enumerate().map(|(i, rows)| html! {
                    <RowGroup key={i} rows={rows.to_vec()} on_remove={on_remove.clone()} on_replace={on_replace.clone()}
                        on_screen={(*on_screen).clone()} on_visible={on_visible.clone()} />
                }) }
                if rows.is_empty() {
                    <tbody role="rowgroup">
                        <tr class="empty" role="row">
                            <td role="cell" colspan="10">{"The watchlist is empty. Add a symbol above."}</td>
                        </tr>
                    </tbody>
                }
            </table>
        </div>
    }
}
