#!/usr/bin/env python3
"""Checks an exported model with `onnx.checker` and runs it in ONNX Runtime (CPU), for
tests/export_parity.rs.

    onnxruntime_logits.py MODEL.onnx INPUT.f32 OUTPUT.f32

INPUT.f32 holds the little-endian float32 values of one [1, 3, H, W] batch; OUTPUT.f32 gets
the model's `logits` output, float32, row-major.
"""

import sys

import numpy as np
import onnx
import onnxruntime as ort


def main():
    model, input_path, output_path = sys.argv[1:4]
    onnx.checker.check_model(onnx.load(model), full_check=True)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    (image_input,) = session.get_inputs()
    _, channels, height, width = image_input.shape
    pixels = np.fromfile(input_path, dtype="<f4").reshape(1, channels, height, width)
    (logits,) = session.run(["logits"], {image_input.name: pixels})
    logits.astype("<f4").tofile(output_path)


if __name__ == "__main__":
    main()
