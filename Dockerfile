# syntax=docker/dockerfile:1
#
# The handoff image: `docker build -t handoff .` at the repository root.
#
# No Docker engine runs on the machines this repository is developed and tested on, so this file
# has never been built here. What is checked instead (deploy/kubernetes/check.py, in CI): it
# parses, hadolint finds nothing, and its user, entrypoint and command match the Deployment.
# The binary is the one the README's commands build: the release profile of Cargo.toml, built
# with `cargo build --release --locked` (--locked only refuses a Cargo.lock that is out of date).

# ---- build ------------------------------------------------------------------------------------
FROM rust:1-bookworm AS build

# rdkafka (features tokio, ssl; not cmake-build, so no cmake) builds librdkafka from source with
# its own ./configure and make, against the system OpenSSL (openssl-sys) and zlib (libz-sys), both
# found with pkg-config. rust:1-bookworm (buildpack-deps) already has gcc, make, pkg-config,
# libssl-dev and zlib1g-dev; this step fails at once, naming them, if that ever changes.
RUN if ! { pkg-config --exists openssl zlib && command -v make >/dev/null; }; then \
      echo "the build image lacks make, pkg-config, libssl-dev or zlib1g-dev" >&2; exit 1; \
    fi

WORKDIR /src
COPY . .

# The cache mounts keep crates and build outputs between builds; the binary is copied out of the
# cached target/ in the same step. Debug line tables are stripped (67 MB -> 14 MB; symbols stay,
# so a backtrace still names functions). The runtime image is Debian 12 too, so the shared
# libraries match; the one it may lack, zlib, is copied along under its multiarch path.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -D -m 0755 target/release/handoff /out/usr/local/bin/handoff \
    && strip --strip-debug /out/usr/local/bin/handoff \
    && libdir="usr/lib/$(gcc -print-multiarch)" \
    && install -D -m 0644 "/$libdir/libz.so.1" "/out/$libdir/libz.so.1"

# ---- runtime ----------------------------------------------------------------------------------
# distroless/cc: glibc, libgcc_s, OpenSSL 3 (libssl, libcrypto), CA certificates; no shell, no
# package manager. The binary needs exactly those plus zlib (ldd target/release/handoff).
FROM gcr.io/distroless/cc-debian12:nonroot

COPY --from=build /out/ /

# The numeric id of distroless's `nonroot` user: runAsNonRoot can verify a number.
USER 65532:65532
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/handoff"]
CMD ["run", "--config", "/etc/handoff/handoff.toml"]
