# syntax=docker/dockerfile:1
# anquan-monitor image: build from the repository root (documented, not built in CI):
#   docker build -f ops/docker/monitor.Dockerfile -t anquan/monitor:0.1.0 .
# Multi-stage: the Rust toolchain stays in the builder; the runtime is
# debian:bookworm-slim with the one binary, running as an unprivileged user.

FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src
COPY . .
# --locked: exactly the versions of Cargo.lock. rustls + ring, no OpenSSL.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p anquan-monitor --bin anquan-monitor \
 && install -m 0755 target/release/anquan-monitor /usr/local/bin/anquan-monitor

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/anquan-monitor --create-home --shell /usr/sbin/nologin anquan
COPY --from=builder /usr/local/bin/anquan-monitor /usr/bin/anquan-monitor
USER 10001:10001
WORKDIR /var/lib/anquan-monitor
COPY monitor/monitor.example.toml /etc/anquan-monitor/monitor.toml
# The example is refused as it is (its tokens and password are public):
# mount the real config (it holds tokens: use a secret mount) and set
# server.listen = "0.0.0.0:8088"; database.url either
# sqlite:///var/lib/anquan-monitor/monitor.db?mode=rwc (one replica, volume)
# or postgres://... (several replicas).
VOLUME ["/var/lib/anquan-monitor"]
EXPOSE 8088
ENTRYPOINT ["/usr/bin/anquan-monitor"]
CMD ["serve", "--config", "/etc/anquan-monitor/monitor.toml"]
