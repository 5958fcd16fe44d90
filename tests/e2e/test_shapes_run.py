#!/usr/bin/python3
"""End-to-end tests of the shapes run: without numeric validation, mexport
learns every value's dtype and sizes from a walk of the graph on meta tensors
(both branches of every `if`, every loop body) instead of the model's real
forward pass, and runs the real forward only where the walk cannot know a
type. Either way the ONNX file must be byte for byte the one a validated
export (walk, then real forward pass) writes.

Environment as tests/e2e/test_export.py.
"""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_export import (MODELS, PYTHON, config_text, describe, ensure_models,  # noqa: E402
                         fresh_dir, mexport, run, write)

CONFIGS = {"bert": "bert_tiny", "resnet18": "resnet18", "mobilenet_v2": "mobilenet_v2"}

# A traced model whose graph holds a CPU tensor constant of three elements,
# which the walk moves to the meta device to add it to a meta tensor.
CONSTANT_MODEL = r"""
import sys, torch
class ScaleByConstant(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 3)
    def forward(self, x):
        return self.fc(x) + torch.tensor([1.0, 2.0, 3.0])
torch.manual_seed(0)
model = ScaleByConstant().eval()
with torch.no_grad():
    torch.jit.trace(model, (torch.randn(2, 3),), check_trace=False).save(sys.argv[1])
"""

# A scripted model (no traced types to fall back on) with an op that has no
# meta kernel.
ABS_MODEL = r"""
import sys, torch
class Magnitude(torch.nn.Module):
    def forward(self, x):
        return torch.abs(x) * 2.0
torch.jit.script(Magnitude()).save(sys.argv[1])
"""


def setUpModule():
    ensure_models(list(CONFIGS.values()) + ["control_flow"])


class ShapesRun(unittest.TestCase):

    def export_both_ways(self, case, args_for):
        """Exports with and without --no-validate; returns the two ONNX files'
        bytes and the stage timings of each, validation off first."""
        results = []
        for name, flags in (("plain", ["--no-validate"]), ("validated", [])):
            out = os.path.join(fresh_dir("shapes", case, name), "model.onnx")
            r = mexport("export", *args_for(out), "--strategy", "htp", *flags)
            self.assertEqual(r.returncode, 0, describe(r))
            with open(out, "rb") as f:
                onnx_bytes = f.read()
            with open(out.replace(".onnx", "_htp_metadata.json")) as f:
                timings = json.load(f)["timings"]
            results.append((onnx_bytes, timings))
        return results

    def check(self, case, args_for, run_without_validation):
        (plain, plain_timings), (validated, validated_timings) = self.export_both_ways(case, args_for)
        self.assertEqual(plain, validated, f"{case}: the ONNX differs with --no-validate")
        # The walk always runs: it estimates what a real run would need.
        self.assertIn("shapes", plain_timings)
        self.assertEqual("reference" in plain_timings, run_without_validation == "reference")
        self.assertIn("shapes", validated_timings)
        self.assertIn("reference", validated_timings)

    def test_fixture_models_use_the_meta_run_and_export_the_same_file(self):
        for config_name, model in CONFIGS.items():
            with self.subTest(model=model):
                def args_for(out):
                    directory = os.path.dirname(out)
                    text = config_text(config_name, os.path.join(MODELS, model + ".pt"), out)
                    return ["--config", write(os.path.join(directory, "cfg", "config.yaml"), text)]
                self.check(model, args_for, "shapes")

    def test_control_flow_needs_no_real_forward(self):
        model = os.path.join(MODELS, "control_flow.pt")
        self.check("control_flow", lambda out: [model, out, "--input", "x:2x8:float32"], "shapes")

    def test_a_tensor_constant_needs_no_real_forward(self):
        model = os.path.join(fresh_dir("shapes", "constant-model"), "model.pt")
        r = run([PYTHON, "-c", CONSTANT_MODEL, model])
        self.assertEqual(r.returncode, 0, describe(r))
        self.check("constant", lambda out: [model, out, "--input", "x:2x3:float32"], "shapes")

    def test_an_op_the_walk_cannot_type_falls_back_to_the_real_forward(self):
        # abs has no meta kernel in libtorch 1.13, and an input past the
        # walk's stand-in limit (4 Mi elements) is not run on the CPU either.
        directory = fresh_dir("shapes", "abs-model")
        model = os.path.join(directory, "model.pt")
        # Scripting reads the class's source, so the script is a file.
        r = run([PYTHON, write(os.path.join(directory, "make.py"), ABS_MODEL), model])
        self.assertEqual(r.returncode, 0, describe(r))
        self.check("abs", lambda out: [model, out, "--input", "x:4x1100000:float32"],
                   "reference")


if __name__ == "__main__":
    unittest.main()
