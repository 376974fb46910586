#!/usr/bin/env python3
"""Writes torch.save fixtures for tests/pth_fixtures.rs, with the expected tensors.

    write_pth_fixtures.py OUT_DIR

Readable files (each a state dict) and, in OUT_DIR/expected.json, for each file its entries in
order: {"name", "dtype", "shape", "hex"} where hex is the raw little-endian bytes of the
tensor's values in row-major order, so the Rust reader is checked bit for bit:

- dtypes.pth: one tensor per storage type, with inf, nan, -0.0 and subnormals among floats;
- views.pth: a transpose, a strided slice with a storage offset, a row at an offset, two
  tensors sharing one storage, a 0-d tensor, an empty tensor, a stride-0 expand, a Parameter;
- module.pth: a real nn.Module state dict (OrderedDict with _metadata, num_batches_tracked);
- protocol4.pth: the same module written with pickle protocol 4;
- stem_of_21_characters.pth: the same again, under a name that once broke the zip reader.

Files the reader must refuse, without expectations: complex.pth (a complex tensor),
checkpoint.pth (a state dict nested in a training checkpoint), whole_module.pth (a pickled
nn.Module rather than its state dict).
"""

import json
import sys
from collections import OrderedDict
from pathlib import Path

import torch


def raw_hex(tensor):
    flat = tensor.detach().clone().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes().hex()


def describe(state):
    return [
        {
            "name": name,
            "dtype": str(t.dtype).removeprefix("torch."),
            "shape": list(t.shape),
            "hex": raw_hex(t),
        }
        for name, t in state.items()
    ]


def dtypes():
    g = torch.Generator().manual_seed(0)
    floats = torch.randn(5, 3, generator=g)
    floats[0, :] = torch.tensor([float("inf"), float("nan"), -0.0])
    floats[1, 0] = 1e-40  # subnormal in float32
    state = OrderedDict()
    for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        state["f_" + str(dtype).removeprefix("torch.")] = floats.to(dtype)
    ints = torch.randint(-(2**62), 2**62, (4, 2), generator=g)
    state["i_int64"] = ints
    state["i_int32"] = torch.randint(-(2**31), 2**31 - 1, (7,), generator=g, dtype=torch.int32)
    state["i_int16"] = torch.randint(-(2**15), 2**15 - 1, (3, 3), generator=g, dtype=torch.int16)
    state["i_int8"] = torch.randint(-128, 127, (6,), generator=g, dtype=torch.int8)
    state["i_uint8"] = torch.randint(0, 255, (2, 5), generator=g, dtype=torch.uint8)
    state["b_bool"] = torch.rand(9, generator=g) > 0.5
    state["num_batches_tracked"] = torch.tensor(123456789012, dtype=torch.long)
    return state


def views():
    g = torch.Generator().manual_seed(1)
    base = torch.randn(4, 6, generator=g)
    shared = torch.arange(10, dtype=torch.float32)
    state = OrderedDict()
    state["base"] = base
    state["transposed"] = base.t()
    state["strided_offset"] = base[1:3, 2:5]
    state["row_at_offset"] = base[2]
    state["every_other"] = base[:, ::2]
    state["shared_whole"] = shared
    state["shared_slice"] = shared[3:7]
    state["scalar"] = torch.tensor(3.5)
    state["empty"] = torch.zeros(0, 3)
    state["expanded"] = base[0:1].expand(3, 6)
    state["parameter"] = torch.nn.Parameter(torch.randn(3, generator=g))
    state["half_view"] = base.half().t()[1:]
    return state


def module():
    torch.manual_seed(2)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    net(torch.randn(2, 3, 5, 5))  # updates running stats and num_batches_tracked
    return net.state_dict()


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "dtypes.pth": (dtypes(), {}),
        "views.pth": (views(), {}),
        "module.pth": (module(), {}),
        "protocol4.pth": (module(), {"pickle_protocol": 4}),
        # A 21-character stem: the first central-directory header is then exactly as long as
        # the zip64 end records, which fooled the zip crate's archive-offset detection.
        "stem_of_21_characters.pth": (module(), {}),
    }
    expected = {}
    for name, (state, options) in files.items():
        torch.save(state, out / name, **options)
        expected[name] = describe(state)
    (out / "expected.json").write_text(json.dumps(expected))

    torch.save({"w": torch.randn(2, 2, dtype=torch.complex64)}, out / "complex.pth")
    torch.save({"state_dict": module(), "epoch": 3}, out / "checkpoint.pth")
    torch.save(torch.nn.Linear(2, 2), out / "whole_module.pth")


if __name__ == "__main__":
    main()
