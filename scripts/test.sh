#!/usr/bin/env bash
# Runs every test: formatting and lints, unit tests, the real relay over real sockets, the dashboard's
# in-browser tests and the end-to-end tests in headless Chromium. Installs missing tools first.
#
#   --quick   the inner loop while editing: formatting, clippy and the unit tests of shared, relay and web (a minute
#             or two once built). No setup, no relay over sockets, no browser: run the whole suite before pushing.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=0
case "${1:-}" in
    --quick) QUICK=1 ;;
    "") ;;
    *) echo "usage: scripts/test.sh [--quick]" >&2; exit 2 ;;
esac
[ "$QUICK" = 1 ] || scripts/setup.sh --for-tests
# Every test runner's output also goes here, so the run can end with one total.
results=$(mktemp)
trap 'rm -f "$results"' EXIT
export PATH="$PWD/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH" TRUNK_SKIP_VERSION_CHECK=true TRUNK_OFFLINE=true

step() { printf '\n== %s\n' "$*"; }

# One closing line for the whole run: the sum of every runner's "test result" line.
total() {
    awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
         END { printf "all suites: %d passed, %d failed\n", p, f }' "$results"
}

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

if [ "$QUICK" = 1 ]; then
    step "unit tests: shared, relay, web (quick; the full suite is scripts/test.sh without --quick)"
    cargo test -p hamster-shared -p hamster-relay -p hamster-web --locked 2>&1 | tee -a "$results"
    total
    exit 0
fi

step "supply chain: licences, bans and sources (advisories need GitHub: docs/fuzzing.md)"
cargo deny --offline check --hide-inclusion-graph bans licenses sources

step "build the dashboard (dist/) and the relay binary the tests start"
trunk build
cargo build --workspace --bins --locked

step "benchmark smoke: every scenario, small, against the relay and the Node peer (fails if one delivered nothing)"
cargo run -q -p hamster-bench --locked -- --smoke --target relay,node \
    --relay-bin "${CARGO_TARGET_DIR:-target}/debug/hamster-relay"

step "benchmark smoke, cluster: two relays on the bench's own redis-server, exactly one upstream connection (~8 s)"
cargo run -q -p hamster-bench --locked -- --smoke --cluster 2 fanout \
    --relay-bin "${CARGO_TARGET_DIR:-target}/debug/hamster-relay"

step "tests: unit, relay over real sockets, provider mocks, dashboard end-to-end in headless Chromium"
cargo test --workspace --locked 2>&1 | tee -a "$results"

step "the shipped dashboard (trunk build --release: LTO and wasm-opt, what scripts/run.sh and the image serve) in headless Chromium"
release_dist="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/dist-release"
trunk build --release --dist "$release_dist"
HAMSTER_DIST="$release_dist" cargo test -p hamster-tests --locked --test dashboard_chart --test dashboard_alerts \
    --test dashboard_tabs 2>&1 | tee -a "$results"

step "dashboard tests inside headless Chromium (wasm-bindgen-test)"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner CHROMEDRIVER="$(command -v chromedriver)" \
    cargo test -p hamster-web --target wasm32-unknown-unknown --locked --lib --tests 2>&1 | tee -a "$results"

total
