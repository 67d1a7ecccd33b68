//! Which elements are in or near the viewport, from one `IntersectionObserver` for the page. Watchlist rows use
//! it to skip rendering while far out of view (see [`crate::components::row_group`]).
//!
//! Browser glue only. Where `IntersectionObserver` is missing, [`OnScreen::new`] returns `None` and callers
//! treat everything as on screen.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{Element, IntersectionObserver, IntersectionObserverEntry, IntersectionObserverInit};
use yew::Callback;

/// The page's observer. Dropping it stops all observation.
pub(crate) struct OnScreen {
    observer: IntersectionObserver,
    registry: Rc<Registry>,
    _callback: Closure<dyn FnMut(js_sys::Array)>,
}

/// Who to tell about which element.
struct Registry {
    /// Element → id. A JS `Map`, keyed by the element object itself.
    ids: js_sys::Map,
    callbacks: RefCell<HashMap<u32, Callback<bool>>>,
    next_id: Cell<u32>,
}

impl OnScreen {
    /// `margin_px` above and below the viewport still count as on screen, so that what scrolls in has already
    /// been brought up to date.
    pub(crate) fn new(margin_px: u32) -> Option<OnScreen> {
        let registry =
            Rc::new(Registry { ids: js_sys::Map::new(), callbacks: RefCell::default(), next_id: Cell::new(0) });
        let reg = Rc::clone(&registry);
        let callback = Closure::<dyn FnMut(js_sys::Array)>::new(move |entries: js_sys::Array| {
            for entry in entries.iter() {
                let entry: IntersectionObserverEntry = entry.unchecked_into();
                let id = reg.ids.get(&entry.target()).as_f64();
                // Cloned out first: the callback may (indirectly) watch or unwatch elements.
                let callback = id.and_then(|id| reg.callbacks.borrow().get(&(id as u32)).cloned());
                if let Some(callback) = callback {
                    callback.emit(entry.is_intersecting());
                }
            }
        });
        let init = IntersectionObserverInit::new();
        init.set_root_margin(&format!("{margin_px}px 0px"));
        let observer = IntersectionObserver::new_with_options(callback.as_ref().unchecked_ref(), &init).ok()?;
        Some(OnScreen { observer, registry, _callback: callback })
    }

    /// Tells `on_change` whether `element` is on screen: once soon after this call, then at every change, until
    /// the returned [`Watch`] is dropped.
    pub(crate) fn watch(&self, element: &Element, on_change: Callback<bool>) -> Watch {
        let id = self.registry.next_id.get();
        self.registry.next_id.set(id.wrapping_add(1));
        self.registry.ids.set(element, &id.into());
        self.registry.callbacks.borrow_mut().insert(id, on_change);
        self.observer.observe(element);
        Watch { observer: self.observer.clone(), registry: Rc::clone(&self.registry), element: element.clone(), id }
    }
}

/// Identity: there is one observer per page, and props holding it compare equal while it is the same one.
impl PartialEq for OnScreen {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Drop for OnScreen {
    fn drop(&mut self) {
        self.observer.disconnect();
    }
}

/// One watched element; dropping it stops watching.
pub(crate) struct Watch {
    observer: IntersectionObserver,
    registry: Rc<Registry>,
    element: Element,
    id: u32,
}

impl Watch {
    pub(crate) fn element(&self) -> &Element {
        &self.element
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.observer.unobserve(&self.element);
        self.registry.ids.delete(&self.element);
        self.registry.callbacks.borrow_mut().remove(&self.id);
    }
}
