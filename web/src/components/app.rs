//! The root component: creates the model (restored from the cache), starts the hooks that own the page's
//! resources, provides [`AppContext`] and lays out the page.

use std::rc::Rc;

use yew::prelude::*;

use super::activity_log::ActivityLog;
use super::add_symbol::AddSymbol;
use super::alerts::AlertsPanel;
use super::connection_badge::ConnectionBadge;
use super::detail::DetailView;
use super::event_feed::EventFeed;
use super::latency::LatencyFigure;
use super::order_ticket::OrderTicket;
use super::portfolio::PortfolioPanel;
use super::replay_bar::ReplayBar;
use super::stats_panel::StatsPanel;
use super::theme::ThemeToggle;
use super::toasts::Toasts;
use super::watchlist::Watchlist;
use super::watchlist_tabs::WatchlistTabs;
use crate::chart::tap::use_tick_tap;
use crate::context::AppContext;
use crate::hooks::{use_clock, use_connection, use_frame_batch, use_history, use_marks, use_persistence};
use crate::services::{now_ms, storage};
use crate::state::{default_watchlist, Action, AlertAction, AppState, ListAction};

/// The page's title with its logo: static markup, so one string rather than the wasm that would build it node by
/// node.
const BRAND: &str = concat!(
    r#"<h1 class="brand"><svg class="logo" viewBox="0 0 24 24" width="22" height="22" aria-hidden="true">"#,
    r#"<rect x="3" y="9" width="4" height="8" rx="1"/><line x1="5" y1="6" x2="5" y2="20"/>"#,
    r#"<rect x="10" y="5" width="4" height="9" rx="1"/><line x1="12" y1="2" x2="12" y2="17"/>"#,
    r#"<rect x="17" y="11" width="4" height="6" rx="1"/><line x1="19" y1="8" x2="19" y2="21"/>"#,
    r#"</svg>Hamster Terminal</h1>"#
);

#[component]
pub(crate) fn App() -> Html {
    let state = use_reducer(|| {
        let watchlist = storage::load_watchlist().unwrap_or_else(default_watchlist);
        let mut state = AppState::restored(watchlist, storage::load_quotes(), now_ms());
        let alerts = storage::load_json(storage::ALERTS_KEY).unwrap_or_default();
        state.apply(Action::Alert(AlertAction::Restore(alerts)));
        if let Some(lists) = storage::load_json(storage::WATCHLISTS_KEY) {
            state.apply(Action::Lists(ListAction::Adopt(lists)));
        }
        state
    });
    let batched = use_frame_batch(state.dispatcher());
    let emit = use_tick_tap(batched);
    let commands = use_connection(emit, &state);
    use_clock(state.dispatcher());
    use_persistence(state.clone());
    use_history(state.clone());
    use_marks(&state);

    let context = AppContext::new(state.clone(), commands);
    html! {
        <ContextProvider<AppContext> context={context}>
            <div class="app">
                <header class="top">
                    {Html::from_html_unchecked(AttrValue::Static(BRAND))}
                    <LatencyFigure />
                    <ThemeToggle />
                    <ConnectionBadge />
                </header>
                <main class="layout">
                    <section class="board" aria-label="Watchlist">
                        <WatchlistTabs />
                        <AddSymbol />
                        <Watchlist />
                        <ReplayBar />
                        <EventFeed />
                    </section>
                    <aside class="side">
                        <PortfolioPanel />
                        <AlertsPanel />
                        <StatsPanel stats={state.stats_view()} />
                        <ActivityLog log={Rc::clone(state.log.entries())} />
                    </aside>
                </main>
                <DetailView />
                <OrderTicket />
                <Toasts />
            </div>
        </ContextProvider<AppContext>>
    }
}
