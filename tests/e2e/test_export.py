#!/usr/bin/python3
"""End-to-end tests: run the real mexport binary on real models.

    MEXPORT_BIN=build/mexport MEXPORT_MODELS=tests/models MEXPORT_REPO=. \\
    MEXPORT_WORK=/tmp/mexport-e2e /usr/bin/python3 tests/e2e/test_export.py [-v] [Test.name]

Environment (all optional; defaults in brackets):
  MEXPORT_BIN     the mexport binary                   [$MEXPORT_REPO/build/mexport]
  MEXPORT_MODELS  directory of the .pt fixtures; missing ones are made with
                  tests/models/make_models.py           [$MEXPORT_REPO/tests/models]
  MEXPORT_REPO    repository root                        [two levels above this file]
  MEXPORT_WORK    scratch directory                      [a new temporary directory,
                                                          removed at the end]
  MEXPORT_TIMEOUT seconds allowed per mexport run        [300]
  NODE            node executable                        [node on PATH]

Needs Debian's Python (torch, onnx, numpy, yaml) and onnxruntime-node installed
at the repository root (ONNXRUNTIME_NODE_INSTALL=skip npm install).
"""

import atexit
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.environ.get("MEXPORT_REPO") or os.path.join(HERE, "..", ".."))
BIN = os.path.abspath(os.environ.get("MEXPORT_BIN") or os.path.join(REPO, "build", "mexport"))
MODELS = os.path.abspath(os.environ.get("MEXPORT_MODELS") or os.path.join(REPO, "tests", "models"))
TIMEOUT = float(os.environ.get("MEXPORT_TIMEOUT", "300"))
NODE = os.environ.get("NODE") or shutil.which("node") or "node"
ORT_RUN = os.path.join(REPO, "tests", "e2e", "ort_run.js")
MAKE_MODELS = os.path.join(REPO, "tests", "models", "make_models.py")
PYTHON = "/usr/bin/python3"

if os.environ.get("MEXPORT_WORK"):
    WORK = os.path.abspath(os.environ["MEXPORT_WORK"])
    os.makedirs(WORK, exist_ok=True)
else:
    WORK = tempfile.mkdtemp(prefix="mexport-e2e-")
    atexit.register(shutil.rmtree, WORK, True)

ATOL, RTOL = 1e-4, 1e-3
PROVENANCES_TAGGED = {"direct", "inferred", "root"}
PROVENANCES = PROVENANCES_TAGGED | {"untagged"}
NP_DTYPES = {
    "float32": "<f4", "float64": "<f8", "float16": "<f2",
    "int64": "<i8", "int32": "<i4", "int16": "<i2", "int8": "i1",
    "uint8": "u1", "bool": "?",
}

_torch = None


def torch():
    global _torch
    if _torch is None:
        import torch as t
        _torch = t
    return _torch


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def fresh_dir(*parts):
    path = os.path.join(WORK, *parts)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def run(cmd, timeout=TIMEOUT):
    """Run cmd, capture text output; a timeout becomes a failed result."""
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        def text(b):
            return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
        return subprocess.CompletedProcess(
            cmd, -999, text(e.stdout), text(e.stderr) + f"\n[timed out after {timeout:.0f} s]")


def mexport(*args, timeout=TIMEOUT):
    return run([BIN] + [str(a) for a in args], timeout=timeout)


def describe(r):
    return (f"command: {' '.join(map(str, r.args))}\nexit code: {r.returncode}\n"
            f"--- stdout ---\n{r.stdout[-4000:]}\n--- stderr ---\n{r.stderr[-4000:]}")


def yaml_str(s):
    return json.dumps(s)  # a JSON string is a valid YAML double-quoted scalar


def config_text(config_name, model_path, output_path):
    """configs/<config_name>.yaml with an absolute model path and output path."""
    with open(os.path.join(REPO, "configs", config_name + ".yaml")) as f:
        text = f.read()
    text, n1 = re.subn(r"(?m)^(\s+path:\s*)\.\./tests/models/\S+\.pt[ \t]*$",
                       lambda m: m.group(1) + yaml_str(model_path), text)
    text, n2 = re.subn(r"(?m)^(\s+output:\s*)\.\./out/\S+\.onnx[ \t]*$",
                       lambda m: m.group(1) + yaml_str(output_path), text)
    assert n1 == 1 and n2 == 1, f"configs/{config_name}.yaml: model path or output not found"
    return text


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def load_config_inputs(config_name):
    import yaml
    with open(os.path.join(REPO, "configs", config_name + ".yaml")) as f:
        cfg = yaml.safe_load(f)
    return cfg["inputs"], cfg["outputs"], cfg.get("seed", 0)


def make_inputs(specs, seed, shapes=None):
    """Seeded arrays following the config rules (range -> uniform ints in
    [low, high), fill -> constant, else standard normal)."""
    rng = np.random.default_rng(seed)
    arrays = []
    for spec in specs:
        shape = tuple((shapes or {}).get(spec["name"], spec["shape"]))
        dtype = NP_DTYPES[spec["dtype"]]
        if "fill" in spec:
            a = np.full(shape, spec["fill"])
        elif "range" in spec:
            lo, hi = spec["range"]
            a = rng.integers(lo, hi, size=shape) if np.dtype(dtype).kind in "iub" \
                else rng.uniform(lo, hi, size=shape)
        else:
            a = rng.standard_normal(shape)
        arrays.append(np.ascontiguousarray(a.astype(dtype)))
    return arrays


def all_nodes(graph):
    """Nodes of a graph and of its subgraphs."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from all_nodes(attr.g)
            for g in attr.graphs:
                yield from all_nodes(g)


def ensure_models(names):
    missing = [n for n in names if not os.path.exists(os.path.join(MODELS, n + ".pt"))]
    if missing:
        r = run([PYTHON, MAKE_MODELS, "--out", MODELS, "--only"] + missing, timeout=600)
        if r.returncode != 0:
            raise RuntimeError("make_models.py failed\n" + describe(r))


def setUpModule():
    if not (os.path.isfile(BIN) and os.access(BIN, os.X_OK)):
        raise RuntimeError(f"mexport binary not found: {BIN} (set MEXPORT_BIN)")
    ensure_models(["bert_tiny", "resnet18", "mobilenet_v2", "unsupported_op"])
    print(f"\nmexport: {BIN}\nmodels:  {MODELS}\nscratch: {WORK}", file=sys.stderr)


# --------------------------------------------------------------------------
# per-model tests
# --------------------------------------------------------------------------

class ExportedModel:
    """Mixin: the lazily loaded results of one export. The class sets CONFIG,
    onnx_path, result (the export's CompletedProcess), _model and _meta."""

    def require_export(self):
        if self.result.returncode != 0:
            self.fail("export failed\n" + describe(self.result))

    def model(self):
        self.require_export()
        if self.__class__._model is None:
            import onnx
            self.__class__._model = onnx.load(self.onnx_path)
        return self.__class__._model

    def meta(self):
        self.require_export()
        if self.__class__._meta is None:
            path = os.path.join(os.path.dirname(self.onnx_path), self.CONFIG + "_htp_metadata.json")
            self.assertTrue(os.path.isfile(path), f"no metadata file {path}")
            with open(path) as f:
                self.__class__._meta = json.load(f)
        return self.__class__._meta


class ModelExport(ExportedModel):
    """Mixin; subclasses set the class attributes and derive from TestCase."""
    CONFIG = None          # configs/<CONFIG>.yaml
    PT = None              # <MODELS>/<PT>.pt
    ROOT_CLASS = None
    EXPECTED_TAGS = ()
    EXPECTED_INITIALIZERS = ()
    MODULE_COUNT = None
    OTHER_SHAPES = None    # {input name: shape} for the second numeric run
    EXPORT_FLAGS = ()      # more `mexport export` flags, for every export of the class

    @classmethod
    def setUpClass(cls):
        cls.pt = os.path.join(MODELS, cls.PT + ".pt")
        cls.dir = fresh_dir("model-" + cls.__name__)
        cls.onnx_path = os.path.join(cls.dir, "tags", cls.CONFIG + ".onnx")
        os.makedirs(os.path.dirname(cls.onnx_path))
        cls.cfg = write(os.path.join(cls.dir, "config.yaml"),
                        config_text(cls.CONFIG, cls.pt, cls.onnx_path))
        cls.result = mexport("export", "--config", cls.cfg, "--strategy", "htp", *cls.EXPORT_FLAGS)
        cls._model = cls._meta = cls._torch_model = None

    # -- lazily loaded artefacts --------------------------------------------

    def torch_model(self):
        if self.__class__._torch_model is None:
            self.__class__._torch_model = torch().jit.load(self.pt).eval()
        return self.__class__._torch_model

    # -- tests --------------------------------------------------------------

    def test_export_succeeds(self):
        self.assertEqual(self.result.returncode, 0, describe(self.result))
        self.assertTrue(os.path.isfile(self.onnx_path), f"no {self.onnx_path}")

    def test_checker(self):
        import onnx
        onnx.checker.check_model(self.model(), full_check=True)

    def compare_with_torch(self, label, shapes=None, tweak=None):
        specs, out_names, seed = load_config_inputs(self.CONFIG)
        arrays = make_inputs(specs, seed, shapes)
        if tweak:
            tweak(dict(zip([s["name"] for s in specs], arrays)))
        in_dir = fresh_dir(self.dir, "ort-in-" + label)
        out_dir = os.path.join(self.dir, "ort-out-" + label)
        shutil.rmtree(out_dir, ignore_errors=True)
        listing = []
        for spec, a in zip(specs, arrays):
            fname = spec["name"] + ".bin"
            a.tofile(os.path.join(in_dir, fname))
            listing.append({"name": spec["name"], "dtype": spec["dtype"],
                            "shape": list(a.shape), "file": fname})
        write(os.path.join(in_dir, "inputs.json"), json.dumps(listing, indent=1))

        self.require_export()
        r = run([NODE, ORT_RUN, self.onnx_path, in_dir, out_dir], timeout=300)
        self.assertEqual(r.returncode, 0, "ONNX Runtime run failed\n" + describe(r))
        with open(os.path.join(out_dir, "outputs.json")) as f:
            ort_outputs = json.load(f)
        self.assertEqual([o["name"] for o in ort_outputs], out_names)

        t = torch()
        with t.no_grad():
            ref = self.torch_model()(*[t.from_numpy(a) for a in arrays])
        if not isinstance(ref, (tuple, list)):
            ref = [ref]
        self.assertEqual(len(ref), len(ort_outputs))
        for o, expected in zip(ort_outputs, ref):
            expected = expected.numpy()
            got = np.fromfile(os.path.join(out_dir, o["file"]), dtype=NP_DTYPES[o["dtype"]])
            got = got.reshape(o["shape"])
            self.assertEqual(got.shape, expected.shape, o["name"])
            diff = float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64))))
            print(f"\n  {self.CONFIG} [{label}] {o['name']} {list(got.shape)}: "
                  f"max abs diff {diff:.3g}", end=" ")
            self.assertTrue(np.all(np.isfinite(got)), f"{o['name']}: non-finite values")
            self.assertTrue(np.allclose(got, expected, atol=ATOL, rtol=RTOL),
                            f"{o['name']} [{label}]: max abs diff {diff:.3g} "
                            f"exceeds atol {ATOL} rtol {RTOL}")

    def test_numeric_config_shapes(self):
        self.compare_with_torch("config")

    def test_numeric_other_shapes(self):
        self.compare_with_torch("other", self.OTHER_SHAPES, self.tweak_other_inputs)

    def tweak_other_inputs(self, arrays):
        pass

    def test_node_names(self):
        names = [n.name for n in all_nodes(self.model().graph)]
        self.assertTrue(names)
        bad = [n for n in names if not n.startswith("/")]
        self.assertFalse(bad, f"{len(bad)} node names do not start with '/': {bad[:5]}")
        dup = sorted({n for n in names if names.count(n) > 1})
        self.assertFalse(dup, f"duplicate node names: {dup[:5]}")

    def test_metadata_header(self):
        meta = self.meta()
        self.assertEqual(meta["tool"]["name"], "mexport")
        self.assertIsInstance(meta["tool"]["version"], str)
        for key, typ in (("name", str), ("path", str), ("class", str), ("parameters", int)):
            self.assertIsInstance(meta["model"][key], typ, f"model.{key}")
        self.assertEqual(meta["model"]["class"], self.ROOT_CLASS)
        exp = meta["export"]
        self.assertEqual((exp["strategy"], exp["opset"], exp["hierarchy"], exp["tag_style"]),
                         ("htp", 17, "tags", "class"))
        self.assertIsInstance(exp["output"], str)
        attempts = meta["strategy_attempts"]
        self.assertTrue(any(a["name"] == "htp" and a["outcome"] == "ok" for a in attempts),
                        f"no successful htp attempt in {attempts}")
        for a in attempts:
            self.assertIn(a["outcome"], ("ok", "failed"))
            self.assertIsInstance(a["reason"], str)
            self.assertIsInstance(a["seconds"], (int, float))
        self.assertIsInstance(meta["timings"]["total"], (int, float))

    def test_metadata_nodes_match_onnx(self):
        meta = self.meta()
        nodes = meta["nodes"]
        for name in (n.name for n in all_nodes(self.model().graph)):
            self.assertIn(name, nodes, f"ONNX node {name} missing from metadata")
            entry = nodes[name]
            self.assertIn(entry["provenance"], PROVENANCES_TAGGED, f"{name}: {entry}")
            self.assertIsInstance(entry["source"], str)
            self.assertTrue(name.startswith(entry["tag"] + "/"),
                            f"node {name} does not start with its tag {entry['tag']}")
        for name, entry in nodes.items():
            self.assertIn(entry["provenance"], PROVENANCES, f"{name}: {entry}")
            self.assertNotIn("___torch_mangle", entry["tag"], name)

    def test_metadata_coverage(self):
        meta = self.meta()
        cov, nodes = meta["coverage"], meta["nodes"]
        counts = {p: 0 for p in PROVENANCES}
        for entry in nodes.values():
            counts[entry["provenance"]] += 1
        self.assertEqual(cov["total"], len(nodes))
        for p in PROVENANCES:
            self.assertEqual(cov[p], counts[p], f"coverage.{p}")
        tagged = counts["direct"] + counts["inferred"] + counts["root"]
        self.assertTrue(math.isclose(cov["tagged_ratio"], tagged / max(len(nodes), 1),
                                     rel_tol=1e-6, abs_tol=1e-9),
                        f"tagged_ratio {cov['tagged_ratio']} != {tagged}/{len(nodes)}")

    def test_metadata_modules(self):
        meta = self.meta()
        modules = meta["modules"]
        torch_modules = dict(self.torch_model().named_modules())
        if self.MODULE_COUNT is not None:
            self.assertEqual(len(modules), self.MODULE_COUNT)
        self.assertEqual(sorted(m["path"] for m in modules), sorted(torch_modules))
        tags = [m["tag"] for m in modules]
        dup = sorted({t for t in tags if tags.count(t) > 1})
        self.assertFalse(dup, f"duplicate module tags: {dup}")
        for m in modules:
            self.assertNotIn("___torch_mangle", m["tag"])
            self.assertNotIn("___torch_mangle", m["class"])
            self.assertEqual(m["class"], torch_modules[m["path"]].original_name, m["path"])
            self.assertIsInstance(m["qualified_type"], str)
            self.assertIsInstance(m["parameters"], int)
            self.assertIsInstance(m["nodes"], int)
            self.assertTrue(m["execution_order"] is None or isinstance(m["execution_order"], int))
        root = [m for m in modules if m["path"] == ""]
        self.assertEqual(len(root), 1)
        self.assertEqual(root[0]["tag"], "/" + self.ROOT_CLASS)
        for tag in self.EXPECTED_TAGS:
            self.assertIn(tag, tags)
            self.assertTrue(any(n["tag"] == tag for n in meta["nodes"].values()),
                            f"no node tagged {tag}")

    def test_report(self):
        self.require_export()
        path = os.path.join(os.path.dirname(self.onnx_path),
                            self.CONFIG + "_htp_export_report.txt")
        self.assertTrue(os.path.isfile(path), f"no report {path}")
        with open(path) as f:
            self.assertIn("htp", f.read())

    def test_initializer_names(self):
        inits = {i.name for i in self.model().graph.initializer}
        params = {n for n, _ in self.torch_model().named_parameters()}
        for name in self.EXPECTED_INITIALIZERS:
            self.assertIn(name, inits)
        self.assertTrue(inits & params, "no initializer is named by a parameter path")

    def variant(self, flag):
        out = os.path.join(self.dir, flag.strip("-"), self.CONFIG + ".onnx")
        shutil.rmtree(os.path.dirname(out), ignore_errors=True)
        os.makedirs(os.path.dirname(out))
        r = mexport("export", "--config", self.cfg, "--strategy", "htp", flag, "--output", out,
                    *self.EXPORT_FLAGS)
        self.assertEqual(r.returncode, 0, describe(r))
        import onnx
        return r, onnx.load(out)

    def test_clean_onnx(self):
        _, model = self.variant("--clean-onnx")
        root = "/" + self.ROOT_CLASS
        for node in all_nodes(model.graph):
            self.assertNotIn(root, node.name)
            self.assertNotIn("hierarchy_tag", [a.name for a in node.attribute], node.name)

    def test_hierarchy_attrs(self):
        import onnx
        r, model = self.variant("--hierarchy-attrs")
        for node in all_nodes(model.graph):
            attrs = {a.name: a for a in node.attribute}
            self.assertIn("hierarchy_tag", attrs, node.name)
            self.assertEqual(attrs["hierarchy_tag"].type, onnx.AttributeProto.STRING, node.name)
            self.assertTrue(attrs["hierarchy_tag"].s, node.name)
        said = r.stdout + r.stderr
        self.assertRegex(said, r"(?i)strict", "no warning about strict checkers\n" + describe(r))
        self.assertRegex(said, r"(?i)checker", "no warning about strict checkers\n" + describe(r))


class BertExport(ModelExport, unittest.TestCase):
    CONFIG, PT, ROOT_CLASS = "bert", "bert_tiny", "BertModel"
    MODULE_COUNT = 48
    EXPECTED_TAGS = (
        "/BertModel/BertEmbeddings/word_embeddings",
        "/BertModel/BertEncoder/BertLayer.0/BertAttention/BertSelfAttention/query",
    )
    EXPECTED_INITIALIZERS = ("embeddings.word_embeddings.weight",)
    OTHER_SHAPES = {"input_ids": [2, 9], "attention_mask": [2, 9], "token_type_ids": [2, 9]}

    def tweak_other_inputs(self, arrays):
        arrays["attention_mask"][1, 6:] = 0   # padding in the second sequence
        arrays["attention_mask"][0, 8:] = 0
        arrays["token_type_ids"][:, 4:] = 1   # a second segment


class ResNet18Export(ModelExport, unittest.TestCase):
    CONFIG, PT, ROOT_CLASS = "resnet18", "resnet18", "ResNet"
    EXPECTED_TAGS = ("/ResNet/Sequential.layer1/BasicBlock.0/conv1",)
    EXPECTED_INITIALIZERS = ("conv1.weight",)
    OTHER_SHAPES = {"input": [2, 3, 224, 224]}


class MobileNetV2Export(ModelExport, unittest.TestCase):
    CONFIG, PT, ROOT_CLASS = "mobilenet_v2", "mobilenet_v2", "MobileNetV2"
    EXPECTED_INITIALIZERS = ("features.0.0.weight",)
    OTHER_SHAPES = {"input": [2, 3, 224, 224]}


# --------------------------------------------------------------------------
# errors: one line on stderr, exit 1 or 2, nothing left in the output dir
# --------------------------------------------------------------------------

class ExportErrors(unittest.TestCase):

    def run_failing(self, case, cfg_text_for, expected_codes=(1, 2)):
        """cfg_text_for(out_path) -> config text. Returns (result, stderr line, cfg path)."""
        base = fresh_dir("errors", case)
        out_dir = os.path.join(base, "out")
        os.makedirs(out_dir)
        cfg = write(os.path.join(base, "cfg", "config.yaml"),
                    cfg_text_for(os.path.join(out_dir, "model.onnx")))
        self.assertEqual(os.listdir(out_dir), [])
        r = mexport("export", "--config", cfg, "--strategy", "htp")
        self.assertIn(r.returncode, expected_codes, describe(r))
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, "expected exactly one line on stderr\n" + describe(r))
        self.assertTrue(lines[0].strip(), "empty error line\n" + describe(r))
        self.assertEqual(os.listdir(out_dir), [], "output left behind\n" + describe(r))
        print(f"\n  {case}: exit {r.returncode}: {lines[0]}", end=" ")
        return r, lines[0], cfg

    def test_corrupt_model(self):
        path = os.path.join(fresh_dir("errors", "corrupt-model"), "corrupt.pt")
        with open(path, "wb") as f:
            f.write(np.random.default_rng(0).bytes(4096))
        _, line, _ = self.run_failing(
            "corrupt", lambda out: config_text("bert", path, out))
        self.assertIn("corrupt.pt", line)

    def typo(self, case, old, new, suggestion):
        def text_for(out):
            text = config_text("bert", os.path.join(MODELS, "bert_tiny.pt"), out)
            lines = text.split("\n")
            idx = [i for i, l in enumerate(lines) if l.rstrip() == old]
            assert len(idx) == 1, f"'{old}' not found once in configs/bert.yaml"
            lines[idx[0]] = new
            self.lineno = idx[0] + 1
            return "\n".join(lines)
        r, line, cfg = self.run_failing(case, text_for, expected_codes=(2,))
        key = new.strip().rstrip(":").split(":")[0]
        self.assertIn(key, line)
        self.assertRegex(line, rf"(?i)(line\s*:?\s*|:){self.lineno}\b",
                         f"line {self.lineno} not named")
        # The suggestion as a word, not inside the path or the program name.
        rest = line.replace(cfg, " ").replace("mexport", " ")
        self.assertRegex(rest, rf"\b{suggestion}\b", f"suggestion '{suggestion}' missing")

    def test_config_typo_section(self):
        self.typo("typo-section", "export:", "exprot:", "export")

    def test_config_typo_key(self):
        self.typo("typo-key", "  strategy: auto", "  stratgey: auto", "strategy")

    def test_unsupported_op(self):
        model = os.path.join(MODELS, "unsupported_op.pt")

        def text_for(out):
            return (f"model:\n  path: {yaml_str(model)}\n"
                    "inputs:\n  - name: x\n    shape: [2, 8]\n    dtype: float32\n"
                    f"outputs: [y]\nexport:\n  output: {yaml_str(out)}\n  opset: 17\n"
                    "emitters: [onnx, metadata, report]\nvalidate:\n  numeric: false\n")
        r, line, _ = self.run_failing("unsupported-op", text_for, expected_codes=(1,))
        self.assertIn("aten::cumprod", line)
        self.assertRegex(line, r"(?<![A-Za-z_])odd(?![A-Za-z_])", "module path 'odd' not named")


# --------------------------------------------------------------------------
# plugins: `mexport plugins` lists loaded and rejected plugins; --plugin-dir
# brings a strategy the export can use
# --------------------------------------------------------------------------

FIXTURE_PLUGINS = os.environ.get("MEXPORT_FIXTURE_PLUGINS", "")


@unittest.skipUnless(FIXTURE_PLUGINS, "MEXPORT_FIXTURE_PLUGINS not set (ctest sets it)")
class PluginsCommand(unittest.TestCase):

    def test_lists_loaded_and_rejected_plugins_with_reasons(self):
        r = mexport("plugins", "--plugin-dir", FIXTURE_PLUGINS)
        self.assertEqual(r.returncode, 0, describe(r))
        loaded = r.stdout.split("rejected plugins:")[0]
        rejected = r.stdout.split("rejected plugins:")[1]
        self.assertRegex(loaded, r"htp .*libmexport_htp\.so\): strategy htp")
        self.assertRegex(loaded, r"fixture-good 1\.2\.3 .*: strategy fixture-root")
        for library, reason in [("wrong_abi", "plugin ABI"), ("no_entry_point", "entry point"),
                                ("failing_register", "fixture refuses to register"),
                                ("wrong_torch", "built against torch 0.0.1"),
                                ("duplicate_strategy", "strategy 'htp' is already registered")]:
            self.assertRegex(rejected, rf"libfixture_{library}\.so: .*{re.escape(reason)}", library)

    def test_export_with_a_strategy_from_a_plugin_directory(self):
        out = os.path.join(fresh_dir("plugins", "fixture-root"), "m.onnx")
        cfg = write(os.path.join(WORK, "plugins", "cfg.yaml"),
                    config_text("resnet18", os.path.join(MODELS, "resnet18.pt"), out))
        # Only the good fixture: an export refuses to run with a refused plugin.
        plugin_dir = fresh_dir("plugins", "good-only")
        shutil.copy(os.path.join(FIXTURE_PLUGINS, "libfixture_good_strategy.so"), plugin_dir)
        r = mexport("export", "--config", cfg, "--strategy", "fixture-root", "--plugin-dir", plugin_dir)
        self.assertEqual(r.returncode, 0, describe(r))
        with open(os.path.join(os.path.dirname(out), "m_fixture-root_metadata.json")) as f:
            meta = json.load(f)
        self.assertEqual(meta["export"]["strategy"], "fixture-root")
        # The fixture tags every torch node with the root, as a fallback.
        self.assertEqual(meta["coverage"]["root"], meta["coverage"]["total"])

    def test_unknown_strategy_is_a_usage_error(self):
        out = os.path.join(fresh_dir("plugins", "unknown"), "m.onnx")
        cfg = write(os.path.join(WORK, "plugins", "cfg-unknown.yaml"),
                    config_text("resnet18", os.path.join(MODELS, "resnet18.pt"), out))
        r = mexport("export", "--config", cfg, "--strategy", "nope")
        self.assertEqual(r.returncode, 2, describe(r))
        self.assertEqual(len(r.stderr.splitlines()), 1, describe(r))
        self.assertIn("unknown strategy 'nope'", r.stderr)
        self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    unittest.main(verbosity=int(os.environ.get("MEXPORT_VERBOSITY", "2")))
