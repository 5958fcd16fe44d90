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
from test_export import (MODELS, config_text, describe, ensure_models, fresh_dir,  # noqa: E402
                         mexport, write)

import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402

FAULTY_PLUGINS = os.environ.get("MEXPORT_FAULTY_PLUGINS", "")
FIXTURES = {"bert": "bert_tiny", "resnet18": "resnet18", "mobilenet_v2": "mobilenet_v2"}


def setUpModule():
    ensure_models(list(FIXTURES.values()))


def numeric_config(case, config_name):
    """configs/<name>.yaml with numeric validation on, output in a fresh dir."""
    out_dir = fresh_dir("validate", case)
    out = os.path.join(out_dir, "model.onnx")
    text = config_text(config_name, os.path.join(MODELS, FIXTURES[config_name] + ".pt"), out)
    text = text.replace("numeric: false", "numeric: true")
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


if __name__ == "__main__":
    unittest.main(verbosity=2)
