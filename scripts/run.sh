#!/usr/bin/env bash
# Runs the terminal: builds the dashboard and starts the relay serving it, with the built-in simulator, on
# http://localhost:8080 (PORT=... to change). Extra arguments go to the relay: scripts/run.sh --help
set -euo pipefail
cd "$(dirname "$0")/.."
HAMSTER_SKIP_BROWSER=1 scripts/setup.sh
export PATH="$PWD/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH" TRUNK_SKIP_VERSION_CHECK=true TRUNK_OFFLINE=true
trunk build --release
cargo build --release -p hamster-relay
echo "Hamster Terminal: open http://localhost:${PORT:-8080}"
exec target/release/hamster-relay --static-dir dist "$@"
