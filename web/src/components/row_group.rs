//! A group of consecutive watchlist rows in a `<tbody>` of its own, which renders only while it is in or near
//! the viewport.
//!
//! With hundreds of symbols ticking, most rows are out of view, and rendering them would be most of the page's
//! work for nothing anyone sees. A group out of view keeps its newest props without rendering them and catches
//! up in one render when [`OnScreen`] reports it near the viewport again, which (thanks to a margin) happens
//! before it scrolls in. The browser skips the style, layout and paint of groups out of view as well
//! (`content-visibility: auto` in `styles.css`). Grouping rows keeps the number of elements the browser and
//! the observer track small (one per [`GROUP_ROWS`] rows), and lets the watchlist skip a whole out-of-view
//! group with one props comparison.
//!
//! A group also reports when its rows come into view or leave it (and its rows again when they change), so the
//! connection can ask the relay for rows out of view at a low rate.

use std::rc::Rc;

use hamster_shared::Symbol;
use yew::prelude::*;

use super::quote_row::QuoteRow;
use crate::services::on_screen::{OnScreen, Watch};
use crate::state::Row;

/// Rows per group.
pub(crate) const GROUP_ROWS: usize = 10;

/// A row as the group hands it to [`QuoteRow`].
#[derive(Clone)]
pub(crate) struct GroupRow {
    pub(crate) row: Rc<Row>,
    pub(crate) stale: bool,
}

impl PartialEq for GroupRow {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.row, &other.row) && self.stale == other.stale
    }
}

#[derive(Properties, PartialEq)]
pub(crate) struct RowGroupProps {
    pub(crate) rows: Vec<GroupRow>,
    pub(crate) on_remove: Callback<Symbol>,
    pub(crate) on_replace: Callback<(Symbol, Symbol)>,
    /// The page's viewport observer; without one the group always renders.
    pub(crate) on_screen: Option<Rc<OnScreen>>,
    /// Told the group's symbols and whether they are in (or near) view, whenever that or the symbols change.
    pub(crate) on_visible: Callback<(Vec<Symbol>, bool)>,
}

impl RowGroupProps {
    fn symbols(&self) -> Vec<Symbol> {
        self.rows.iter().map(|r| r.row.symbol.clone()).collect()
    }
}

pub(crate) struct RowGroup {
    node: NodeRef,
    /// In or near the viewport. Every group starts so, to render once; the observer then reports the truth.
    on_screen: bool,
    /// Props changed while off screen: render when back on screen.
    behind: bool,
    watch: Option<Watch>,
}

pub(crate) enum Msg {
    OnScreen(bool),
}

impl Component for RowGroup {
    type Message = Msg;
    type Properties = RowGroupProps;

    fn create(_ctx: &Context<Self>) -> Self {
        RowGroup { node: NodeRef::default(), on_screen: true, behind: false, watch: None }
    }

    fn changed(&mut self, ctx: &Context<Self>, old: &RowGroupProps) -> bool {
        let props = ctx.props();
        // Rows move between groups when one above is removed: the group's new rows take its visibility.
        if !self.on_screen && old.rows.iter().map(|r| &r.row.symbol).ne(props.rows.iter().map(|r| &r.row.symbol)) {
            props.on_visible.emit((props.symbols(), self.on_screen));
        }
        self.behind = !self.on_screen;
        self.on_screen
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        let Msg::OnScreen(on_screen) = msg;
        if on_screen != self.on_screen {
            ctx.props().on_visible.emit((ctx.props().symbols(), on_screen));
        }
        self.on_screen = on_screen;
        let catch_up = on_screen && self.behind;
        if catch_up {
            self.behind = false;
        }
        catch_up
    }

    fn rendered(&mut self, ctx: &Context<Self>, _first_render: bool) {
        let (Some(observer), Some(element)) = (&ctx.props().on_screen, self.node.cast::<web_sys::Element>()) else {
            return;
        };
        if self.watch.as_ref().is_none_or(|w| *w.element() != element) {
            self.watch = Some(observer.watch(&element, ctx.link().callback(Msg::OnScreen)));
        }
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let props = ctx.props();
        html! {
            <tbody ref={self.node.clone()} class="group" role="rowgroup">
                { for props.rows.iter().map(|r| html! {
                    <QuoteRow
                        key={r.row.symbol.as_str()}
                        row={Rc::clone(&r.row)}
                        stale={r.stale}
                        on_remove={props.on_remove.clone()}
                        on_replace={props.on_replace.clone()}
                    />
                }) }
            </tbody>
        }
    }
}
