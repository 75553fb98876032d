# Everyday commands (https://github.com/casey/just). Each is a plain command too.

# Build the pinned upstream binaries into ~/.cache/kubelab (once; cached by version).
upstream:
    controlplane/build.sh

# Start the local control plane (reuses a healthy one).
up: upstream
    cargo run --release -- cluster up

# Stop it and remove its state.
down:
    cargo run --release -- cluster down

# Everything CI checks: format, lints, unit and integration tests.
test: upstream
    cargo fmt --all -- --check
    cargo clippy --all-targets -- -D warnings
    cargo test --locked

# Up/down times and memory of the local provider.
bench runs="5": upstream
    bench/cluster.sh {{runs}}

# kubelab vs Chainsaw vs kuttl on the same five labs, on a local node (root).
compare rounds="5": upstream
    bench/compare.sh {{rounds}}
