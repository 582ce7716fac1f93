#!/usr/bin/env python3
"""Generate the tiny ONNX models used by wedge's WASI-NN tests and benchmarks.

What it makes (in OUT_DIR, default crates/test-programs/models):
  classifier.onnx  input `image` f32 [1,1,28,28] -> output `logits` f32 [1,10]
                   Conv(1->32,3x3,pad1)+Relu, Conv(32->48,3x3,pad1)+Relu,
                   5x [Conv(48->48,3x3,pad1)+Relu] sharing one weight tensor,
                   MaxPool 4x4 stride 4 (-> 48x7x7), Flatten, Gemm(2352->10).
                   ~235 KB; ~2.2 ms per inference in tract 0.21 (single thread,
                   release build), so it is usable as a benchmark workload.
  embedder.onnx    input `tokens` i64 [1,16] -> output `embedding` f32 [1,32]
                   Gather([1000,32] table), ReduceMean over tokens, MatMul [32,32],
                   Tanh, L2-normalize (x / sqrt(sum(x*x))).
  hostile/*.onnx   tiny models that make an ONNX runtime materialise a 64 MiB f32
                   tensor (4096x4096) while it loads: constant-of-shape, expand, tile,
                   range (folded constants) and initializer (an initializer declaring
                   [20000, 20000] with 4 bytes of data). Each takes `image` f32
                   [1,1,28,28] and gives `logits` f32 [1,10] (the first ten pixels plus
                   the big tensor's sum, zero), so a runtime that loads them can
                   classify with them. Made with onnx alone: `nn-models.py --hostile`.
  reference.json   onnxruntime outputs for the canonical inputs:
                   classifier x[i] = (i % 17) / 16 for i in 0..784 (row-major),
                   embedder tokens[i] = (i*37 + 5) % 1000 for i in 0..16.

Weights are random (numpy seed 0x5eed), NOT pretrained; the outputs are meaningless
but deterministic. Models use opset 13 / IR version 7 and only common ops, so
tract-onnx 0.21 and onnxruntime both load them.

Run with (PyPI only):
  python3 -m venv /tmp/nn-venv && /tmp/nn-venv/bin/pip install onnx numpy onnxruntime
  /tmp/nn-venv/bin/python3 scripts/nn-models.py [--hostile] [OUT_DIR]
(`--hostile` makes only the hostile models, and needs only onnx and numpy.)

Last run with: python 3.11.7, onnx 1.23.2, numpy 2.4.6, onnxruntime 1.32.0
(protobuf 7.36.2). The model files are byte-for-byte deterministic for a given
onnx version; reference.json records the onnxruntime version used.
"""

import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
IR_VERSION = 7
SEED = 0x5EED

# Classifier shape (tuned so one tract inference takes ~1.5-5 ms single-threaded
# while the file stays under ~300 KB). Conv compute per stored weight is capped
# at 28*28 MACs, so extra work comes from re-applying the tied C2->C2 conv, and
# the 4x4 pool keeps the Gemm weight (the bulk of the file) small.
C1, C2, REPEAT, POOL = 32, 48, 5, 4


def init(name, arr):
    return numpy_helper.from_array(np.ascontiguousarray(arr), name)


def he(rng, shape, fan_in):
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def finish(graph, path):
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="wedge-nn-models",
        producer_version="1",
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return path


def make_classifier(rng, path):
    inits, nodes = [], []

    def conv(x, w, b, y):
        nodes.append(helper.make_node(
            "Conv", [x, w, b], [y + ".conv"],
            kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]))
        nodes.append(helper.make_node("Relu", [y + ".conv"], [y]))
        return y

    def conv_params(name, cin, cout):
        inits.append(init(name + ".w", he(rng, (cout, cin, 3, 3), cin * 9)))
        inits.append(init(name + ".b", (rng.standard_normal(cout) * 0.05).astype(np.float32)))
        return name + ".w", name + ".b"

    x = conv("image", *conv_params("conv1", 1, C1), "h1")
    x = conv(x, *conv_params("conv2", C1, C2), "h2")
    # One C2->C2 conv applied REPEAT times with the same (tied) weights: adds
    # compute without growing the file.
    w3, b3 = conv_params("conv3", C2, C2)
    for r in range(REPEAT):
        x = conv(x, w3, b3, f"h3.{r}")
    nodes.append(helper.make_node(
        "MaxPool", [x], ["pool"], kernel_shape=[POOL, POOL], strides=[POOL, POOL]))
    nodes.append(helper.make_node("Flatten", ["pool"], ["flat"], axis=1))
    side = 28 // POOL
    feat = C2 * side * side
    inits += [init("fc.w", he(rng, (10, feat), feat)),
              init("fc.b", (rng.standard_normal(10) * 0.05).astype(np.float32))]
    nodes.append(helper.make_node(
        "Gemm", ["flat", "fc.w", "fc.b"], ["logits"], transB=1))
    graph = helper.make_graph(
        nodes, "classifier",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
        inits)
    return finish(graph, path)


def make_embedder(rng, path):
    table = (rng.standard_normal((1000, 32)) * 0.5).astype(np.float32)
    proj = he(rng, (32, 32), 32)
    inits = [init("emb.table", table), init("proj.w", proj),
             init("sum.axes", np.array([1], dtype=np.int64))]
    nodes = [
        helper.make_node("Gather", ["emb.table", "tokens"], ["gathered"], axis=0),  # [1,16,32]
        helper.make_node("ReduceMean", ["gathered"], ["pooled"], axes=[1], keepdims=0),  # [1,32]
        helper.make_node("MatMul", ["pooled", "proj.w"], ["projected"]),
        helper.make_node("Tanh", ["projected"], ["act"]),
        helper.make_node("Mul", ["act", "act"], ["sq"]),
        # opset 13 ReduceSum takes its axes as an input (tract-onnx 0.21 supports this).
        helper.make_node("ReduceSum", ["sq", "sum.axes"], ["sumsq"], keepdims=1),  # [1,1]
        helper.make_node("Sqrt", ["sumsq"], ["norm"]),
        helper.make_node("Div", ["act", "norm"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes, "embedder",
        [helper.make_tensor_value_info("tokens", TensorProto.INT64, [1, 16])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 32])],
        inits)
    return finish(graph, path)


def canonical_image():
    return (np.arange(784) % 17).astype(np.float32).reshape(1, 1, 28, 28) / np.float32(16.0)


def canonical_tokens():
    return np.array([[(i * 37 + 5) % 1000 for i in range(16)]], dtype=np.int64)


# The side of the square tensor the hostile models make: 4096^2 f32 = 64 MiB.
BOMB_SIDE = 4096


def make_hostile(out):
    """Writes the hostile models (see the docstring) to OUT/hostile."""
    out = os.path.join(out, "hostile")
    os.makedirs(out, exist_ok=True)
    side, n = BOMB_SIDE, BOMB_SIDE * BOMB_SIDE
    i64 = lambda name, values: init(name, np.array(values, dtype=np.int64))
    f32 = lambda name, values: init(name, np.array(values, dtype=np.float32))
    # `init` makes arrays at least 1-D; Range takes scalars.
    scalar = lambda name, value: numpy_helper.from_array(np.array(value, dtype=np.float32), name)
    # logits = image[0, :10] + sum(big), the big tensor coming from `big_nodes`.
    def bomb(name, big_nodes, inits, checked=True):
        nodes = list(big_nodes) + [
            helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
            helper.make_node("Reshape", ["image", "flat_shape"], ["flat"]),
            helper.make_node("Slice", ["flat", "starts", "ends", "axes"], ["first"]),
            helper.make_node("Add", ["first", "total"], ["logits"]),
        ]
        inits = list(inits) + [
            i64("flat_shape", [1, 784]), i64("starts", [0]), i64("ends", [10]),
            i64("axes", [1]),
        ]
        graph = helper.make_graph(
            nodes, name,
            [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 28, 28])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
            inits)
        path = os.path.join(out, name + ".onnx")
        if checked:
            return finish(graph, path)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = IR_VERSION
        onnx.save(model, path)
        return path

    zero = helper.make_tensor("value", TensorProto.FLOAT, [1], [0.0])
    bomb("constant-of-shape",
         [helper.make_node("ConstantOfShape", ["shape"], ["big"], value=zero)],
         [i64("shape", [side, side])])
    bomb("expand", [helper.make_node("Expand", ["one", "shape"], ["big"])],
         [f32("one", [0.0]), i64("shape", [side, side])])
    bomb("tile", [helper.make_node("Tile", ["one", "repeats"], ["big"])],
         [f32("one", [[0.0]]), i64("repeats", [side, side])])
    bomb("range", [
        helper.make_node("Range", ["start", "limit", "delta"], ["ramp"]),
        helper.make_node("Mul", ["ramp", "nothing"], ["big"]),
    ], [scalar("start", 0.0), scalar("limit", float(n)), scalar("delta", 1.0),
        scalar("nothing", 0.0)])
    lie = TensorProto(name="big", data_type=TensorProto.FLOAT, dims=[20000, 20000],
                      raw_data=b"\0\0\0\0")
    bomb("initializer", [], [lie], checked=False)
    for name in sorted(os.listdir(out)):
        p = os.path.join(out, name)
        print(f"{p}: {os.path.getsize(p)} bytes")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default = os.path.join(here, "..", "crates", "test-programs", "models")
    args = [a for a in sys.argv[1:] if a != "--hostile"]
    out = os.path.abspath(args[0] if args else default)
    os.makedirs(out, exist_ok=True)
    make_hostile(out)
    if "--hostile" in sys.argv[1:]:
        return

    rng = np.random.default_rng(SEED)
    cls = make_classifier(rng, os.path.join(out, "classifier.onnx"))
    emb = make_embedder(rng, os.path.join(out, "embedder.onnx"))

    import onnxruntime as ort

    def run(path, feeds):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        return sess.run(None, feeds)[0]

    logits = run(cls, {"image": canonical_image()})
    tokens = canonical_tokens()
    embedding = run(emb, {"tokens": tokens})
    assert logits.shape == (1, 10) and logits.dtype == np.float32
    assert embedding.shape == (1, 32) and embedding.dtype == np.float32

    ref = {
        "classifier": {
            "input": "x[i] = (i % 17) / 16",
            "logits": [float(v) for v in logits.reshape(-1)],
        },
        "embedder": {
            "tokens": [int(t) for t in tokens.reshape(-1)],
            "embedding": [float(v) for v in embedding.reshape(-1)],
        },
        "onnxruntime": ort.__version__,
    }
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f, indent=2)
        f.write("\n")
    for name in ("classifier.onnx", "embedder.onnx", "reference.json"):
        p = os.path.join(out, name)
        print(f"{p}: {os.path.getsize(p)} bytes")


if __name__ == "__main__":
    main()
