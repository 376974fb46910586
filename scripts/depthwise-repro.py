#!/usr/bin/env python3
"""The minimal reproduction of tract's depthwise-convolution gap (README "Where tract spends a
frame"): single-Conv ONNX files with MobileNetV2's depthwise shapes, timed in ONNX Runtime
here and in plain tract by `crates/csra-edge/examples/tract_depthwise.rs`, one thread each,
interleaved rounds.

A benchmark, not a test.

    cargo build --release -p csra-edge --example tract_depthwise
    .venv/bin/python scripts/depthwise-repro.py --out /tmp/dw
"""

import argparse
import importlib
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# (channels, side, stride) of MobileNetV2's depthwise 3x3 convolutions at 224: the 112x112
# stride-2 one of block 2, the 56x56 one of block 3 and the 14x14 one of block 14.
# side-by-side.py's ONNX Runtime timing (a user's session settings, csra-edge bench's input).
sys.path.insert(0, str(Path(__file__).resolve().parent))
side_by_side = importlib.import_module("side-by-side")

SHAPES = [(96, 112, 2), (144, 56, 1), (576, 14, 1)]


def depthwise_model(channels, side, stride, path):
    """One Conv node: 3x3, group = channels, padding 1, with a bias."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((channels, 1, 3, 3)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.standard_normal(channels).astype(np.float32), "b")
    out_side = (side + 2 - 3) // stride + 1
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], group=channels, kernel_shape=[3, 3],
                            pads=[1, 1, 1, 1], strides=[stride, stride])
    graph = helper.make_graph(
        [node], "depthwise",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, side, side])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, out_side, out_side])],
        [weight, bias])
    # IR version 8 (onnx 1.10): what opset 13 needs and every runtime here reads.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, path)


def tract_p50(example, path, runs):
    out = subprocess.run([example, str(path), str(runs)], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{example} {path} failed:\n{out.stderr}")
    return float(out.stdout.split("p50 ")[1].split(" ms")[0])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="folder for the ONNX files")
    p.add_argument("--example", default="target/release/examples/tract_depthwise")
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print("| depthwise 3x3 | MACs | ONNX Runtime ms | tract ms | tract / ONNX Runtime |")
    print("|---|---|---|---|---|")
    for channels, side, stride in SHAPES:
        path = args.out / f"dw-{channels}x{side}-s{stride}.onnx"
        depthwise_model(channels, side, stride, path)
        ort, tract = [], []
        for _ in range(args.rounds):
            ort.append(side_by_side.python_onnxruntime(path, [1, channels, side, side], 1, 10, args.runs))
            tract.append(tract_p50(args.example, path, args.runs))
        o, t = statistics.median(ort), statistics.median(tract)
        out_side = (side - 1) // stride + 1
        macs = channels * out_side * out_side * 9
        print(f"| {channels}×{side}×{side}, stride {stride} | {macs / 1e6:.1f} M | {o:.3f} | {t:.3f} | {t / o:.2f}× |")


if __name__ == "__main__":
    main()
