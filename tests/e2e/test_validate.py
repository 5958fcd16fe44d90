#!/usr/bin/python3
"""End-to-end tests of numeric validation: export-time validation with the
built-in ONNX evaluator, `mexport validate` (checker, consistency, --against)
and divergence localisation on an injected wrong converter.

Environment as tests/e2e/test_export.py, plus MEXPORT_FAULTY_PLUGINS (the
directory of the wrong-converter fixture plugin; ctest sets it).
"""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_export import (MODELS, NODE, NP_DTYPES, ORT_RUN, config_text, describe,  # noqa: E402
                         ensure_models, fresh_dir, load_config_inputs, make_inputs, mexport, run,
                         write, yaml_str)

import numpy as np  # noqa: E402

import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402

FAULTY_PLUGINS = os.environ.get("MEXPORT_FAULTY_PLUGINS", "")
FIXTURES = {"bert": "bert_tiny", "resnet18": "resnet18", "mobilenet_v2": "mobilenet_v2"}


def setUpModule():
    ensure_models(list(FIXTURES.values()))


def numeric_config(case, config_name):
    """configs/<name>.yaml (numeric validation on), output in a fresh dir."""
    out_dir = fresh_dir("validate", case)
    out = os.path.join(out_dir, "model.onnx")
    text = config_text(config_name, os.path.join(MODELS, FIXTURES[config_name] + ".pt"), out)
    assert "numeric: true" in text, f"configs/{config_name}.yaml should validate numerically"
    return write(os.path.join(out_dir, "cfg", "config.yaml"), text), out


class ExportTimeValidation(unittest.TestCase):

    def test_every_fixture_model_validates_against_pytorch(self):
        for config_name in FIXTURES:
            with self.subTest(model=config_name):
                cfg, out = numeric_config("ok-" + config_name, config_name)
                r = mexport("export", "--config", cfg, "--strategy", "htp")
                self.assertEqual(r.returncode, 0, describe(r))
                with open(out.replace(".onnx", "_htp_metadata.json")) as f:
                    checks = json.load(f)["validation"]["numeric"]
                model = onnx.load(out)
                self.assertEqual([c["output"] for c in checks], [o.name for o in model.graph.output])
                for c in checks:
                    self.assertTrue(c["passed"], c)
                    self.assertLessEqual(c["max_abs_diff"], 1e-3, c)

    @unittest.skipUnless(FAULTY_PLUGINS, "MEXPORT_FAULTY_PLUGINS not set (ctest sets it)")
    def test_a_wrong_converter_fails_the_export_and_names_the_module(self):
        cfg, out = numeric_config("wrong-gelu", "bert")
        r = mexport("export", "--config", cfg, "--strategy", "htp", "--plugin-dir", FAULTY_PLUGINS)
        self.assertEqual(r.returncode, 1, describe(r))
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, describe(r))
        self.assertIn("numeric validation failed", lines[0])
        self.assertIn("last_hidden_state", lines[0])
        # The first divergence is the GELU of the first layer, where the fault is.
        self.assertIn("first divergence in module /BertModel/BertEncoder/BertLayer.0/BertIntermediate/"
                      "intermediate_act_fn at aten::gelu", lines[0])
        self.assertEqual(os.listdir(os.path.dirname(out)), ["cfg"], "output left behind")


class ValidateCommand(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.cfg, cls.out = numeric_config("command", "bert")
        r = mexport("export", "--config", cls.cfg, "--strategy", "htp", "--no-validate")
        assert r.returncode == 0, describe(r)

    def test_a_good_export_is_valid(self):
        r = mexport("validate", self.out, "--check-consistency", "--against",
                    os.path.join(MODELS, "bert_tiny.pt"), "--config", self.cfg)
        self.assertEqual(r.returncode, 0, describe(r))
        self.assertIn("checker: ok", r.stdout)
        self.assertIn("consistency: ok (", r.stdout)
        self.assertRegex(r.stdout, r"numeric: last_hidden_state ok")
        self.assertRegex(r.stdout, r"numeric: pooler_output ok")

    def test_an_altered_weight_fails_naming_the_output_and_the_module(self):
        model = onnx.load(self.out)
        altered = "encoder.layer.1.output.dense.weight"
        for init in model.graph.initializer:
            if init.name == altered:
                init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 1.5, altered))
        path = os.path.join(os.path.dirname(self.out), "altered.onnx")
        onnx.save(model, path)
        r = mexport("validate", path, "--against", os.path.join(MODELS, "bert_tiny.pt"), "--config", self.cfg)
        self.assertEqual(r.returncode, 1, describe(r))
        self.assertIn("numeric: last_hidden_state DIFFERS", r.stdout)
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, describe(r))
        self.assertRegex(lines[0], r"output 'last_hidden_state' max abs diff [0-9.e+-]+")
        self.assertIn("first divergence in module /BertModel/BertEncoder/BertLayer.1/BertOutput/dense", lines[0])

    def test_tags_that_disagree_with_the_metadata_fail_consistency(self):
        meta_path = self.out.replace(".onnx", "_htp_metadata.json")
        with open(meta_path) as f:
            meta = json.load(f)
        first = next(iter(meta["nodes"]))
        meta["nodes"][first]["tag"] = "/NoSuchModule"
        bad = write(os.path.join(os.path.dirname(self.out), "bad_metadata.json"), json.dumps(meta))
        r = mexport("validate", self.out, "--check-consistency", "--metadata", bad)
        self.assertEqual(r.returncode, 1, describe(r))
        self.assertIn(f"node '{first}' has tag '/NoSuchModule', which is no module's", r.stdout)
        self.assertEqual(len(r.stderr.splitlines()), 1, describe(r))

    def test_a_malformed_file_is_one_line(self):
        path = write(os.path.join(os.path.dirname(self.out), "garbage.onnx"), "not an onnx file")
        r = mexport("validate", path)
        self.assertIn(r.returncode, (1, 2), describe(r))
        self.assertEqual(len(r.stderr.splitlines()), 1, describe(r))


class EvaluatorAgreesWithOnnxRuntime(unittest.TestCase):
    """The built-in evaluator and ONNX Runtime, on the same file and inputs."""

    def test_every_fixture_model(self):
        for config_name, pt in FIXTURES.items():
            with self.subTest(model=config_name):
                self.compare(config_name, os.path.join(MODELS, pt + ".pt"))

    def compare(self, config_name, pt):
        base = fresh_dir("evaluator", config_name)
        specs, out_names, seed = load_config_inputs(config_name)
        arrays = make_inputs(specs, seed + 1)
        listing = []
        inputs_yaml = "inputs:\n"
        for spec, a in zip(specs, arrays):
            np.save(os.path.join(base, spec["name"] + ".npy"), a)
            a.tofile(os.path.join(base, spec["name"] + ".bin"))
            listing.append({"name": spec["name"], "dtype": spec["dtype"], "shape": list(a.shape),
                            "file": spec["name"] + ".bin"})
            inputs_yaml += f"  - name: {spec['name']}\n    file: {spec['name']}.npy\n"
        write(os.path.join(base, "inputs.json"), json.dumps(listing))
        onnx_path = os.path.join(base, "model.onnx")
        cfg = write(os.path.join(base, "config.yaml"),
                    f"model:\n  path: {yaml_str(pt)}\n{inputs_yaml}outputs: {json.dumps(out_names)}\n"
                    f"export:\n  output: {yaml_str(onnx_path)}\n  strategy: htp\n")
        r = mexport("export", "--config", cfg)
        self.assertEqual(r.returncode, 0, describe(r))
        evaluator_dir = os.path.join(base, "evaluator")
        r = mexport("validate", onnx_path, "--against", pt, "--config", cfg, "--save-outputs", evaluator_dir)
        self.assertEqual(r.returncode, 0, describe(r))
        ort_dir = os.path.join(base, "ort")
        r = run([NODE, ORT_RUN, onnx_path, base, ort_dir], timeout=300)
        self.assertEqual(r.returncode, 0, describe(r))
        with open(os.path.join(ort_dir, "outputs.json")) as f:
            ort_outputs = json.load(f)
        self.assertEqual([o["name"] for o in ort_outputs], out_names)
        for o in ort_outputs:
            ort = np.fromfile(os.path.join(ort_dir, o["file"]), dtype=NP_DTYPES[o["dtype"]]).reshape(o["shape"])
            ours = np.load(os.path.join(evaluator_dir, o["name"] + ".npy"))
            self.assertEqual(ours.dtype, ort.dtype, o["name"])
            self.assertEqual(ours.shape, ort.shape, o["name"])
            diff = float(np.max(np.abs(ours.astype(np.float64) - ort.astype(np.float64))))
            print(f"\n  {config_name} {o['name']}: evaluator vs ONNX Runtime max abs diff {diff:.3g}", end=" ")
            self.assertTrue(np.allclose(ours, ort, atol=1e-4, rtol=1e-3), f"{o['name']}: {diff:.3g}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
