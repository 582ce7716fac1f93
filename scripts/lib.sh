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
    local installed
    installed=$(rustup target list --installed 2>/dev/null || true)
    for target in "$@"; do
        grep -qx "$target" <<<"$installed" || rustup target add "$target"
    done
}
