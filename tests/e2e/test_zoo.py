#!/usr/bin/python3
"""End-to-end tests of issue 3's model families, a CI subset of bench/zoo.py:
torchvision models (small configs where the architecture allows), transformer
replicas and torch's own encoder, recurrent nets, scripted control flow,
float64 / float16 / int64 / bool and dynamic axes.

Each test exports a traced (or scripted) seeded model with the real binary,
checks that every ONNX node, sub-graph nodes included, carries a module tag,
and compares ONNX Runtime's outputs with PyTorch's within atol 1e-4 /
rtol 1e-3, at the export shapes and, for dynamic axes, at other sizes.

    MEXPORT_BIN=build/mexport MEXPORT_WORK=/tmp/zoo MEXPORT_REPO=. \\
        /usr/bin/python3 -m unittest tests/e2e/test_zoo.py
"""

import json
import os
import shutil
import sys
import unittest

import numpy as np
import onnx
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_ops  # noqa: E402  (shared helpers: run, write_inputs, read_outputs, ...)
import zoo_models  # noqa: E402

DTYPES = dict(test_ops.DTYPES)
DTYPES[torch.float16] = ("float16", np.float16)
test_ops.NUMPY_BY_NAME["float16"] = np.float16


def all_nodes(graph):
    """Every node of an ONNX graph, sub-graphs (If, Loop) included."""
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from all_nodes(attribute.g)


def resized(inputs, dynamic, grow):
    """Copies of the example inputs with each dynamic axis grown by `grow`;
    integer inputs keep their value range, bool masks are all true."""
    result = {}
    for name, tensor in inputs.items():
        shape = list(tensor.shape)
        for axis in dynamic.get(name, {}):
            shape[axis] += grow
        if tensor.dtype == torch.bool:
            result[name] = torch.ones(shape, dtype=torch.bool)
        elif tensor.dtype in (torch.int64, torch.int32):
            low, high = int(tensor.min()), int(tensor.max()) + 1
            result[name] = torch.randint(low, max(high, low + 1), shape, dtype=tensor.dtype)
        else:
            result[name] = torch.randn(shape).to(tensor.dtype)
    return result


def export_and_compare(case, name, module, inputs, dynamic, scripted=False, extra_inputs=(),
                       scale_atol=False):
    """Exports `module` (traced, or scripted) and checks it; returns the ONNX model.
    scale_atol multiplies atol by the outputs' largest magnitude, for models
    whose random-weight outputs reach 1e3 and more, where float32 summation
    order alone (ONNX Runtime fuses and reorders) exceeds atol 1e-4."""
    directory = os.path.join(test_ops.WORK, "zoo", name)
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    model_path = os.path.join(directory, "model.pt")
    onnx_path = os.path.join(directory, "model.onnx")
    example = tuple(inputs.values())
    zoo_models.save_torchscript(module, example, scripted, model_path)
    loaded = torch.jit.load(model_path)

    # ONNX Runtime is the reference here; the built-in numeric check is not needed.
    command = [test_ops.BIN, "export", model_path, onnx_path, "--strategy", "htp", "--quiet",
               "--no-validate"]
    for input_name, tensor in inputs.items():
        axes = dynamic.get(input_name, {})
        dims = "x".join(f"{axes[i]}={d}" if i in axes else str(d)
                        for i, d in enumerate(tensor.shape))
        command += ["--input", f"{input_name}:{dims}:{DTYPES[tensor.dtype][0]}"]
    test_ops.run(command, "mexport export")

    model = onnx.load(onnx_path)
    onnx.checker.check_model(model, full_check=True)
    root = "/" + type(module).__name__ + "/"
    untagged = [n.name for n in all_nodes(model.graph)
                if not (n.name.startswith(root) or n.name == root[:-1])]
    case.assertEqual(untagged, [], f"{name}: nodes without a module tag")
    check_metadata(case, name, model, os.path.join(directory, "model_htp_metadata.json"))

    runs = [inputs] + list(extra_inputs)
    if dynamic:
        runs.append(resized(inputs, dynamic, 1))
    for index, run_inputs in enumerate(runs):
        with torch.no_grad():
            expected = test_ops.flatten(loaded(*run_inputs.values()))
        in_dir = os.path.join(directory, f"in{index}")
        out_dir = os.path.join(directory, f"out{index}")
        write_inputs(in_dir, run_inputs)
        test_ops.run(["node", test_ops.ORT_RUN, onnx_path, in_dir, out_dir], "ort_run.js")
        actual = test_ops.read_outputs(out_dir)
        test_ops.assert_outputs_match(case, f"{name} (run {index})", expected, actual,
                                      atol_scaled=scale_atol)
    return model


def check_metadata(case, name, model, metadata_path):
    """The metadata lists every node, sub-graph nodes included (with the body
    they are in), each with a tag, and counts them all in its coverage."""
    with open(metadata_path) as f:
        metadata = json.load(f)
    main = {n.name for n in model.graph.node}
    every = [n.name for n in all_nodes(model.graph)]
    listed = metadata["nodes"]
    case.assertEqual(sorted(listed), sorted(every), f"{name}: metadata nodes")
    case.assertEqual(metadata["coverage"]["total"], len(every), f"{name}: coverage total")
    case.assertEqual(metadata["coverage"]["untagged"], 0, f"{name}: untagged nodes")
    for node_name, entry in listed.items():
        case.assertTrue(entry["tag"], f"{name}: {node_name} has no tag in the metadata")
        case.assertEqual("graph" in entry, node_name not in main,
                         f"{name}: {node_name}: 'graph' names the body of sub-graph nodes only")


def write_inputs(directory, inputs):
    """test_ops.write_inputs with float16 known."""
    saved = test_ops.DTYPES
    test_ops.DTYPES = DTYPES
    try:
        test_ops.write_inputs(directory, inputs)
    finally:
        test_ops.DTYPES = saved


class ZooTest(test_ops.EndToEndTest):

    def check_vision(self, name, size):
        # Random weights give logits of 10 to 1e3, where float32 summation
        # order alone exceeds atol 1e-4 (see export_and_compare).
        return self.check(name, zoo_models.vision(name, size), scale_atol=True)

    def check(self, name, built, **kwargs):
        module, inputs, dynamic = built
        return export_and_compare(self, name, module, inputs, dynamic, **kwargs)

    # --- vision: one model per architecture family, small inputs ------------

    def test_vision_cnns(self):
        for name, size in [("mobilenet_v3_small", 64), ("shufflenet_v2_x0_5", 64),
                           ("efficientnet_b0", 64), ("squeezenet1_1", 64), ("mnasnet0_5", 64),
                           ("regnet_y_400mf", 64), ("googlenet", 64), ("densenet121", 32)]:
            with self.subTest(model=name):
                self.check_vision(name, size)

    def test_vision_inception_convnext(self):
        self.check_vision("inception_v3", 96)
        self.check_vision("convnext_tiny", 32)

    def test_vision_transformers(self):
        self.check("vit_tiny", zoo_models.tiny_vit())
        self.check("swin_tiny", zoo_models.tiny_swin())
        self.check("swin_v2_tiny", zoo_models.tiny_swin(v2=True))
        self.check("maxvit_tiny", zoo_models.tiny_maxvit())

    # --- transformers ----------------------------------------------------------

    def test_gpt2(self):
        self.check("gpt2", zoo_models.gpt2())

    def test_t5_encoder(self):
        self.check("t5_encoder", zoo_models.t5_encoder())

    def test_distilbert(self):
        self.check("distilbert", zoo_models.distilbert())

    def test_torch_transformer_encoder(self):
        self.check("torch_encoder", zoo_models.torch_encoder())
        self.check("torch_encoder_pre_norm_gelu",
                   zoo_models.torch_encoder(norm_first=True, activation="gelu"))

    def test_torch_multihead_attention(self):
        self.check("torch_attention", zoo_models.torch_attention())

    # --- recurrent -------------------------------------------------------------

    def test_recurrent_tagger(self):
        self.check("recurrent_tagger", zoo_models.recurrent_tagger())

    # --- scripted control flow -----------------------------------------------

    def test_scripted_control_flow(self):
        module, inputs, dynamic = zoo_models.scripted_control_flow()
        other_branch = {"x": torch.randn(4, 8) - 1.0}
        model = export_and_compare(self, "control_flow", module, inputs, dynamic, scripted=True,
                                   extra_inputs=[other_branch])
        kinds = {n.op_type for n in all_nodes(model.graph)}
        self.assertIn("If", kinds)
        self.assertIn("Loop", kinds)
        self.assertGreater(len(list(all_nodes(model.graph))), len(model.graph.node))
        # The metadata's sub-graph nodes agree with their names, and none is left out.
        onnx_path = os.path.join(test_ops.WORK, "zoo", "control_flow", "model.onnx")
        output = test_ops.run([test_ops.BIN, "validate", onnx_path, "--check-consistency"],
                              "mexport validate")
        self.assertIn(f"consistency: ok ({len(list(all_nodes(model.graph)))} nodes", output.stdout)

    def test_scripted_loop_filling_lists(self):
        module, inputs, dynamic = zoo_models.scripted_decoder()
        model = export_and_compare(self, "list_loop", module, inputs, dynamic, scripted=True)
        loops = [n for n in model.graph.node if n.op_type == "Loop"]
        self.assertEqual(len(loops), 1)
        carried = len(loops[0].input) - 2  # after the trip count and the condition
        self.assertEqual(len(loops[0].output) - carried, 2, "one scan output per list")

    # --- dtypes ------------------------------------------------------------------

    def test_float64_int64_bool(self):
        self.check("float64", zoo_models.float64_model())

    def test_float16(self):
        self.check("float16", zoo_models.float16_model())


if __name__ == "__main__":
    unittest.main()
