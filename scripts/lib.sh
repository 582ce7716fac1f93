# shellcheck shell=bash
# Shared by scripts/ and bench/ (sourced, not run): installing what they need,
# idempotently.

# Runs a command as root: directly when we are root, else through sudo.
sudo_if_needed() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian packages named that are missing.
apt_install() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "installing ${missing[*]}" >&2
        sudo_if_needed apt-get update -qq
        sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
}

# Adds the Rust targets named that rustup has not installed.
rust_targets() {
    local installed target
    installed=$(rustup target list --installed 2>/dev/null || true)
    for target in "$@"; do
        grep -qx "$target" <<<"$installed" || rustup target add "$target"
    done
}

# The edge targets (docs/edge.md), by short name: the Rust target, the QEMU user-mode
# binary, the GNU triple (the cross compiler's prefix and its sysroot under /usr) and
# the Debian architecture (of the cross C library).
declare -A edge_triple=([aarch64]=aarch64-unknown-linux-gnu [riscv64]=riscv64gc-unknown-linux-gnu
                        [armv7]=armv7-unknown-linux-gnueabihf)
declare -A edge_qemu=([aarch64]=qemu-aarch64 [riscv64]=qemu-riscv64 [armv7]=qemu-arm)
declare -A edge_gnu=([aarch64]=aarch64-linux-gnu [riscv64]=riscv64-linux-gnu [armv7]=arm-linux-gnueabihf)
declare -A edge_debian=([aarch64]=arm64 [riscv64]=riscv64 [armv7]=armhf)

# The command prefix that runs a binary built for edge target $1 under QEMU.
edge_runner() {
    echo "${edge_qemu[$1]} -L /usr/${edge_gnu[$1]}"
}

# Installs what building for and running on the edge targets named needs: QEMU user
# mode, Debian's cross compilers and C libraries, the Rust targets. An unknown name is
# an error (exit 2).
edge_toolchains() {
    local arch packages=(qemu-user) targets=()
    for arch in "$@"; do
        [ -n "${edge_triple[$arch]:-}" ] || {
            echo "unknown architecture \`$arch\` (aarch64, riscv64, armv7)" >&2
            exit 2
        }
        packages+=("gcc-${edge_gnu[$arch]}" "libc6-dev-${edge_debian[$arch]}-cross")
        targets+=("${edge_triple[$arch]}")
    done
    apt_install "${packages[@]}"
    rust_targets "${targets[@]}"
}
