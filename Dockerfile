# syntax=docker/dockerfile:1
# The kinto-rs image: kinto-gateway, kinto-shard, kinto-operator and the all-in-one kinto, run as a non-root user.
#   docker build -t kinto-rs:0.1.0 --build-arg KINTO_RS_COMMIT=$(git rev-parse HEAD) .
# The Helm chart (helm/kinto-rs) runs the binaries by name; settings come as KINTO_* variables.

# The toolchain the project is built and tested with (rust-version in Cargo.toml is only the floor).
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
# aws-lc-sys (rustls' crypto provider) and mimalloc compile C code: the image has a C compiler, and cmake
# lets aws-lc-sys use its cmake build where its own one does not cover the platform.
# Debian packages are not pinned (DL3008): a stable point release drops the old versions; the tag pins Debian.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Reported by GET /__version__.
ARG KINTO_RS_COMMIT=unknown
ENV KINTO_RS_COMMIT=${KINTO_RS_COMMIT}
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p kinto-gateway -p kinto-shard -p kinto-operator -p kinto \
 && mkdir -p /out \
 && for bin in kinto-gateway kinto-shard kinto-operator kinto; do \
      cp "target/release/$bin" /out/ && strip --strip-debug "/out/$bin"; \
    done

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 kinto \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin kinto \
 && mkdir -p /data \
 && chown 10001:10001 /data
COPY --from=build /out/ /usr/local/bin/
# The embedded store; the chart mounts a PersistentVolume here.
VOLUME /data
WORKDIR /data
ENV KINTO_DATA_DIR=/data
USER 10001:10001
EXPOSE 8888 9000
# The binaries stop cleanly on SIGTERM as PID 1. The chart names the binary to run; by hand, e.g.:
#   docker run -p 8888:8888 -e KINTO_BIND=0.0.0.0:8888 kinto-rs:0.1.0 kinto
CMD ["kinto", "--help"]
