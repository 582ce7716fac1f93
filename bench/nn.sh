#!/usr/bin/env bash
# WASI-NN: inference of the test classifier (crates/test-programs/models/classifier.onnx,
# about 2 ms) through WASI-NN from a guest vs native tract in the same process (the
# criterion bench crates/runtime/benches/nn.rs; target: overhead <= 5%), and vs
# onnxruntime from PyPI on the same machine (reported as a ratio), and wedge's optional
# onnxruntime backend on the wheel's library. Also checks, live, that `wedge run` gives
# onnxruntime's outputs within 1e-4 on both models.
# Usage: bench/nn.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
prepare_release
# onnxruntime (with numpy) from PyPI, in the venv scripts/onnxruntime.sh keeps under target/.
ORT_DYLIB_PATH=$(bash scripts/onnxruntime.sh)
export ORT_DYLIB_PATH
python=target/onnxruntime-venv/bin/python3
models=crates/test-programs/models
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export WEDGE_ROOT=$work/root

# Correctness: wedge (both ABIs) against onnxruntime run now.
locked_cargo build --release -p wedge-test-programs --locked
out=$(ls -td target/release/build/wedge-test-programs-*/out | head -1)
tokens=(5 42 79 116 153 190 227 264 301 338 375 412 449 486 523 560)
for target in wasm32-wasip1 wasm32-wasip2; do
    guest=$out/rust-guests/$target/release/nn.wasm
    target/release/wedge run --nn-model "mnist=$models/classifier.onnx" "$guest" classify mnist \
        | sed -n 's/^logits //p' >"$work/logits-$target"
    target/release/wedge run --nn-model "minilm=$models/embedder.onnx" "$guest" embed minilm "${tokens[@]}" \
        | sed -n 's/^embedding //p' >"$work/embedding-$target"
done

# Speed: criterion, native tract vs the guests.
locked_cargo bench -p wedge-runtime --bench nn -- --noplot

# The onnxruntime backend (a build with the feature, the wheel's library): whole `wedge
# run`s of 50 and 1,050 inferences in one instance, for the time per inference.
locked_cargo build --release -p wedge -p wedge-daemon --features wedge/onnxruntime,wedge-daemon/onnxruntime --locked
guest=$out/rust-guests/wasm32-wasip1/release/nn.wasm
for backend in tract onnxruntime; do
    for n in 50 1050; do
        best=
        for _ in 1 2 3 4 5; do
            start=$(date +%s%N)
            target/release/wedge run --nn-backend "$backend" --nn-model "mnist=$models/classifier.onnx" \
                "$guest" bench mnist "$n" >/dev/null
            took=$(( $(date +%s%N) - start ))
            if [ -z "$best" ] || [ "$took" -lt "$best" ]; then best=$took; fi
        done
        echo "$best" >"$work/run-$backend-$n"
    done
done

"$python" - "$models" "$work" <<'PY'
import json, os, sys, time
import numpy as np
import onnxruntime as ort
models, work = sys.argv[1], sys.argv[2]
image = (np.arange(784) % 17 / 16.0).astype(np.float32).reshape(1, 1, 28, 28)
tokens = np.array([[(i * 37 + 5) % 1000 for i in range(16)]], dtype=np.int64)
def session(name, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(os.path.join(models, name), opts, providers=["CPUExecutionProvider"])
cls, emb = session("classifier.onnx", 1), session("embedder.onnx", 1)
want = {"logits": cls.run(None, {"image": image})[0].ravel(),
        "embedding": emb.run(None, {"tokens": tokens})[0].ravel()}
worst = 0.0
for target in ("wasm32-wasip1", "wasm32-wasip2"):
    for name, ref in want.items():
        got = np.array(open(os.path.join(work, f"{name}-{target}")).read().split(), dtype=np.float32)
        diff = float(np.max(np.abs(got - ref)))
        worst = max(worst, diff)
        print(f"{target:14} {name:9} max |wedge - onnxruntime| = {diff:.2e}")
print(f"correctness vs onnxruntime {ort.__version__}: {'ok' if worst <= 1e-4 else 'MISSED'} (tolerance 1e-4)")

def per_run(sess, feed, n=500):
    for _ in range(50):
        sess.run(None, feed)
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        sess.run(None, feed)
        samples.append(time.perf_counter() - t)
    return float(np.median(samples)) * 1e9
ort_ns = {t: per_run(session("classifier.onnx", t), {"image": image}) for t in (1, os.cpu_count())}

def slope(name):
    path = f"target/criterion/nn_classifier/{name}/new/estimates.json"
    est = json.load(open(path))
    return (est.get("slope") or est["mean"])["point_estimate"]
native = slope("native_tract")
print(f"native tract            {native / 1e6:8.3f} ms per inference")
for abi in ("wasip1", "wasip2"):
    guest = slope(f"wasi_nn_{abi}")
    over = (guest / native - 1) * 100
    print(f"WASI-NN guest ({abi})   {guest / 1e6:8.3f} ms  overhead {over:+.1f}% "
          f"(target <= 5%) {'ok' if over <= 5 else 'MISSED'}")
def per_inference(backend):
    few, many = (int(open(os.path.join(work, f"run-{backend}-{n}")).read()) for n in (50, 1050))
    return (many - few) / 1000
for backend in ("tract", "onnxruntime"):
    ns = per_inference(backend)
    print(f"wedge run --nn-backend {backend:11} {ns / 1e6:8.3f} ms per inference (wasip1 guest, whole runs)")
print(f"onnxruntime backend / onnxruntime from Python (1 thread) = "
      f"{per_inference('onnxruntime') / ort_ns[1]:.2f}x")
for threads, ns in ort_ns.items():
    print(f"onnxruntime {threads} thread(s)  {ns / 1e6:8.3f} ms  "
          f"wedge guest (wasip2) / onnxruntime = {slope('wasi_nn_wasip2') / ns:.2f}x")
PY
