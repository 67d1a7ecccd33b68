//! Entry point of the wasm binary that trunk builds; everything lives in the library so it can be tested.

fn main() {
    hamster_web::run();
}
