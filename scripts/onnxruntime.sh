#!/usr/bin/env bash
# Prints the path of an onnxruntime shared library for wedge's optional onnxruntime
# WASI-NN backend (`--features onnxruntime`, `ORT_DYLIB_PATH`), installing the PyPI wheel
# (which ships libonnxruntime.so) into a virtual environment under target/ the first
# time. Idempotent. Usage: export ORT_DYLIB_PATH=$(bash scripts/onnxruntime.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
version=1.32.0
venv=target/onnxruntime-venv
if [ ! -x "$venv/bin/python3" ]; then
    if ! python3 -m venv "$venv" >&2; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
        python3 -m venv "$venv" >&2
    fi
fi
if ! "$venv/bin/python3" -c "import onnxruntime" 2>/dev/null; then
    "$venv/bin/pip" install -q "onnxruntime==$version" >&2
fi
library=$(ls "$PWD/$venv"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* | head -1)
[ -f "$library" ] || { echo "onnxruntime.sh: no libonnxruntime.so in $venv" >&2; exit 1; }
echo "$library"
