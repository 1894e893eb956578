# Everyday recipes for stateless-otp (https://github.com/casey/just).

# run the server in development mode (codes printed to the console)
run:
    cargo run -p otp-server -- serve --dev

# the whole test suite (as in README)
test:
    cargo test --workspace --all-features

# the whole suite with every real component required
e2e:
    OTP_E2E_REQUIRE_ALL=1 cargo test --workspace --all-features

# formatting and lints as CI runs them
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets --all-features -- -D warnings

fmt:
    cargo fmt --all

# criterion benchmarks of the engine, tokens and limiter
bench:
    cargo bench -p otp-core
    cargo bench -p otp-ratelimit --all-features

# CI as it runs on a fresh machine
ci:
    bash .ci/run

# load test against nginx (bench/load.py; `just load --quick` for a smoke run)
load *ARGS:
    python3 bench/load.py {{ARGS}}

# soak: release server under paced load for 10 minutes (SOAK_SECONDS to change); not part of CI
soak:
    bash bench/soak.sh
