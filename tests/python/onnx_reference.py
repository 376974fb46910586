#!/usr/bin/env python3
"""Independent consumers of the files csra-onnx writes: onnx and ONNX Runtime, run by
crates/csra-onnx/tests/onnxruntime.rs.

    onnx_reference.py DIR

For every DIR/<stem>.onnx:

1. onnx.checker.check_model(full_check=True): the graph, its attributes and opset are valid,
   and strict shape inference succeeds.
2. onnx.shape_inference.infer_shapes(strict_mode=True, check_type=True, data_prop=True): every
   node output gets a type and a known shape (static, apart from one symbolic batch dim where
   the inputs have a dynamic batch), and the inferred shape of each graph output agrees with the
   declared one. This is what static engine builders (TensorRT) rely on.
3. ONNX Runtime on the CPUExecutionProvider runs it twice, with graph optimisations disabled
   ("plain": every node runs as written) and all enabled ("optimized": ORT's fusions, as
   deployed). The inputs come from DIR/<stem>.in.<input>.npy. Every output must be float32
   with the declared shape (a named dimension takes one value across all inputs and outputs);
   it is written to DIR/<stem>.<plain|optimized>.<output>.npy for the Rust side to compare with
   tract.

Prints one line per model on stdout and exits non-zero, naming the model, at the first failure.
"""

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

LEVELS = {
    "plain": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "optimized": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def declared_dims(value_info):
    """The dims of a graph input or output: ints, symbol names, or None where unknown."""
    tensor = value_info.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    dims = []
    for dim in tensor.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(dim.dim_value)
        elif dim.HasField("dim_param"):
            dims.append(dim.dim_param)
        else:
            dims.append(None)
    return dims


def check_inferred_shapes(model):
    """Strict shape inference must give every node output a type and a known rank. In a file
    with a static batch every dim must be a number; with a dynamic batch at most one dim per
    tensor may be symbolic: the batch. The head's Reshapes copy it (0), which keeps its name for
    TensorRT optimisation profiles; a backbone's own Reshape to -1 may rename it (unk__k)."""
    inferred = onnx.shape_inference.infer_shapes(
        model, check_type=True, strict_mode=True, data_prop=True
    )
    graph = inferred.graph
    dynamic = any(isinstance(d, str) for i in model.graph.input for d in declared_dims(i) or [])
    known = {v.name: v for v in list(graph.value_info) + list(graph.output) + list(graph.input)}
    for node in graph.node:
        for name in node.output:
            if not name:
                continue
            info = known.get(name)
            if info is None or not info.type.tensor_type.elem_type:
                raise AssertionError(f"no type inferred for {name} ({node.op_type} {node.name})")
            dims = declared_dims(info)
            symbolic = sum(isinstance(d, str) for d in dims or [])
            if dims is None or None in dims or symbolic > int(dynamic):
                raise AssertionError(
                    f"shape of {name} ({node.op_type} {node.name}) not fully inferred: {dims}"
                )
    # Strict mode already fails on a declared/inferred conflict; compare once more, because a
    # declared dim that inference leaves alone would pass unnoticed there.
    originals = {o.name: declared_dims(o) for o in model.graph.output}
    for output in graph.output:
        if declared_dims(output) != originals[output.name]:
            raise AssertionError(
                f"output {output.name}: declared {originals[output.name]}, "
                f"inferred {declared_dims(output)}"
            )


def bind(declared, actual, symbols, what):
    """Checks an actual shape against a declared one, binding named dims consistently."""
    if declared is None:
        raise AssertionError(f"{what}: no declared shape")
    if len(declared) != len(actual):
        raise AssertionError(f"{what}: rank {len(actual)}, declared {declared}")
    for want, got in zip(declared, actual):
        if isinstance(want, str):
            want = symbols.setdefault(want, got)
        if want != got:
            raise AssertionError(f"{what}: shape {list(actual)}, declared {declared} {symbols}")


def run(directory, stem, model):
    inputs, symbols = {}, {}
    for value in model.graph.input:
        array = np.load(directory / f"{stem}.in.{value.name}.npy")
        if array.dtype != np.float32:
            raise AssertionError(f"input {value.name}: {array.dtype}")
        bind(declared_dims(value), array.shape, symbols, f"input {value.name}")
        inputs[value.name] = array
    declared = {o.name: declared_dims(o) for o in model.graph.output}
    for level, optimization in LEVELS.items():
        options = ort.SessionOptions()
        options.graph_optimization_level = optimization
        # One thread: the models are tiny, and the test machine may have two cores.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        names = [o.name for o in session.get_outputs()]
        if names != list(declared):
            raise AssertionError(f"{level}: ORT outputs {names}, graph outputs {list(declared)}")
        for name, array in zip(names, session.run(names, inputs)):
            if array.dtype != np.float32:
                raise AssertionError(f"{level}: output {name} is {array.dtype}")
            bind(declared[name], array.shape, dict(symbols), f"{level}: output {name}")
            np.save(directory / f"{stem}.{level}.{name}.npy", np.ascontiguousarray(array))


def main():
    directory = Path(sys.argv[1])
    models = sorted(directory.glob("*.onnx"))
    if not models:
        sys.exit(f"no .onnx files in {directory}")
    for path in models:
        stem = path.stem
        try:
            model = onnx.load(path)
            onnx.checker.check_model(model, full_check=True)
            check_inferred_shapes(model)
            run(directory, stem, model)
        except Exception as error:  # noqa: BLE001 - any failure names the model
            sys.exit(f"{path.name}: {type(error).__name__}: {error}")
        opsets = ",".join(f"{o.domain or 'ai.onnx'}:{o.version}" for o in model.opset_import)
        print(f"{path.name}: ok (IR {model.ir_version}, {opsets}, {len(model.graph.node)} nodes)")
    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}: {len(models)} models")


if __name__ == "__main__":
    main()
