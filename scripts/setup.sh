#!/usr/bin/env bash
# Installs what a fresh machine lacks to build, run and test Hamster Terminal, and skips whatever is already
# there at the right version. Used by scripts/run.sh and scripts/test.sh (and through it by CI, .ci/run).
#
#   --for-tests             also install what only the test suite uses (cargo-deny, the Node benchmark peer)
#   HAMSTER_SKIP_BROWSER=1  skip Chromium/ChromeDriver (not needed to run the terminal, only for browser tests)
set -euo pipefail
FOR_TESTS=0
[ "${1:-}" = --for-tests ] && FOR_TESTS=1
cd "$(dirname "$0")/.."

TRUNK_VERSION=0.21.14
CARGO_DENY_VERSION=0.20.2
# wasm-bindgen's CLI must equal the crate exactly; web/Cargo.toml pins the crate and is the one source.
WASM_BINDGEN_VERSION=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' web/Cargo.toml)
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '[setup] %s\n' "$*"; }
has_version() { command -v "$1" >/dev/null 2>&1 && "$1" --version 2>/dev/null | grep -qF "$2"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
fi

if ! has_version trunk "$TRUNK_VERSION"; then
    say "installing trunk $TRUNK_VERSION (a few minutes, once)"
    cargo install trunk --version "$TRUNK_VERSION" --locked
fi

if [ -z "$WASM_BINDGEN_VERSION" ]; then
    echo "[setup] cannot read the pinned wasm-bindgen version from web/Cargo.toml" >&2
    exit 1
fi
if ! has_version wasm-bindgen "$WASM_BINDGEN_VERSION"; then
    say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes, once)"
    # Not --locked: the CLI's own lockfile pins a crate version the registry no longer serves.
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

# From npm, pinned in tools/package-lock.json: wasm-opt for release builds (binaryen; Trunk.toml pins the version
# trunk accepts, Debian's binaryen is too old to parse current Rust wasm), the dashboard's chart library
# (lightweight-charts), esbuild-wasm, which bundles the part of it the page uses into
# tools/dist/lightweight-charts.js (web/index.html copies that into the build), and @gfx/zopfli (zopfli compiled to
# wasm), which writes the release build's gzip copies.
BINARYEN_VERSION=$(sed -n 's/.*"binaryen": "\([0-9]*\)\..*/\1/p' tools/package.json)
npm_version() { sed -n "s|.*\"$1\": \"\([0-9.]*\)\".*|\1|p" tools/package.json; }
npm_has() { grep -qF "\"version\": \"$(npm_version "$1")\"" "tools/node_modules/$1/package.json" 2>/dev/null; }
if ! tools/node_modules/.bin/wasm-opt --version 2>/dev/null | grep -qF "version_$BINARYEN_VERSION" \
    || ! npm_has lightweight-charts || ! npm_has esbuild-wasm || ! npm_has @gfx/zopfli; then
    if ! command -v npm >/dev/null 2>&1; then
        say "installing Node.js and npm from Debian (to run binaryen's wasm-opt and esbuild)"
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq nodejs npm >/dev/null
    fi
    say "installing wasm-opt (binaryen $BINARYEN_VERSION), lightweight-charts, esbuild-wasm and zopfli from npm into tools/node_modules"
    npm ci --prefix tools --no-audit --no-fund --loglevel=error
fi
CHART_BUNDLE=tools/dist/lightweight-charts.js
if [ ! -s "$CHART_BUNDLE" ] || [ tools/lightweight-charts.entry.js -nt "$CHART_BUNDLE" ] \
    || [ tools/package-lock.json -nt "$CHART_BUNDLE" ]; then
    say "bundling the chart library for the dashboard ($CHART_BUNDLE)"
    npm run chart --prefix tools --silent
fi

if [ "${HAMSTER_SKIP_BROWSER:-0}" != 1 ]; then
    if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
        say "installing Chromium and ChromeDriver from Debian"
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium chromium-driver >/dev/null
    fi
fi
# The cluster tests start real Redis servers (Debian's package; redis-cli comes with it).
if [ "$FOR_TESTS" = 1 ] && { ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; }; then
    say "installing redis-server from Debian (for the cluster tests)"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq redis-server >/dev/null
fi
if [ "$FOR_TESTS" = 1 ] && ! has_version cargo-deny "$CARGO_DENY_VERSION"; then
    say "installing cargo-deny $CARGO_DENY_VERSION (about 9 minutes, once)"
    cargo install cargo-deny --version "$CARGO_DENY_VERSION" --locked
fi
if [ "$FOR_TESTS" = 1 ]; then
    if ! command -v npm >/dev/null 2>&1; then
        say "installing Node.js and npm from Debian (for the benchmark's Node peer)"
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq nodejs npm >/dev/null
    fi
    if [ ! -f bench/node-peer/node_modules/.package-lock.json ] \
        || [ bench/node-peer/package-lock.json -nt bench/node-peer/node_modules/.package-lock.json ]; then
        say "installing the benchmark's Node peer (npm ci)"
        (cd bench/node-peer && npm ci --no-audit --no-fund)
    fi
fi
say "ready: $(trunk --version), $(wasm-bindgen --version)$([ "$FOR_TESTS" = 1 ] && echo ", $(cargo-deny --version)")"
