#!/usr/bin/env bash
# Installs what acq-dist needs on a Debian machine with Swift, then builds it in release mode.
# Safe to run again: it installs only what is missing. Sourced by run.sh and test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libopenblas-dev libopenmpi-dev openmpi-bin dataset-fashion-mnist zlib1g-dev pkg-config)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "setup: need root or sudo to install ${missing[*]}" >&2; exit 1; }
        sudo="sudo"
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v swift >/dev/null || { echo "setup: swift is not on PATH (install Swift 6.1 or newer)" >&2; exit 1; }
echo "setup: building (release)" >&2
# Progress lines of the compiler are dropped; errors and warnings stay.
if ! swift build -c release "$@" 2>&1 | { grep -vE '^\[[0-9]+/[0-9]+\] (Compiling|Emitting|Write|Linking)' || true; } >&2; then
    echo "setup: build failed" >&2
    exit 1
fi
