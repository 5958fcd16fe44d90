#!/usr/bin/python3
"""End-to-end tests of `mexport analyze` and `mexport compare` on real files.

    MEXPORT_BIN=build/mexport MEXPORT_MODELS=tests/models MEXPORT_REPO=. \\
    MEXPORT_WORK=/tmp/mexport-e2e /usr/bin/python3 tests/e2e/test_inspect.py [-v] [Test.name]

Environment as tests/e2e/test_export.py, whose helpers this suite uses. The
files inspected: our export of BERT-tiny (tags, --clean-onnx), a
torch.onnx.export (opset 17) of the same TorchScript model, and copies edited
with the onnx Python package (an altered weight, a removed node, garbage).
Every count is checked against the ONNX file itself, computed here.
"""

import collections
import csv
import io
import json
import os
import shutil
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_export as base  # noqa: E402  (helpers only; its tests are not collected here)
from test_export import all_nodes, describe, fresh_dir, mexport  # noqa: E402

ROOT = "/BertModel"
ANONYMOUS_ROOT = "/"


def setUpModule():
    if not (os.path.isfile(base.BIN) and os.access(base.BIN, os.X_OK)):
        raise RuntimeError(f"mexport binary not found: {base.BIN} (set MEXPORT_BIN)")
    base.ensure_models(["bert_tiny"])


# --------------------------------------------------------------------------
# what analyze should find, computed from the ONNX file
# --------------------------------------------------------------------------

def scope_of(name, root):
    """The module tag a node name carries: the name up to its last '/'."""
    if "/" not in name:
        return root
    scope = name.rsplit("/", 1)[0]
    return root if scope in ("", ANONYMOUS_ROOT) else scope


def expected_modules(model, root):
    """{tag: {"own", "total", "op_types"}} for every tag of the file and its ancestors."""
    own = collections.Counter()
    ops = collections.defaultdict(collections.Counter)
    for node in all_nodes(model.graph):
        tag = scope_of(node.name, root)
        own[tag] += 1
        ops[tag][node.op_type] += 1
    tags = set(own) | {root}
    for tag in list(tags):  # ancestors below the root
        parts = tag.split("/")
        for k in range(2, len(parts)):
            prefix = "/".join(parts[:k])
            if prefix.startswith(root) or root == ANONYMOUS_ROOT:
                tags.add(prefix)

    def inside(tag, ancestor):
        return ancestor == ANONYMOUS_ROOT or tag == ancestor or tag.startswith(ancestor + "/")

    return {t: {"own": own[t], "total": sum(n for u, n in own.items() if inside(u, t)),
                "op_types": dict(ops[t])} for t in tags}


def initializer_totals(model):
    import onnx
    count = elements = nbytes = 0
    for init in model.graph.initializer:
        n = int(np.prod(init.dims)) if init.dims else 1
        count += 1
        elements += n
        nbytes += n * np.dtype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[init.data_type]).itemsize
    return count, elements, nbytes


# --------------------------------------------------------------------------
# fixture files
# --------------------------------------------------------------------------

class Files:
    """BERT-tiny exported once by mexport (tags, clean) and by torch.onnx."""
    made = False

    @classmethod
    def make(cls):
        if cls.made:
            return
        cls.made = True
        cls.pt = os.path.join(base.MODELS, "bert_tiny.pt")
        cls.dir = fresh_dir("inspect")
        cls.cfg = base.write(os.path.join(cls.dir, "config.yaml"),
                             base.config_text("bert", cls.pt, os.path.join(cls.dir, "unused.onnx")))
        cls.ours = cls.export("tags")
        cls.clean = cls.export("clean", "--clean-onnx")
        cls.torch_onnx = os.path.join(cls.dir, "torch", "bert_torch.onnx")
        os.makedirs(os.path.dirname(cls.torch_onnx))
        torch = base.torch()
        specs, out_names, seed = base.load_config_inputs("bert")
        arrays = base.make_inputs(specs, seed)
        module = torch.jit.load(cls.pt).eval()
        torch.onnx.export(module, tuple(torch.from_numpy(a) for a in arrays), cls.torch_onnx,
                          opset_version=17, input_names=[s["name"] for s in specs],
                          output_names=out_names)

    @classmethod
    def export(cls, label, *flags):
        """Exports with htp unless flags name another --strategy."""
        out = os.path.join(cls.dir, label, "bert.onnx")
        os.makedirs(os.path.dirname(out))
        strategy = [] if "--strategy" in flags else ["--strategy", "htp"]
        r = mexport("export", "--config", cls.cfg, *strategy, "--output", out,
                    "--no-validate", *flags)
        if r.returncode != 0:
            raise RuntimeError("export failed\n" + describe(r))
        return out


def load(path):
    import onnx
    return onnx.load(path)


# --------------------------------------------------------------------------
# analyze
# --------------------------------------------------------------------------

class AnalyzeFile:
    """Mixin: analyze in every format on one file; subclasses say which."""
    ROOT = None
    WITH_METADATA = False

    def path(self):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        Files.make()
        cls._json = None

    def analyze(self, *args):
        r = mexport("analyze", self.path(), *args)
        self.assertEqual(r.returncode, 0, describe(r))
        self.assertEqual(r.stderr, "", describe(r))
        return r.stdout

    def json(self):
        if self.__class__._json is None:
            self.__class__._json = json.loads(self.analyze("--format", "json"))
        return self.__class__._json

    def test_json_counts_match_the_file(self):
        model = load(self.path())
        doc = self.json()
        expected = expected_modules(model, self.ROOT)
        nodes = list(all_nodes(model.graph))
        self.assertEqual(doc["nodes"], len(nodes))
        self.assertEqual(doc["root"], self.ROOT)
        self.assertEqual(doc["opsets"]["ai.onnx"], 17)
        self.assertEqual(doc["op_types"], dict(collections.Counter(n.op_type for n in nodes)))
        modules = {m["tag"]: m for m in doc["modules"]}
        self.assertEqual(len(modules), len(doc["modules"]), "duplicate module tags")
        for tag, want in expected.items():
            self.assertIn(tag, modules, f"module {tag} missing")
            got = modules[tag]
            self.assertEqual(got["nodes"]["own"], want["own"], tag)
            self.assertEqual(got["nodes"]["total"], want["total"], tag)
            self.assertEqual(got["op_types"], want["op_types"], tag)
        self.assertEqual(sum(m["nodes"]["own"] for m in doc["modules"]), len(nodes))
        self.assertEqual(doc["modules"][0]["tag"], self.ROOT)
        self.assertIsNone(doc["modules"][0]["parent"])
        for m in doc["modules"][1:]:
            self.assertIn(m["parent"], modules, m["tag"])
            self.assertEqual(m["depth"], modules[m["parent"]]["depth"] + 1, m["tag"])

    def test_json_initializers(self):
        model = load(self.path())
        count, elements, nbytes = initializer_totals(model)
        doc = self.json()
        self.assertEqual(doc["initializers"], {"count": count, "elements": elements,
                                               "bytes": nbytes})
        self.assertEqual(sum(m["initializers"]["own"]["bytes"] for m in doc["modules"]), nbytes)
        self.assertEqual(doc["modules"][0]["initializers"]["total"]["count"], count)
        # The query projection's weight and bias are read in (and named by) its module.
        query = [m for m in doc["modules"] if m["tag"].endswith("/attention/self/query")
                 or m["tag"].endswith("/BertSelfAttention/query")]
        self.assertEqual(len(query), 2, [m["tag"] for m in query])  # one per layer
        for m in query:
            self.assertEqual(m["initializers"]["own"]["count"], 2, m)
            self.assertEqual(m["initializers"]["own"]["elements"], 128 * 128 + 128, m)

    def test_json_metadata_coverage(self):
        doc = self.json()
        if not self.WITH_METADATA:
            self.assertIsNone(doc["metadata"])
            return
        meta_path = os.path.join(os.path.dirname(self.path()), "bert_htp_metadata.json")
        with open(meta_path) as f:
            meta = json.load(f)
        self.assertEqual(os.path.abspath(doc["metadata"]["path"]), os.path.abspath(meta_path))
        self.assertEqual(doc["metadata"]["strategy"], "htp")
        cov = doc["metadata"]["coverage"]
        for p in ("direct", "inferred", "root", "untagged", "total"):
            self.assertEqual(cov[p], meta["coverage"][p], p)
        self.assertEqual(cov["not_in_metadata"], 0)
        per_module = collections.Counter()
        for entry in meta["nodes"].values():
            per_module[(entry["tag"], entry["provenance"])] += 1
        for m in doc["modules"]:
            for p, n in m["provenance"].items():
                self.assertEqual(n, per_module[(m["tag"], p)], (m["tag"], p))

    def test_csv(self):
        doc = self.json()
        rows = list(csv.DictReader(io.StringIO(self.analyze("--format", "csv"))))
        self.assertEqual([r["tag"] for r in rows], [m["tag"] for m in doc["modules"]])
        for row, m in zip(rows, doc["modules"]):
            self.assertEqual(int(row["nodes_own"]), m["nodes"]["own"], m["tag"])
            self.assertEqual(int(row["nodes_total"]), m["nodes"]["total"], m["tag"])
            self.assertEqual(int(row["initializer_bytes_own"]),
                             m["initializers"]["own"]["bytes"], m["tag"])
            ops = dict(item.split(":") for item in row["op_types"].split()) \
                if row["op_types"] else {}
            self.assertEqual({k: int(v) for k, v in ops.items()}, m["op_types"], m["tag"])

    def test_tree(self):
        doc = self.json()
        lines = self.analyze("--format", "tree").splitlines()
        self.assertEqual(len(lines), len(doc["modules"]), "\n".join(lines))
        self.assertTrue(lines[0].startswith(self.ROOT + "  "), lines[0])
        for line, m in zip(lines, doc["modules"]):
            self.assertIn(f"{m['name']}", line)
            self.assertRegex(line, rf"  {m['nodes']['total']} nodes?\b", m["tag"])
            indent = len(line) - len(line.lstrip(" |`-"))
            self.assertEqual(indent, 4 * m["depth"], line)  # not a terminal: ASCII, 4 per level

    def test_summary(self):
        doc = self.json()
        out = self.analyze()
        self.assertIn(f"{doc['nodes']} nodes", out)
        self.assertIn("opset 17", out)
        self.assertIn(f"{doc['initializers']['count']} initializers", out)
        if self.WITH_METADATA:
            cov = doc["metadata"]["coverage"]
            self.assertIn(f"direct {cov['direct']}, inferred {cov['inferred']}", out)
        else:
            self.assertIn("metadata: none", out)


class AnalyzeOurExport(AnalyzeFile, unittest.TestCase):
    ROOT, WITH_METADATA = ROOT, True

    def path(self):
        return Files.ours

    def test_tags_from_node_names(self):
        self.assertEqual(self.json()["tag_sources"]["node_name"], self.json()["nodes"])
        classes = {m["tag"]: m["class"] for m in self.json()["modules"]}
        self.assertEqual(classes[ROOT], "BertModel")
        self.assertEqual(classes[ROOT + "/BertEmbeddings"], "BertEmbeddings")

    def test_clean_export_takes_tags_from_metadata(self):
        r = mexport("analyze", Files.clean, "--format", "json")
        self.assertEqual(r.returncode, 0, describe(r))
        clean = json.loads(r.stdout)
        self.assertEqual(clean["tag_sources"]["metadata"], clean["nodes"])
        own = {m["tag"]: m["nodes"]["own"] for m in clean["modules"]}
        self.assertEqual(own, {m["tag"]: m["nodes"]["own"] for m in self.json()["modules"]})

    def test_hierarchy_attributes(self):
        path = Files.export("attrs", "--hierarchy-attrs")
        r = mexport("analyze", path, "--format", "json", "--metadata",
                    os.path.join(os.path.dirname(Files.ours), "bert_htp_metadata.json"))
        self.assertEqual(r.returncode, 0, describe(r))
        doc = json.loads(r.stdout)
        self.assertEqual(doc["tag_sources"]["attribute"], doc["nodes"])
        own = {m["tag"]: m["nodes"]["own"] for m in doc["modules"]}
        self.assertEqual(own, {m["tag"]: m["nodes"]["own"] for m in self.json()["modules"]})

    def test_explicit_metadata(self):
        meta = os.path.join(os.path.dirname(Files.ours), "bert_htp_metadata.json")
        lonely = os.path.join(fresh_dir("inspect", "lonely"), "renamed.onnx")
        shutil.copy(Files.ours, lonely)
        r = mexport("analyze", lonely, "--format", "json")
        self.assertEqual(r.returncode, 0, describe(r))
        self.assertIsNone(json.loads(r.stdout)["metadata"])
        r = mexport("analyze", lonely, "--format", "json", "--metadata", meta)
        self.assertEqual(r.returncode, 0, describe(r))
        self.assertEqual(json.loads(r.stdout)["metadata"]["coverage"],
                         self.json()["metadata"]["coverage"])


class AnalyzeTorchOnnxExport(AnalyzeFile, unittest.TestCase):
    ROOT = ANONYMOUS_ROOT

    def path(self):
        return Files.torch_onnx

    def test_scopes_are_attribute_paths(self):
        tags = {m["tag"] for m in self.json()["modules"]}
        for tag in ("/embeddings", "/encoder/layer.0/attention/self/query", "/pooler/dense"):
            self.assertIn(tag, tags)


# --------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------

class Compare(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        Files.make()
        cls.dir = fresh_dir("inspect", "compare")

    def compare(self, a, b, *args, expect):
        r = mexport("compare", a, b, *args)
        self.assertEqual(r.returncode, expect, describe(r))
        return r

    def edited(self, name, edit):
        model = load(Files.ours)
        edit(model)
        import onnx
        path = os.path.join(self.dir, name + ".onnx")
        onnx.save(model, path)
        return path

    def test_same_file_is_equal(self):
        copy = os.path.join(self.dir, "copy.onnx")
        shutil.copy(Files.ours, copy)
        r = self.compare(Files.ours, copy, expect=0)
        self.assertIn("result: equal", r.stdout)
        doc = json.loads(self.compare(Files.ours, copy, "--format", "json", expect=0).stdout)
        self.assertTrue(doc["equal"])
        self.assertEqual(doc["nodes"]["matched"], len(load(Files.ours).graph.node))

    def test_altered_weight(self):
        from onnx import numpy_helper
        weight = "encoder.layer.0.attention.self.query.weight"

        def alter(model):
            for i, init in enumerate(model.graph.initializer):
                if init.name == weight:
                    values = numpy_helper.to_array(init).copy()
                    values[3, 5] += 0.5
                    model.graph.initializer[i].CopyFrom(numpy_helper.from_array(values, weight))
                    return
            self.fail(f"no initializer {weight}")
        path = self.edited("altered", alter)
        r = self.compare(Files.ours, path, expect=1)
        self.assertRegex(r.stdout, rf"differs {weight} float\[128, 128\]: max abs diff 0\.5\b")
        self.assertIn("result: different: 1 initializer differs\n", r.stdout)
        doc = json.loads(self.compare(Files.ours, path, "--format", "json", expect=1).stdout)
        differ = doc["initializers"]["differ"]
        self.assertEqual([d["name"] for d in differ], [weight])
        self.assertAlmostEqual(differ[0]["max_abs_diff"], 0.5, places=5)
        self.assertTrue(differ[0]["module"].endswith("/BertSelfAttention/query"), differ[0])
        self.assertEqual(doc["nodes"]["changed"] + doc["nodes"]["removed"], 0)

    def test_removed_node(self):
        removed = {}

        def remove(model):
            # The bias Add of layer 0's attention output projection: its
            # readers read the MatMul output instead.
            for i, node in enumerate(model.graph.node):
                if node.op_type == "Add" and "/BertSelfOutput/dense/" in node.name:
                    removed["name"], removed["tag"] = node.name, node.name.rsplit("/", 1)[0]
                    bypass = [x for x in node.input if x not in
                              {t.name for t in model.graph.initializer}][0]
                    for other in model.graph.node:
                        for k, x in enumerate(other.input):
                            if x == node.output[0]:
                                other.input[k] = bypass
                    del model.graph.node[i]
                    return
            self.fail("no bias Add in BertSelfOutput/dense")
        path = self.edited("removed", remove)
        r = self.compare(Files.ours, path, expect=1)
        self.assertIn(f"removed Add ({removed['name']})", r.stdout)
        self.assertIn(f"  {removed['tag']}:", r.stdout)
        self.assertIn("result: different: 1 node removed", r.stdout)
        doc = json.loads(self.compare(Files.ours, path, "--format", "json", expect=1).stdout)
        self.assertEqual(doc["nodes"]["removed"], 1)
        self.assertEqual(doc["nodes"]["added"], 0)
        self.assertGreaterEqual(doc["nodes"]["changed"], 1)  # the Add's readers
        modules = {m["tag"]: m for m in doc["modules"]}
        self.assertEqual(modules[removed["tag"]]["removed"],
                         [{"name": removed["name"], "op_type": "Add"}])

    def test_clean_export_is_structure_equal_with_tags_differing(self):
        n = len(load(Files.ours).graph.node)
        r = self.compare(Files.ours, Files.clean, expect=0)
        self.assertIn(f"structure equal, tags differ ({n} nodes)", r.stdout)
        doc = json.loads(self.compare(Files.ours, Files.clean, "--format", "json",
                                      expect=0).stdout)
        self.assertTrue(doc["structure_equal"])
        self.assertFalse(doc["equal"])
        self.assertEqual(doc["nodes"]["tags_differ"], n)
        self.assertEqual(doc["nodes"]["matched"], n)

    def test_other_strategies_are_structure_equal(self):
        # Every strategy lowers the same graph; usage tags by parameter use, coarser than htp.
        nodes = len(load(Files.ours).graph.node)
        for strategy in ("fx", "usage"):
            other = Files.export(strategy, "--strategy", strategy)
            doc = json.loads(self.compare(Files.ours, other, "--format", "json", expect=0).stdout)
            self.assertTrue(doc["structure_equal"], strategy)
            self.assertEqual(doc["nodes"]["matched"], nodes, strategy)
            if strategy == "usage":
                r = self.compare(Files.ours, other, expect=0)
                self.assertRegex(r.stdout, r"result: structure equal, tags differ \(\d+ nodes?\)")
                self.assertGreater(doc["nodes"]["tags_differ"], 0)

    def test_other_tool_is_different_not_a_crash(self):
        r = self.compare(Files.ours, Files.torch_onnx, expect=1)
        self.assertIn("result: different", r.stdout)


def small_model(node_name, initializers=()):
    """A one-node model: y = x + w, the node named node_name."""
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"], name=node_name)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def write_model(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


class NamesThatAreNotUtf8(unittest.TestCase):
    # Found by fuzz/onnx_fuzzer: ONNX strings are bytes, and nlohmann::json
    # refused to print the JSON output ("internal error"). Invalid bytes now
    # print as U+FFFD.

    def test_json_output_is_valid(self):
        d = fresh_dir("inspect", "not-utf8")
        placeholder = b"/Mod_XX/Add"
        raw = small_model(placeholder.decode()).SerializeToString()
        bad = write_model(os.path.join(d, "bad.onnx"),
                          raw.replace(placeholder, b"/Mod_\xff\xfe/Add"))
        good = write_model(os.path.join(d, "good.onnx"), raw)
        r = mexport("analyze", bad, "--format", "json")
        self.assertEqual(r.returncode, 0, describe(r))
        tags = [m["tag"] for m in json.loads(r.stdout)["modules"]]
        self.assertIn("/Mod_\ufffd\ufffd", tags)
        r = mexport("compare", bad, good, "--format", "json")
        self.assertEqual(r.returncode, 0, describe(r))
        self.assertIn("/Mod_\ufffd\ufffd", r.stdout)
        json.loads(r.stdout)


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------

class InspectErrors(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        Files.make()
        cls.dir = fresh_dir("inspect", "errors")

    def assert_one_line_error(self, r, *words):
        self.assertIn(r.returncode, (1, 2), describe(r))
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, describe(r))
        self.assertTrue(lines[0].startswith("mexport: error: "), describe(r))
        for word in words:
            self.assertIn(word, lines[0], describe(r))
        self.assertNotIn("internal error", r.stderr)

    def test_malformed_onnx(self):
        bad = base.write(os.path.join(self.dir, "garbage.onnx"), "this is not protobuf\n" * 20)
        self.assert_one_line_error(mexport("analyze", bad), bad)
        self.assert_one_line_error(mexport("compare", Files.ours, bad), bad)
        empty = base.write(os.path.join(self.dir, "empty.onnx"), "")
        self.assert_one_line_error(mexport("analyze", empty, "--format", "json"), empty)

    def test_truncated_onnx(self):
        with open(Files.ours, "rb") as f:
            data = f.read()
        cut = os.path.join(self.dir, "truncated.onnx")
        with open(cut, "wb") as f:
            f.write(data[: len(data) // 2])
        self.assert_one_line_error(mexport("analyze", cut), cut)

    def test_impossible_tensor_shapes(self):
        # Found by fuzz/onnx_fuzzer: the element and byte counts of such a
        # tensor overflowed int64_t (undefined behaviour; garbage sizes).
        import onnx
        for label, dims in (("huge", [2 ** 62, 4]), ("negative", [-1, 2])):
            weight = onnx.TensorProto(name="w", data_type=onnx.TensorProto.FLOAT, dims=dims)
            path = write_model(os.path.join(self.dir, f"shape-{label}.onnx"),
                               small_model("/M/Add", [weight]).SerializeToString())
            self.assert_one_line_error(mexport("analyze", path), path, "tensor 'w'", "shape")
            self.assert_one_line_error(mexport("compare", path, path), path, "tensor 'w'")

    def test_module_path_too_long(self):
        # Found in review of the fuzzed reader: every '/' of a node name is a
        # module level, and a 600 KB name overflowed the stack (SIGSEGV).
        path = write_model(os.path.join(self.dir, "deep-name.onnx"),
                           small_model("/x" * 300000 + "/Add").SerializeToString())
        self.assert_one_line_error(mexport("analyze", path), "module path", "bytes long")
        self.assert_one_line_error(mexport("compare", path, path), "module path")

    def test_missing_file_and_bad_options(self):
        missing = os.path.join(self.dir, "missing.onnx")
        r = mexport("analyze", missing)
        self.assert_one_line_error(r, missing)
        self.assertEqual(r.returncode, 2)
        self.assert_one_line_error(mexport("analyze", Files.ours, "--format", "xml"), "xml")
        self.assert_one_line_error(mexport("compare", Files.ours))
        self.assert_one_line_error(mexport("analyze", Files.ours, "--metadata", missing), missing)


if __name__ == "__main__":
    unittest.main(verbosity=int(os.environ.get("MEXPORT_VERBOSITY", "2")))
