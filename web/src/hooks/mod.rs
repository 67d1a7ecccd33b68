//! Custom hooks that own the page's long-lived resources. Each creates its resource in an effect and releases
//! it in the effect's cleanup, never in a component body.

use std::any::Any;

use yew::functional::TearDown;

mod use_clock;
mod use_connection;
mod use_frame_batch;
mod use_history;
mod use_marks;
mod use_persistence;

pub(crate) use use_clock::use_clock;
pub(crate) use use_connection::use_connection;
pub(crate) use use_frame_batch::use_frame_batch;
pub(crate) use use_history::use_history;
pub(crate) use use_marks::use_marks;
pub(crate) use use_persistence::use_persistence;

/// An effect's dependencies with their type erased: equal when of the same type and equal.
struct AnyDeps(Box<dyn Deps>);

trait Deps {
    fn as_any(&self) -> &dyn Any;
    fn same(&self, other: &dyn Any) -> bool;
}

impl<T: PartialEq + 'static> Deps for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn same(&self, other: &dyn Any) -> bool {
        other.downcast_ref::<T>() == Some(self)
    }
}

impl PartialEq for AnyDeps {
    fn eq(&self, other: &AnyDeps) -> bool {
        self.0.same(other.0.as_any())
    }
}

/// An effect as [`use_effect_dyn`] hands it to yew: boxed, and its cleanup boxed too.
type DynEffect = Box<dyn FnOnce(&AnyDeps) -> Box<dyn FnOnce()>>;

/// `use_effect_with` with the effect and its dependencies boxed. yew compiles its effect machinery (about half a
/// kilobyte of wasm) once per (deps, effect, cleanup) type, and every closure is a type of its own; boxed, all
/// effects share one copy. Runs exactly as `use_effect_with` does: after the render, again when `deps` change
/// (compared with `==`), the cleanup before the next run and at unmount.
pub(crate) fn use_effect_dyn<T, D>(
    deps: T,
    effect: impl FnOnce(&T) -> D + 'static,
) -> impl yew::functional::Hook<Output = ()>
where
    T: PartialEq + 'static,
    D: TearDown,
{
    let effect: DynEffect = Box::new(move |deps: &AnyDeps| -> Box<dyn FnOnce()> {
        // Always a `T`: these deps are the ones passed in below.
        match deps.0.as_any().downcast_ref::<T>() {
            Some(deps) => {
                let cleanup = effect(deps);
                Box::new(move || cleanup.tear_down())
            }
            None => Box::new(|| ()),
        }
    });
    yew::functional::use_effect_with(AnyDeps(Box::new(deps)), effect)
}
