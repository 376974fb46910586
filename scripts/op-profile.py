#!/usr/bin/env python3
"""Where each CPU engine spends a frame: tract (`csra-edge bench --profile-ops`) against ONNX
Runtime's own profiler (PyPI, this Python) on the same ONNX files and threads.

A benchmark, not a test. For each model it prints the milliseconds per run of three kinds of
work in both engines and their ratio: depthwise convolutions (Conv nodes with group > 1, tract's
`DepthWiseConv`), the other convolutions and matrix products (tract's im2col and `OptMatMul`), and
everything else. ONNX Runtime's kernels are told apart by their input shapes (its graph
optimisations rename and fuse nodes). `--json FILE` keeps both engines' full breakdowns.

    cargo build --release -p csra-edge
    .venv/bin/python scripts/op-profile.py models/mobilenet_v2-coco-voc-mini resnet18-max --threads 1
"""

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import onnxruntime

# side-by-side.py's model folder reader and csra-edge bench's input (its file name has a dash).
sys.path.insert(0, str(Path(__file__).resolve().parent))
side_by_side = importlib.import_module("side-by-side")

KINDS = ("depthwise conv", "other conv / matmul", "everything else")


def tract_kind(op):
    """The kind of work a tract operator of the optimised plan does."""
    if op == "DepthWiseConv":
        return KINDS[0]
    if "MatMul" in op or "Im2col" in op or op in ("Conv", "Gemm"):
        return KINDS[1]
    return KINDS[2]


def ort_kind(event):
    """The kind of work of one ONNX Runtime kernel, from its op and its input shapes: a Conv
    whose weight has one input channel per group over a many-channel input is depthwise."""
    op = event["args"]["op_name"]
    if op in ("Conv", "FusedConv"):
        shapes = [next(iter(t.values())) for t in event["args"]["input_type_shape"]]
        x, w = shapes[0], shapes[1]
        return KINDS[0] if w[1] == 1 and x[1] > 1 else KINDS[1]
    if op in ("Gemm", "MatMul", "FusedMatMul", "FusedGemm"):
        return KINDS[1]
    return KINDS[2]


def onnxruntime_profile(onnx_path, shape, threads, warmup, runs):
    """{op_name: ms per run} and {kind: ms per run} from ONNX Runtime's profiler (median run)."""
    with tempfile.TemporaryDirectory() as tmp:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, "ort")
        session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: side_by_side.bench_input(shape)}
        for _ in range(warmup + runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    kernels = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    # The kernels of one run, in order; the last `runs` runs are the timed ones.
    per_run = len(kernels) // (warmup + runs)
    timed = kernels[warmup * per_run:]
    runs_ops, runs_kinds = [], []
    for r in range(runs):
        ops, by_kind = defaultdict(float), defaultdict(float)
        for e in timed[r * per_run:(r + 1) * per_run]:
            ms = e["dur"] / 1e3
            ops[e["args"]["op_name"]] += ms
            by_kind[ort_kind(e)] += ms
        runs_ops.append(ops)
        runs_kinds.append(by_kind)
    # The run whose total is the median, as csra-edge's breakdown takes it.
    median = sorted(range(runs), key=lambda r: sum(runs_ops[r].values()))[runs // 2]
    return dict(runs_ops[median]), dict(runs_kinds[median])


def tract_profile(edge, model_dir, threads, warmup, runs):
    """{op: ms per run} and {kind: ms per run} from `csra-edge bench --profile-ops`."""
    command = [
        edge, "bench", "--profile-ops", "--json", str(model_dir), "--threads", str(threads),
        "--warmup", str(warmup), "--runs", str(runs), "--device", "x86-cpu",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr}")
    line = json.loads(result.stdout.splitlines()[0])
    ops = {row["op"]: row["ms"] for row in line["ops"]}
    by_kind = defaultdict(float)
    for op, ms in ops.items():
        by_kind[tract_kind(op)] += ms
    return ops, dict(by_kind)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="model folders (manifest + ONNX)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--edge", default="target/release/csra-edge")
    parser.add_argument("--json", help="write both engines' breakdowns here")
    args = parser.parse_args()
    report = []
    print("| model | kind of work | tract ms | ONNX Runtime ms | tract / ONNX Runtime |")
    print("|---|---|---|---|---|")
    for model in args.models:
        shape, onnx_path = side_by_side.model_shape(model)
        t_ops, t_kinds = tract_profile(args.edge, model, args.threads, args.warmup, args.runs)
        o_ops, o_kinds = onnxruntime_profile(onnx_path, shape, args.threads, args.warmup, args.runs)
        name = Path(model).name
        for kind in KINDS + ("total",):
            t = sum(t_kinds.values()) if kind == "total" else t_kinds.get(kind, 0.0)
            o = sum(o_kinds.values()) if kind == "total" else o_kinds.get(kind, 0.0)
            ratio = f"{t / o:.2f}×" if o > 0 else "—"
            print(f"| {name} | {kind} | {t:.2f} | {o:.2f} | {ratio} |")
        report.append({"model": str(model), "threads": args.threads, "tract_ops_ms": t_ops,
                       "onnxruntime_ops_ms": o_ops, "tract_kinds_ms": t_kinds,
                       "onnxruntime_kinds_ms": o_kinds})
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
