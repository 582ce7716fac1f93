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

sudo_if_needed() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

installed_targets=$(rustup target list --installed 2>/dev/null || true)
for target in wasm32-wasip1 wasm32-wasip2; do
    if ! grep -qx "$target" <<<"$installed_targets"; then
        rustup target add "$target"
    fi
done

packages=(clang-16 lld-16 wasi-libc libclang-rt-16-dev-wasm32 docker-registry apache2-utils skopeo openssl mosquitto mosquitto-clients containerd runc protobuf-compiler containernetworking-plugins iproute2)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    sudo_if_needed apt-get update -qq
    DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
