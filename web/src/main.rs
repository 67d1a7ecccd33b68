//! Entry point of the wasm binary that trunk builds; everything lives in the library so it can be tested.

// Talc instead of the standard library's dlmalloc: smaller in the shipped wasm and faster at the page's churn of
// small allocations (a row's strings, a frame's quotes). Single-threaded wasm only, which the page is.
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

fn main() {
    hamster_web::run();
}
