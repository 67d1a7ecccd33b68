//! The watchlist table. It re-renders with the model, but its rows are keyed [`QuoteRow`]s whose props compare
//! by pointer, so only rows whose data changed render again.

use hamster_shared::Symbol;
use yew::prelude::*;

use super::app::AppContext;
use super::quote_row::QuoteRow;

#[component]
pub fn Watchlist() -> Html {
    let ctx = use_context::<AppContext>();
    // Stable across renders (the context's dispatcher and channel never change), so rows keep equal props.
    let on_remove = {
        let ctx = ctx.clone();
        use_callback((), move |symbol: Symbol, _| {
            if let Some(ctx) = &ctx {
                ctx.remove(symbol);
            }
        })
    };
    let Some(ctx) = ctx else {
        return Html::default();
    };
    let state = &ctx.state;
    html! {
        <div class="table-wrap">
            <table class="quotes">
                <thead>
                    <tr>
                        <th scope="col" class="sym">{"Symbol"}</th>
                        <th scope="col" class="num">{"Price"}</th>
                        <th scope="col" class="num opt-sm">{"Chg"}</th>
                        <th scope="col" class="num">{"Chg %"}</th>
                        <th scope="col" class="num opt">{"Bid / Ask"}</th>
                        <th scope="col" class="num opt">{"Volume"}</th>
                        <th scope="col" class="opt opt-md">{"Last tick"}</th>
                        <th scope="col" class="opt opt-md">{"Provider"}</th>
                        <th scope="col" class="spark-col">{"Trend"}</th>
                        <th scope="col"><span class="sr-only">{"Remove"}</span></th>
                    </tr>
                </thead>
                <tbody>
                    { for state.watchlist.iter().filter_map(|s| state.rows.get(s)).map(|row| html! {
                        <QuoteRow
                            key={row.symbol.as_str()}
                            row={row.clone()}
                            stale={state.row_is_stale(row)}
                            on_remove={on_remove.clone()}
                        />
                    }) }
                    if state.watchlist.is_empty() {
                        <tr class="empty"><td colspan="10">{"The watchlist is empty. Add a symbol above."}</td></tr>
                    }
                </tbody>
            </table>
        </div>
    }
}
