#!/usr/bin/env python3
"""The CPU engines side by side: the same ONNX files in ONNX Runtime from PyPI (this Python)
and in `csra-edge bench` (tract, and ONNX Runtime through the `onnxruntime` feature), at the
same threads, in interleaved rounds, so the shared machine's noise falls on all of them alike.

A benchmark, not a test. Prints one table of p50 latencies (the median over rounds of each
round's p50) and the ratios to Python's ONNX Runtime; `--json FILE` keeps every round.

With `--frames DIR` it also times the whole frame path on the photos in DIR, made 1280x720
JPEGs first: `csra-edge --input` (decode, resize, normalise, network, labels) against the
Python loop a user writes by hand (Pillow decode and bilinear resize, NumPy normalisation,
ONNX Runtime), both on the first model at each thread count. csra-edge's start-up is taken
out by timing two run lengths and dividing the difference.

    cargo build --release -p csra-edge --features onnxruntime
    .venv/bin/python scripts/side-by-side.py models/mobilenet_v2-coco-voc-mini --threads 1 2 \
        --frames ../shared/data/photos
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image


def bench_input(shape):
    """csra-edge bench's input: ((i mod 251) / 125) - 1, a fixed non-constant picture."""
    count = int(np.prod(shape))
    return ((np.arange(count) % 251) / 125.0 - 1.0).astype(np.float32).reshape(shape)


def model_shape(model_dir):
    manifest = next(Path(model_dir).glob("*.manifest.json"))
    spec = json.loads(manifest.read_text())["input"]
    return [1, 3, spec["height"], spec["width"]], manifest.with_name(
        manifest.name.replace(".manifest.json", ".onnx")
    )


def python_onnxruntime(onnx, shape, threads, warmup, runs):
    """p50 ms of Python's ONNX Runtime: the session options a user's script would set."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(onnx), options, providers=["CPUExecutionProvider"]
    )
    feed = {session.get_inputs()[0].name: bench_input(shape)}
    for _ in range(warmup):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def csra_edge(edge, model, backend, threads, warmup, runs, library):
    """p50 ms of `csra-edge bench` with `backend`."""
    command = [
        edge, "bench", "--json", str(model), "--backend", backend, "--threads", str(threads),
        "--warmup", str(warmup), "--runs", str(runs), "--device", "x86-cpu",
        "--onnxruntime-library", library,
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr}")
    line = json.loads(result.stdout.splitlines()[0])
    return line["p50_ms"]


def make_frames(photos, out):
    """The photos as 1280x720 JPEGs (quality 90), a camera's MJPEG frames."""
    files = sorted(p for p in Path(photos).iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    for i, photo in enumerate(files):
        Image.open(photo).convert("RGB").resize((1280, 720), Image.BILINEAR).save(
            Path(out) / f"frame_{i:03}.jpg", quality=90
        )
    return sorted(Path(out).glob("*.jpg"))


def python_frames_per_s(model_dir, frames, threads, passes):
    """Frames per second of the hand-written loop: Pillow, NumPy, ONNX Runtime."""
    manifest = json.loads(next(Path(model_dir).glob("*.manifest.json")).read_text())
    shape, onnx = model_shape(model_dir)
    pre = manifest["preprocess"]
    scale = np.float32(pre["scale"])
    mean = np.array(pre["mean"], np.float32)
    std = np.array(pre["std"], np.float32)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    size = (shape[3], shape[2])
    count = 0
    start = time.perf_counter()
    for _ in range(passes):
        for frame in frames:
            image = Image.open(frame).convert("RGB").resize(size, Image.BILINEAR)
            x = (np.asarray(image, np.float32) * scale - mean) / std
            probs = session.run(None, {name: x.transpose(2, 0, 1)[None]})[1]
            _labels = np.nonzero(probs[0] > 0.5)[0]
            count += 1
    return count / (time.perf_counter() - start)


def edge_frames_per_s(edge, model_dir, frames_dir, backend, threads, frames, library):
    """Frames per second of `csra-edge --input DIR --loop`, start-up excluded: the difference
    between a run of `frames` frames and one of a tenth as many."""
    def wall(n):
        command = [
            edge, "--model", str(model_dir), "--input", str(frames_dir), "--loop",
            "--frames", str(n), "--backend", backend, "--threads", str(threads),
            "--device", "x86-cpu", "--onnxruntime-library", library,
        ]
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"{' '.join(command)} failed:\n{result.stderr}")
        return time.perf_counter() - start
    short = max(1, frames // 10)
    return (frames - short) / (wall(frames) - wall(short))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="model folders (manifest + ONNX)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--edge", default="target/release/csra-edge")
    parser.add_argument("--backends", nargs="+", default=["tract", "onnxruntime"])
    parser.add_argument("--json", help="write every round's figures here")
    parser.add_argument("--frames", help="photos for the frame-path comparison")
    args = parser.parse_args()
    if not os.access(args.edge, os.X_OK):
        sys.exit(f"{args.edge} not found: cargo build --release -p csra-edge --features onnxruntime")
    capi = Path(onnxruntime.__file__).parent / "capi"
    library = str(next(capi.glob("libonnxruntime.so*")))
    engines = ["python-onnxruntime"] + [f"csra-edge-{b}" for b in args.backends]
    rounds = []
    for model in args.models:
        shape, onnx = model_shape(model)
        for threads in args.threads:
            figures = {engine: [] for engine in engines}
            for round_ in range(args.rounds):
                # Interleaved: every engine once per round, the order turning each round.
                order = engines[round_ % len(engines):] + engines[: round_ % len(engines)]
                for engine in order:
                    if engine == "python-onnxruntime":
                        p50 = python_onnxruntime(onnx, shape, threads, args.warmup, args.runs)
                    else:
                        backend = engine.removeprefix("csra-edge-")
                        p50 = csra_edge(
                            args.edge, model, backend, threads, args.warmup, args.runs, library
                        )
                    figures[engine].append(p50)
                    print(f"{model} threads={threads} round {round_ + 1}: {engine} {p50:.2f} ms",
                          file=sys.stderr)
            rounds.append({"model": str(model), "threads": threads, "p50_ms": figures})
    print(f"| model | threads | {' | '.join(engines)} | " +
          " | ".join(f"{e} / python-onnxruntime" for e in engines[1:]) + " |")
    print("|---" * (2 + 2 * len(engines) - 1) + "|")
    for entry in rounds:
        medians = {e: statistics.median(v) for e, v in entry["p50_ms"].items()}
        reference = medians["python-onnxruntime"]
        cells = [f"{medians[e]:.2f} ms" for e in engines]
        ratios = [f"{medians[e] / reference:.2f}×" for e in engines[1:]]
        print(f"| {entry['model']} | {entry['threads']} | {' | '.join(cells)} | {' | '.join(ratios)} |")
    results = {"network": rounds}
    if args.frames:
        results["frames"] = frame_path(args, library)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def frame_path(args, library):
    """The frame-path table: frames per second, interleaved rounds, medians."""
    model = args.models[0]
    entries = []
    with tempfile.TemporaryDirectory() as out:
        frames = make_frames(args.frames, out)
        count = len(frames) * 4
        engines = ["python-pillow-onnxruntime"] + [f"csra-edge-{b}" for b in args.backends]
        for threads in args.threads:
            fps = {engine: [] for engine in engines}
            for round_ in range(args.rounds):
                for engine in engines[round_ % len(engines):] + engines[: round_ % len(engines)]:
                    if engine.startswith("python"):
                        value = python_frames_per_s(model, frames, threads, 4)
                    else:
                        backend = engine.removeprefix("csra-edge-")
                        value = edge_frames_per_s(
                            args.edge, model, out, backend, threads, count, library
                        )
                    fps[engine].append(value)
                    print(f"frames threads={threads} round {round_ + 1}: {engine} {value:.1f}/s",
                          file=sys.stderr)
            entries.append({"threads": threads, "frames_per_s": fps})
    print()
    print(f"| 720p JPEG files, {model} | threads | " + " | ".join(f"{e} fps" for e in engines) +
          " | " + " | ".join(f"{e} / python" for e in engines[1:]) + " |")
    print("|---" * (2 + 2 * len(engines) - 1) + "|")
    for entry in entries:
        medians = {e: statistics.median(v) for e, v in entry["frames_per_s"].items()}
        reference = medians[engines[0]]
        print(f"| | {entry['threads']} | " + " | ".join(f"{medians[e]:.1f}" for e in engines) +
              " | " + " | ".join(f"{medians[e] / reference:.2f}×" for e in engines[1:]) + " |")
    return entries


if __name__ == "__main__":
    main()
