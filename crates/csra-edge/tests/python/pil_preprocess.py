"""Independent reference for csra-edge's preprocessing (tests/preprocess_vs_pil.rs).

Decodes an image with PIL, resizes the source box (left, top, right, bottom) to SIZE x SIZE with
PIL's antialiased BILINEAR filter, normalises (pixel * scale - mean) / std with numpy (MEAN and STD are per channel, "r,g,b")
and writes the float32 CHW tensor, raw little-endian, to OUT.

    python pil_preprocess.py IMAGE SIZE LEFT TOP RIGHT BOTTOM SCALE MEAN STD OUT
"""

import sys

import numpy as np
from PIL import Image


def main() -> None:
    image, size, left, top, right, bottom, scale, mean, std, out = sys.argv[1:]
    size = int(size)
    box = tuple(float(v) for v in (left, top, right, bottom))
    picture = Image.open(image).convert("RGB")
    resized = picture.resize((size, size), Image.BILINEAR, box=box)
    pixels = np.asarray(resized, dtype=np.float32)
    mean = np.array([float(v) for v in mean.split(",")], dtype=np.float32)
    std = np.array([float(v) for v in std.split(",")], dtype=np.float32)
    values = (pixels * np.float32(scale) - mean) / std
    values.transpose(2, 0, 1).astype("<f4").tofile(out)


if __name__ == "__main__":
    main()
