# Hamster Terminal: one image with the relay and the dashboard it serves.
#
#   docker build -t hamster-terminal .
#   docker run --rm -p 8080:8080 hamster-terminal      # then open http://localhost:8080
#
# Layers are ordered from slowest-changing to fastest-changing so that a code-only change rebuilds only the
# workspace crates: build tools, then dependencies (via cargo-chef, keyed on Cargo.toml/Cargo.lock only), then
# the source. No BuildKit cache mounts: their syntax differs between Render and Railway, plain layers work on both.

# ---- Stage 1: toolchain and build tools (changes only when a version below changes) ----------------------------
FROM rust:1.95-bookworm AS chef
# The wasm-bindgen CLI must equal the `wasm-bindgen` version pinned in web/Cargo.toml (`=0.2.130`); trunk refuses
# a mismatch. Bump both together. It is installed without --locked, as its own lockfile can lag the toolchain.
RUN rustup target add wasm32-unknown-unknown \
 && cargo install cargo-chef --version 0.1.78 --locked \
 && cargo install trunk --version 0.21.14 --locked \
 && cargo install wasm-bindgen-cli --version 0.2.130
# Skip trunk's online version check on every build: the tools above are pinned on purpose.
ENV TRUNK_SKIP_VERSION_CHECK=true
WORKDIR /src

# ---- npm packages the dashboard bundles: the chart library, pinned in tools/package-lock.json ------------------
# (binaryen is a devDependency for local builds; here trunk fetches the wasm-opt that Trunk.toml pins.) esbuild-wasm
# bundles the part of the chart library the page uses into dist/lightweight-charts.js.
FROM node:22-bookworm-slim AS npm
WORKDIR /src/tools
COPY tools/package.json tools/package-lock.json tools/lightweight-charts.entry.js ./
RUN npm ci --omit=dev --no-audit --no-fund && npm run chart --silent

# ---- Stage 2: the dependency "recipe" (only Cargo manifests and the lockfile end up in recipe.json) -------------
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# ---- Stage 3: build dependencies, then the workspace ------------------------------------------------------------
FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# Compiles every third-party crate of the relay (native) and of the dashboard (wasm32) with the same profile and
# target the real builds below use. This layer is reused as long as recipe.json is byte-identical.
RUN cargo chef cook --release --locked -p hamster-relay --recipe-path recipe.json \
 && cargo chef cook --release --locked --target wasm32-unknown-unknown -p hamster-web --recipe-path recipe.json
COPY . .
COPY --from=npm /src/tools/dist /src/tools/dist
# Node, esbuild and zopfli for Trunk.toml's post-build hook (tools/release-hook.mjs): short import names in the wasm
# and its glue, the glue minified, and gzip and brotli copies of the build for the relay to serve as they are.
COPY --from=npm /usr/local/bin/node /usr/local/bin/node
COPY --from=npm /src/tools/node_modules /src/tools/node_modules
# Trunk.toml at the workspace root drives the dashboard build and writes it to /src/dist.
RUN trunk build --release \
 && cargo build --release --locked -p hamster-relay

# ---- Stage 4: runtime -------------------------------------------------------------------------------------------
# Same Debian release as the builder, so the relay's glibc matches. No compilers, no sources.
FROM debian:bookworm-slim AS runtime
# ca-certificates: providers are reached over TLS (wss://, https://).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin hamster
WORKDIR /app
COPY --from=builder /src/target/release/hamster-relay /app/hamster-relay
COPY --from=builder /src/dist /app/dist
USER hamster
# PORT is a default only: Render and Railway inject their own PORT and the relay listens on it (HOST defaults to
# 0.0.0.0). JSON logs are what both platforms' log viewers parse best.
ENV PORT=8080 \
    STATIC_DIR=/app/dist \
    LOG_FORMAT=json
EXPOSE 8080
# No HEALTHCHECK: the slim image has no curl, and both platforms probe GET /healthz themselves.
# Exec form, so the relay is PID 1 and receives SIGTERM directly for its graceful shutdown.
CMD ["/app/hamster-relay"]
