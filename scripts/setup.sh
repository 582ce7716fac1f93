#!/usr/bin/env bash
# Installs what building and testing wedge needs on Debian, idempotently:
# - the wasm32-wasip1/wasm32-wasip2 Rust targets (also listed in rust-toolchain.toml);
# - clang-16, lld-16, wasi-libc and the wasm32 compiler-rt, for the C guest programs;
# - docker-registry (registry v2), apache2-utils (htpasswd) and skopeo, which the image
#   tests run as a real registry, for basic auth, and as a second OCI client;
# - openssl, whose CLI makes the certificate of the `wedge serve` TLS test;
# - mosquitto and its clients, the real MQTT broker of the bridge tests.
# - containerd and runc, the real containerd the shim tests (containerd-shim-wedge-v1)
#   start under a temporary root; protobuf-compiler (protoc), which builds the
#   kubelet's CRI client those tests use (crate k8s-cri); containernetworking-plugins
#   and iproute2, for the pod network (a CNI bridge) of one of them.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib.sh
. scripts/lib.sh

rust_targets wasm32-wasip1 wasm32-wasip2

packages=(clang-16 lld-16 wasi-libc libclang-rt-16-dev-wasm32 docker-registry apache2-utils skopeo openssl mosquitto mosquitto-clients containerd runc protobuf-compiler containernetworking-plugins iproute2)
apt_install "${packages[@]}"
