#!/usr/bin/python3
"""End-to-end tests of ONNX external data: the weights in `<output>.data`
beside the ONNX file, as models past protobuf's 2 GiB limit need.

BERT-tiny exported with --external-data passes every per-model test of
test_export.py (the checker, ONNX Runtime against PyTorch at two shapes,
metadata, the --clean-onnx and --hierarchy-attrs variants). On top: the
layout of the two files (a small ONNX file; every initializer of 1 KiB or more
in the data file at an offset and length within it, those of 1 MiB or more
aligned to 4096 bytes); onnx's checker from the path and onnx.load giving the
same model as the inline export; mexport validate, analyze, compare and
graphml-to-onnx on it; the automatic switch (export.external_data_threshold)
and the config keys; one-line refusals of a missing, truncated or escaping
data file; no file left by a failed export. The switch on a model past 2 GiB
is shown by bench/large_model.py.

Environment as tests/e2e/test_export.py.
"""

import os
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_export  # noqa: E402  (shared helpers of the end-to-end tests)
from test_export import (MODELS, config_text, describe, ensure_models, fresh_dir,  # noqa: E402
                         mexport, write)

import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402

MIN_EXTERNAL_BYTES = 1024          # smaller initializers stay in the ONNX file
ALIGN_ABOVE_BYTES = 1 << 20        # larger ones start on a 4096-byte boundary
ALIGNMENT = 4096


def setUpModule():
    ensure_models(["bert_tiny", "unsupported_op"])


def external_entries(tensor):
    return {e.key: e.value for e in tensor.external_data}


def data_bytes(tensor):
    """Bytes of an initializer's values, from its type and shape."""
    count = 1
    for d in tensor.dims:
        count *= d
    return count * onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[tensor.data_type].itemsize


def check_file(onnx_path, scratch_dir):
    """onnx.checker.check_model(onnx_path, full_check=True), except that the
    model with inferred shapes goes to scratch_dir: onnx 1.12 writes it over
    the checked file otherwise."""
    onnx.checker.check_model(onnx_path)
    onnx.shape_inference.infer_shapes_path(onnx_path, os.path.join(scratch_dir, "inferred.onnx"),
                                           check_type=True, strict_mode=True)


def without_data_location(model):
    """The model as bytes, with data_location cleared: onnx.load sets it to
    DEFAULT where it read external data, an inline file leaves it unset."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for tensor in copy.graph.initializer:
        tensor.ClearField("data_location")
    return copy.SerializeToString()


def bert_config(case, **export_keys):
    """configs/bert.yaml into a fresh directory, with more `export:` keys."""
    out_dir = fresh_dir("external-data", case)
    onnx_path = os.path.join(out_dir, "out", "bert.onnx")
    text = config_text("bert", os.path.join(MODELS, "bert_tiny.pt"), onnx_path)
    extra = "".join(f"  {key}: {value}\n" for key, value in export_keys.items())
    assert "\nexport:\n" in text, "configs/bert.yaml has no export section"
    text = text.replace("\nexport:\n", "\nexport:\n" + extra, 1)
    return write(os.path.join(out_dir, "config.yaml"), text), onnx_path


class BertExternalData(test_export.BertExport):
    EXPORT_FLAGS = ("--external-data",)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.data_path = cls.onnx_path + ".data"
        cls._inline = None

    def stored(self):
        """The ONNX file as written, its external data not read."""
        self.require_export()
        return onnx.load(self.onnx_path, load_external_data=False)

    def inline_export(self):
        """The same export without --external-data."""
        if self.__class__._inline is None:
            out = os.path.join(fresh_dir(self.dir, "inline"), "bert.onnx")
            r = mexport("export", "--config", self.cfg, "--strategy", "htp", "--output", out)
            self.assertEqual(r.returncode, 0, describe(r))
            self.__class__._inline = out
        return self.__class__._inline

    def test_weights_are_in_the_data_file(self):
        stored = self.stored()
        self.assertIn(f"wrote {self.data_path}\n", self.result.stdout)
        data_size = os.path.getsize(self.data_path)
        onnx_size = os.path.getsize(self.onnx_path)
        print(f"\n  {onnx_size} bytes of ONNX, {data_size} bytes of external data", end=" ")
        self.assertLess(onnx_size * 10, data_size, "the ONNX file still holds the weights")
        ranges = []
        for tensor in stored.graph.initializer:
            size = data_bytes(tensor)
            if size < MIN_EXTERNAL_BYTES:
                self.assertNotEqual(tensor.data_location, onnx.TensorProto.EXTERNAL, tensor.name)
                self.assertEqual(len(tensor.raw_data), size, tensor.name)
                continue
            self.assertEqual(tensor.data_location, onnx.TensorProto.EXTERNAL, tensor.name)
            self.assertFalse(tensor.HasField("raw_data"), tensor.name)
            entries = external_entries(tensor)
            self.assertEqual(entries["location"], os.path.basename(self.data_path), tensor.name)
            offset, length = int(entries["offset"]), int(entries["length"])
            self.assertEqual(length, size, tensor.name)
            self.assertLessEqual(offset + length, data_size, tensor.name)
            if size >= ALIGN_ABOVE_BYTES:
                self.assertEqual(offset % ALIGNMENT, 0, tensor.name)
            ranges.append((offset, offset + length, tensor.name))
        self.assertTrue(ranges, "no initializer went to the data file")
        ranges.sort()
        for (_, end, name), (start, _, next_name) in zip(ranges, ranges[1:]):
            self.assertLessEqual(end, start, f"{name} overlaps {next_name}")

    def test_checker_from_the_path(self):
        self.require_export()
        check_file(self.onnx_path, fresh_dir(self.dir, "checker"))

    def test_loads_as_the_inline_export(self):
        loaded = self.model()  # onnx.load reads the data file
        inline = onnx.load(self.inline_export())
        for a, b in zip(loaded.graph.initializer, inline.graph.initializer):
            self.assertTrue((numpy_helper.to_array(a) == numpy_helper.to_array(b)).all(), a.name)
        self.assertEqual(without_data_location(loaded), without_data_location(inline))

    def test_validate(self):
        self.require_export()
        r = mexport("validate", self.onnx_path)
        self.assertEqual(r.returncode, 0, describe(r))
        self.assertIn("checker: ok", r.stdout)
        r = mexport("validate", self.onnx_path, "--against", self.pt, "--config", self.cfg)
        self.assertEqual(r.returncode, 0, describe(r))
        self.assertRegex(r.stdout, r"numeric: last_hidden_state ok")

    def test_analyze(self):
        external = [t for t in self.stored().graph.initializer
                    if t.data_location == onnx.TensorProto.EXTERNAL]
        r = mexport("analyze", self.onnx_path)
        self.assertEqual(r.returncode, 0, describe(r))
        self.assertIn(f"external data: {len(external)} initializers in "
                      f"{os.path.basename(self.data_path)}\n", r.stdout)
        inline = mexport("analyze", self.inline_export())
        self.assertEqual(inline.returncode, 0, describe(inline))
        # The counts: nodes, initializers (count, values, bytes), inputs, outputs.
        self.assertEqual(r.stdout.splitlines()[1], inline.stdout.splitlines()[1])

    def test_compare_with_the_inline_export(self):
        self.require_export()
        r = mexport("compare", self.onnx_path, self.inline_export())
        self.assertEqual(r.returncode, 0, describe(r))
        self.assertIn("result: equal", r.stdout)

    def test_graphml_round_trip(self):
        out_dir = fresh_dir(self.dir, "graphml")
        out = os.path.join(out_dir, "bert.onnx")
        r = mexport("export", "--config", self.cfg, "--strategy", "htp", "--output", out,
                    "--external-data", "--with-graphml")
        self.assertEqual(r.returncode, 0, describe(r))
        back = os.path.join(out_dir, "back", "bert.onnx")
        r = mexport("graphml-to-onnx", os.path.join(out_dir, "bert_hierarchical_graph.graphml"),
                    back, "--external-data")
        self.assertEqual(r.returncode, 0, describe(r))
        for suffix in ("", ".data"):
            with open(out + suffix, "rb") as a, open(back + suffix, "rb") as b:
                self.assertTrue(a.read() == b.read(), f"bert.onnx{suffix} differs")


class Switch(unittest.TestCase):
    """export.external_data and export.external_data_threshold."""

    def export(self, case, **export_keys):
        cfg, onnx_path = bert_config(case, **export_keys)
        r = mexport("export", "--config", cfg, "--strategy", "htp", "--no-validate")
        self.assertEqual(r.returncode, 0, describe(r))
        return onnx_path

    def test_auto_above_the_threshold(self):
        onnx_path = self.export("auto-above", external_data_threshold=1000000)
        self.assertTrue(os.path.isfile(onnx_path + ".data"))
        check_file(onnx_path, os.path.dirname(os.path.dirname(onnx_path)))

    def test_auto_below_the_threshold(self):
        onnx_path = self.export("auto-below", external_data="auto")
        self.assertFalse(os.path.exists(onnx_path + ".data"))
        model = onnx.load(onnx_path, load_external_data=False)
        self.assertFalse(any(t.data_location == onnx.TensorProto.EXTERNAL
                             for t in model.graph.initializer))

    def test_always(self):
        onnx_path = self.export("always", external_data="always")
        self.assertTrue(os.path.isfile(onnx_path + ".data"))

    def test_never_wins_over_the_threshold(self):
        onnx_path = self.export("never", external_data="never", external_data_threshold=1000)
        self.assertFalse(os.path.exists(onnx_path + ".data"))

    def test_bad_values_are_config_errors(self):
        for case, keys, pattern in [
                ("bad-mode", {"external_data": "sometimes"},
                 r"external_data.*one of auto, always, never.*sometimes"),
                ("zero-threshold", {"external_data_threshold": 0},
                 r"external_data_threshold.*from 1 to 2147483647"),
                ("huge-threshold", {"external_data_threshold": 3000000000},
                 r"external_data_threshold.*from 1 to 2147483647")]:
            with self.subTest(case=case):
                cfg, onnx_path = bert_config(case, **keys)
                r = mexport("export", "--config", cfg)
                self.assertEqual(r.returncode, 2, describe(r))
                self.assertEqual(len(r.stderr.splitlines()), 1, describe(r))
                self.assertRegex(r.stderr, rf"config\.yaml:\d+: .*{pattern}")
                self.assertFalse(os.path.exists(os.path.dirname(onnx_path)))


class BrokenFiles(unittest.TestCase):
    """A file whose external data is missing, short or outside its directory:
    validate, analyze and compare each say so in one line and exit 1."""

    @classmethod
    def setUpClass(cls):
        cls.cfg, cls.exported = bert_config("broken-source")
        r = mexport("export", "--config", cls.cfg, "--strategy", "htp", "--no-validate",
                    "--external-data")
        assert r.returncode == 0, describe(r)

    def copy(self, case):
        """The export and its data file, copied into a directory of their own."""
        directory = fresh_dir("external-data", "broken", case, "model")
        onnx_path = os.path.join(directory, "bert.onnx")
        shutil.copy(self.exported, onnx_path)
        shutil.copy(self.exported + ".data", onnx_path + ".data")
        return onnx_path

    def relocate(self, onnx_path, location):
        """Points the first external initializer at `location`."""
        model = onnx.load(onnx_path, load_external_data=False)
        tensor = next(t for t in model.graph.initializer
                      if t.data_location == onnx.TensorProto.EXTERNAL)
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
        with open(onnx_path, "wb") as f:
            f.write(model.SerializeToString())
        return tensor.name

    def assert_refused(self, onnx_path, pattern):
        for args in (["validate", onnx_path], ["analyze", onnx_path],
                     ["compare", onnx_path, self.exported]):
            with self.subTest(command=args[0]):
                r = mexport(*args)
                self.assertEqual(r.returncode, 1, describe(r))
                lines = r.stderr.splitlines()
                self.assertEqual(len(lines), 1, describe(r))
                self.assertRegex(lines[0], "^mexport: error: " + pattern)
                print(f"\n  {args[0]}: {lines[0]}", end=" ")

    def test_missing_data_file(self):
        onnx_path = self.copy("missing")
        os.remove(onnx_path + ".data")
        self.assert_refused(onnx_path, r".*bert\.onnx: tensor '.*' has its data in "
                                       r".*bert\.onnx\.data, which is missing")

    def test_truncated_data_file(self):
        onnx_path = self.copy("truncated")
        size = os.path.getsize(onnx_path + ".data")
        with open(onnx_path + ".data", "r+b") as f:
            f.truncate(size // 2)
        self.assert_refused(onnx_path, r".*bert\.onnx: tensor '.*': bytes \d+ to \d+ are past the "
                                       r"end of .*bert\.onnx\.data")

    def test_location_outside_the_directory(self):
        for case, location in [("parent", "../bert.onnx.data"),
                               ("absolute", "/etc/passwd")]:
            with self.subTest(case=case):
                onnx_path = self.copy(case)
                # The escaping path exists and would read as data: it is refused all the same.
                shutil.copy(onnx_path + ".data", os.path.join(os.path.dirname(onnx_path), ".."))
                name = self.relocate(onnx_path, location)
                self.assert_refused(onnx_path, rf".*bert\.onnx: tensor '{name}' has its data at "
                                               rf"'{location}', outside the model's directory")

    def test_export_that_fails_writing_leaves_no_file(self):
        # The ONNX path is a directory: the data file is staged first, then
        # writing the ONNX file fails, and neither is left.
        cfg, onnx_path = bert_config("fails-writing")
        os.makedirs(onnx_path)
        r = mexport("export", "--config", cfg, "--strategy", "htp", "--no-validate",
                    "--external-data")
        self.assertIn(r.returncode, (1, 2), describe(r))
        self.assertEqual(len(r.stderr.splitlines()), 1, describe(r))
        self.assertEqual(os.listdir(os.path.dirname(onnx_path)), ["bert.onnx"], describe(r))
        self.assertEqual(os.listdir(onnx_path), [], describe(r))

    def test_export_that_fails_leaves_no_file(self):
        out_dir = fresh_dir("external-data", "fails", "out")
        r = mexport("export", os.path.join(MODELS, "unsupported_op.pt"),
                    os.path.join(out_dir, "m.onnx"), "--input", "x:2x8:float32",
                    "--external-data")
        self.assertEqual(r.returncode, 1, describe(r))
        self.assertEqual(os.listdir(out_dir), [], describe(r))


if __name__ == "__main__":
    unittest.main(verbosity=2)
