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

step "tests"
cargo test --workspace --locked
