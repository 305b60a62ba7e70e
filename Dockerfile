# Latchkey: a small runtime image around the release binary.
# Not built in CI here (the CI machines have no Docker engine); see README.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY templates ./templates
COPY static ./static
COPY migrations ./migrations
COPY benches ./benches
RUN cargo build --release --locked --bin latchkey && strip target/release/latchkey

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /data latchkey && mkdir -p /data && chown latchkey /data
COPY --from=build /src/target/release/latchkey /usr/local/bin/latchkey
USER latchkey
WORKDIR /data
ENV LATCHKEY_BIND=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///data/latchkey.db \
    LATCHKEY_LOG_FORMAT=json
EXPOSE 8080
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=3s CMD ["/bin/sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q '200' <&3"]
ENTRYPOINT ["/usr/local/bin/latchkey"]
CMD ["serve"]
