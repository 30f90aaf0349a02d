# syntax=docker/dockerfile:1
# anquan-gateway image: build from the repository root (documented, not built in CI):
#   docker build -f ops/docker/gateway.Dockerfile -t anquan/gateway:0.1.0 .
# Multi-stage: the Rust toolchain stays in the builder; the runtime is
# debian:bookworm-slim with the one binary, running as an unprivileged user.

FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src
COPY . .
# --locked: exactly the versions of Cargo.lock. rustls + ring, no OpenSSL.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p anquan-gateway --bin anquan-gateway \
 && install -m 0755 target/release/anquan-gateway /usr/local/bin/anquan-gateway

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/anquan-gateway --create-home --shell /usr/sbin/nologin anquan
COPY --from=builder /usr/local/bin/anquan-gateway /usr/bin/anquan-gateway
USER 10001:10001
WORKDIR /var/lib/anquan-gateway
COPY gateway/gateway.example.toml /etc/anquan-gateway/gateway.toml
# Mount the real config over it; set gateway.data_dir = "/var/lib/anquan-gateway"
# (a volume) and [api] listen = "0.0.0.0:9464" to scrape /metrics. Secrets:
# `file:/run/secrets/NAME` (Docker/Kubernetes secrets) or `env:NAME`.
VOLUME ["/var/lib/anquan-gateway"]
EXPOSE 9464
ENTRYPOINT ["/usr/bin/anquan-gateway"]
CMD ["run", "--config", "/etc/anquan-gateway/gateway.toml"]
