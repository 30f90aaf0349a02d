# syntax=docker/dockerfile:1
# anquan-sim image: build from the repository root (documented, not built in CI):
#   docker build -f ops/docker/sim.Dockerfile -t anquan/sim:0.1.0 .
# Multi-stage: the Rust toolchain stays in the builder; the runtime is
# debian:bookworm-slim with the one binary, running as an unprivileged user.

FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src
COPY . .
# --locked: exactly the versions of Cargo.lock. rustls + ring, no OpenSSL.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p anquan-sim --bin anquan-sim \
 && install -m 0755 target/release/anquan-sim /usr/local/bin/anquan-sim

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/anquan-sim --create-home --shell /usr/sbin/nologin anquan
COPY --from=builder /usr/local/bin/anquan-sim /usr/bin/anquan-sim
USER 10001:10001
WORKDIR /var/lib/anquan-sim
COPY simulator/scenarios /usr/share/anquan-sim/scenarios
COPY simulator/budget /usr/share/anquan-sim/budget
ENTRYPOINT ["/usr/bin/anquan-sim"]
CMD ["--help"]
