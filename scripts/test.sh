#!/usr/bin/env bash
# Runs every test: formatting and lints, unit tests, the real relay over real sockets, the dashboard's
# in-browser tests and the end-to-end tests in headless Chromium. Installs missing tools first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH" TRUNK_SKIP_VERSION_CHECK=true TRUNK_OFFLINE=true

step() { printf '\n== %s\n' "$*"; }

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build the dashboard (dist/) and the relay binary the tests start"
trunk build
cargo build --workspace --bins --locked

step "tests: unit, relay over real sockets, provider mocks, dashboard end-to-end in headless Chromium"
cargo test --workspace --locked

step "dashboard tests inside headless Chromium (wasm-bindgen-test)"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner CHROMEDRIVER="$(command -v chromedriver)" \
    cargo test -p hamster-web --target wasm32-unknown-unknown --locked
