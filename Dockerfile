# The `moneyhub` binary in a small image, for `moneyhub sandbox serve` and `moneyhub mirror run`.
#
#   docker build -t moneyhub .
#   docker run --rm -p 8700:8700 -e MONEYHUB_SANDBOX_HOST=0.0.0.0 \
#     -e MONEYHUB_SANDBOX_CONTROL_TOKEN=change-me moneyhub sandbox serve
#   docker run --rm -p 8090:8090 -e MONEYHUB_HEALTHCHECK_URL=http://127.0.0.1:8090/healthz \
#     moneyhub mirror run --db postgres://… --listen 0.0.0.0:8090
#
# The runtime is Debian 12 (bookworm) slim, whose glibc is the version below; the binary is
# built on the same Debian release. `.ci/run` checks that a binary built here needs no newer
# glibc than that (the GLIBC_x.y versions `objdump -T` lists) and that both stages use the
# same release.
# runtime-glibc: 2.36

FROM rust:1.89-slim-bookworm AS build
WORKDIR /src
COPY . .
# aws-lc-sys needs a C compiler (the image's gcc); no cmake or clang.
# A small binary whose backtraces still have file:line: built with line tables, then split
# (binutils' objcopy, in the image with gcc): the binary keeps its symbol table (function
# names) and no DWARF; the line tables go to `moneyhub.debug` next to it, zlib-compressed
# (std's backtrace reads zlib sections, not zstd ones), found through `.gnu_debuglink`.
# Deleting `moneyhub.debug` only loses the file:line.
ENV CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_PROFILE_RELEASE_STRIP=none
RUN cargo build --release --locked -p moneyhub-cli \
    && objcopy --only-keep-debug --compress-debug-sections=zlib target/release/moneyhub /usr/local/bin/moneyhub.debug \
    && objcopy --strip-debug --add-gnu-debuglink=/usr/local/bin/moneyhub.debug target/release/moneyhub /usr/local/bin/moneyhub \
    && chmod 0755 /usr/local/bin/moneyhub && chmod 0644 /usr/local/bin/moneyhub.debug

FROM debian:bookworm-slim
# CA roots for Moneyhub's TLS (rustls reads the system store); nothing else.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/moneyhub moneyhub
COPY --from=build /usr/local/bin/moneyhub /usr/local/bin/moneyhub.debug /usr/local/bin/
USER 10001:10001
WORKDIR /var/lib/moneyhub
# The state directory (the sync guard's history) in the user's home; the health endpoint the
# HEALTHCHECK probes (the sandbox's by default; `mirror run`: http://127.0.0.1:PORT/healthz).
ENV MONEYHUB_STATE_DIR=/var/lib/moneyhub/state \
    MONEYHUB_HEALTHCHECK_URL=http://127.0.0.1:8700/__sandbox/healthz
EXPOSE 8700 8090
# `moneyhub healthcheck` is one GET (the image has no curl): exit 0 on a 2xx answer.
HEALTHCHECK --interval=15s --timeout=6s --start-period=10s --retries=3 CMD ["moneyhub", "healthcheck"]
ENTRYPOINT ["moneyhub"]
CMD ["sandbox", "serve"]
