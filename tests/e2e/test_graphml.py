#!/usr/bin/python3
"""End-to-end tests of the GraphML emitter plugin and `mexport graphml-to-onnx`.

    MEXPORT_BIN=build/mexport MEXPORT_MODELS=tests/models MEXPORT_REPO=. \\
    MEXPORT_WORK=/tmp/mexport-e2e /usr/bin/python3 tests/e2e/test_graphml.py [-v] [Test.name]

Environment as in test_export.py (MEXPORT_BIN, MEXPORT_MODELS, MEXPORT_REPO,
MEXPORT_WORK, MEXPORT_TIMEOUT, NODE). Needs Debian's Python with onnx, numpy,
yaml and networkx (python3-networkx), and onnxruntime-node at the repository
root for the ONNX Runtime comparison.

What is checked, on BERT-tiny and resnet18:
  - networkx reads the file (compound nodes marked yfiles.foldertype="group")
    and finds one node per module owning ONNX nodes, ONNX node, graph input,
    output and initializer, and one edge per tensor use;
  - with Python's xml module: compound nodes nest as the module tree, every
    ONNX node sits once in its module's compound node, edges carry tensor
    name, dtype and shape and sit in the deepest graph holding both ends;
    graph data gives opset, IR version, producer, strategy and the sidecar's
    size and SHA-256;
  - graphml-to-onnx rebuilds the exported ONNX exactly (file bytes, and node
    by node), which passes onnx.checker full_check and gives identical ONNX
    Runtime outputs;
  - tampered files (bad XML, missing sidecar, checksum mismatch, dangling or
    missing edge) give one line on stderr, exit 1 or 2, and no output file;
  - parameters: embedded and none; a failing GraphML emitter leaves the ONNX
    and metadata written and exits 1.
"""

import hashlib
import json
import os
import re
import shutil
import sys
import unittest
import xml.etree.ElementTree as ET

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_export  # noqa: E402  (shared helpers of the end-to-end tests)
from test_export import (BIN, MODELS, NODE, NP_DTYPES, ORT_RUN, REPO, WORK,  # noqa: E402,F401
                         describe, ensure_models, mexport, run, write)

NS = "{http://graphml.graphdrawing.org/xmlns}"


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def fresh_dir(*parts):
    return test_export.fresh_dir("graphml", *parts)


def config_text(config_name, model_path, output_path, emitters=None):
    """configs/<config_name>.yaml with absolute model and output paths, and
    optionally another `emitters:` line."""
    text = test_export.config_text(config_name, model_path, output_path)
    if emitters is not None:
        text, n = re.subn(r"(?m)^emitters:.*$", "emitters: " + emitters, text)
        assert n == 1, f"configs/{config_name}.yaml: no emitters line"
    return text


def setUpModule():
    if not (os.path.isfile(BIN) and os.access(BIN, os.X_OK)):
        raise RuntimeError(f"mexport binary not found: {BIN} (set MEXPORT_BIN)")
    ensure_models(["bert_tiny", "resnet18", "control_flow"])
    print(f"\nmexport: {BIN}\nmodels:  {MODELS}\nscratch: {WORK}", file=sys.stderr)


def export(config_name, model, out_dir, *flags, emitters=None):
    onnx_path = os.path.join(out_dir, config_name + ".onnx")
    cfg = write(os.path.join(out_dir, "config.yaml"),
                config_text(config_name, os.path.join(MODELS, model + ".pt"), onnx_path, emitters))
    return onnx_path, mexport("export", "--config", cfg, "--strategy", "htp", *flags)


class GraphmlDoc:
    """A GraphML file read with xml.etree: data by key name, and each node's
    and edge's enclosing compound node."""

    def __init__(self, path):
        self.root = ET.parse(path).getroot()
        self.key_names = {k.get("id"): k.get("attr.name") for k in self.root.iter(NS + "key")}
        self.top = self.root.find(NS + "graph")
        self.nodes = {}    # id -> element
        self.parent = {}   # node id -> id of the enclosing compound node, None at top level
        self.edges = []    # (element, id of the compound node whose graph holds it)
        self._walk(self.top, None)

    def _walk(self, graph, owner):
        for node in graph.findall(NS + "node"):
            self.nodes[node.get("id")] = node
            self.parent[node.get("id")] = owner
            inner = node.find(NS + "graph")
            if inner is not None:
                self._walk(inner, node.get("id"))
        for edge in graph.findall(NS + "edge"):
            self.edges.append((edge, owner))

    def data(self, element):
        return {self.key_names[d.get("key")]: (d.text or "") for d in element.findall(NS + "data")}

    def of_kind(self, kind):
        return [n for n in self.nodes.values() if self.data(n).get("kind") == kind]

    def chain(self, node_id):
        """Enclosing compound ids from the outermost down."""
        out = []
        p = self.parent[node_id]
        while p is not None:
            out.append(p)
            p = self.parent[p]
        return out[::-1]


DTYPE_NAMES = ["undefined", "float32", "uint8", "int8", "uint16", "int16", "int32", "int64", "string",
               "bool", "float16", "float64", "uint32", "uint64", "complex64", "complex128", "bfloat16"]


def type_text(type_proto):
    """(dtype, shape) of a tensor type as GraphML edges show them: "float32",
    "[batch,16,128]" ("?" for an unknown dim, "" without a shape)."""
    t = type_proto.tensor_type
    dtype = DTYPE_NAMES[t.elem_type] if t.HasField("elem_type") else ""
    if not t.HasField("shape"):
        return dtype, ""
    dims = [str(d.dim_value) if d.HasField("dim_value") else d.dim_param if d.HasField("dim_param") else "?"
            for d in t.shape.dim]
    return dtype, "[" + ",".join(dims) + "]"


def tensor_uses(graph):
    return sum(1 for n in graph.node for i in n.input if i) + len(graph.output)


def make_inputs(config_name, seed=0):
    import yaml
    with open(os.path.join(REPO, "configs", config_name + ".yaml")) as f:
        specs = yaml.safe_load(f)["inputs"]
    rng = np.random.default_rng(seed)
    arrays = []
    for spec in specs:
        dtype = NP_DTYPES[spec["dtype"]]
        if "fill" in spec:
            a = np.full(spec["shape"], spec["fill"])
        elif "range" in spec:
            a = rng.integers(spec["range"][0], spec["range"][1], size=spec["shape"])
        else:
            a = rng.standard_normal(spec["shape"])
        arrays.append((spec, np.ascontiguousarray(a.astype(dtype))))
    return arrays


def ort_outputs(model_path, arrays, work):
    in_dir = fresh_dir(work, "in")
    out_dir = os.path.join(WORK, work, "out")
    shutil.rmtree(out_dir, ignore_errors=True)
    listing = []
    for spec, a in arrays:
        a.tofile(os.path.join(in_dir, spec["name"] + ".bin"))
        listing.append({"name": spec["name"], "dtype": spec["dtype"], "shape": list(a.shape),
                        "file": spec["name"] + ".bin"})
    write(os.path.join(in_dir, "inputs.json"), json.dumps(listing))
    r = run([NODE, ORT_RUN, model_path, in_dir, out_dir])
    if r.returncode != 0:
        raise AssertionError("ONNX Runtime run failed\n" + describe(r))
    with open(os.path.join(out_dir, "outputs.json")) as f:
        outputs = json.load(f)
    return {o["name"]: np.fromfile(os.path.join(out_dir, o["file"]), dtype=NP_DTYPES[o["dtype"]])
            .reshape(o["shape"]) for o in outputs}


# --------------------------------------------------------------------------
# per-model tests
# --------------------------------------------------------------------------

class ModelGraphml(test_export.ExportedModel):
    """Mixin; subclasses set CONFIG and PT and derive from TestCase."""
    CONFIG = None
    PT = None

    @classmethod
    def setUpClass(cls):
        cls.dir = fresh_dir("model-" + cls.CONFIG)
        cls.onnx_path, cls.result = export(cls.CONFIG, cls.PT, cls.dir, "--with-graphml")
        cls.graphml_path = os.path.join(cls.dir, cls.CONFIG + "_hierarchical_graph.graphml")
        cls.sidecar_path = os.path.join(cls.dir, cls.CONFIG + "_hierarchical_graph.onnxdata")
        cls._model = cls._meta = cls._doc = None

    def doc(self):
        self.require_export()
        if self.__class__._doc is None:
            self.__class__._doc = GraphmlDoc(self.graphml_path)
        return self.__class__._doc

    def owning_module_paths(self):
        """Paths of the modules that own ONNX nodes, directly or below them."""
        meta = self.meta()
        path_of_tag = {m["tag"]: m["path"] for m in meta["modules"]}
        owners = set()
        for entry in meta["nodes"].values():
            if not entry["tag"]:
                continue
            path = path_of_tag[entry["tag"]]
            owners.add(path)
            while path:
                path = path.rsplit(".", 1)[0] if "." in path else ""
                owners.add(path)
        return owners

    # -- tests --------------------------------------------------------------

    def test_export_writes_graphml_and_sidecar(self):
        self.assertEqual(self.result.returncode, 0, describe(self.result))
        for path in (self.onnx_path, self.graphml_path, self.sidecar_path):
            self.assertTrue(os.path.isfile(path), f"no {path}")
        self.assertIn("wrote " + self.graphml_path, self.result.stdout)

    def test_networkx_reads_groups_with_same_counts(self):
        import networkx as nx
        g = nx.read_graphml(self.graphml_path)
        graph = self.model().graph
        kinds = {}
        for _, d in g.nodes(data=True):
            kinds[d.get("kind")] = kinds.get(d.get("kind"), 0) + 1
        self.assertEqual(kinds, {"module": len(self.owning_module_paths()), "op": len(graph.node),
                                 "input": len(graph.input), "output": len(graph.output),
                                 "initializer": len(graph.initializer)})
        self.assertEqual(g.number_of_edges(), tensor_uses(graph))
        names = sorted(d["name"] for _, d in g.nodes(data=True) if d.get("kind") == "op")
        self.assertEqual(names, sorted(n.name for n in graph.node))
        self.assertEqual(g.graph["strategy"], "htp")

    def test_compound_nodes_nest_as_module_tree(self):
        doc = self.doc()
        modules = doc.of_kind("module")
        paths = [doc.data(m)["module_path"] for m in modules]
        self.assertEqual(sorted(paths), sorted(self.owning_module_paths()))
        self.assertEqual(len(paths), len(set(paths)), "a module has two compound nodes")
        meta_modules = {m["path"]: m for m in self.meta()["modules"]}
        for m in modules:
            d = doc.data(m)
            self.assertEqual(m.get("yfiles.foldertype"), "group", d["module_path"])
            self.assertIsNotNone(m.find(NS + "graph"), d["module_path"])
            expected = meta_modules[d["module_path"]]
            self.assertEqual((d["tag"], d["class_name"], d["qualified_type"]),
                             (expected["tag"], expected["class"], expected["qualified_type"]))
            self.assertEqual(int(d["execution_order"]), expected["execution_order"])
            parent = doc.parent[m.get("id")]
            if d["module_path"] == "":
                self.assertIsNone(parent, "the root module is not at the top level")
            else:
                parent_path = d["module_path"].rsplit(".", 1)[0] if "." in d["module_path"] else ""
                self.assertIsNotNone(parent, d["module_path"])
                self.assertEqual(doc.data(doc.nodes[parent])["module_path"], parent_path)

    def test_every_onnx_node_once_in_its_module(self):
        doc = self.doc()
        meta_nodes = self.meta()["nodes"]
        ops = doc.of_kind("op")
        names = [doc.data(op)["name"] for op in ops]
        self.assertEqual(sorted(names), sorted(n.name for n in self.model().graph.node))
        self.assertEqual(len(names), len(set(names)))
        for op in ops:
            d = doc.data(op)
            tag = meta_nodes[d["name"]]["tag"]
            self.assertEqual(d["tag"], tag, d["name"])
            self.assertEqual(d["provenance"], meta_nodes[d["name"]]["provenance"], d["name"])
            parent = doc.parent[op.get("id")]
            self.assertIsNotNone(parent, d["name"] + " sits outside every module")
            self.assertEqual(doc.data(doc.nodes[parent])["tag"], tag, d["name"])
        onnx_nodes = list(self.model().graph.node)
        for op in ops:
            d = doc.data(op)
            n = onnx_nodes[int(d["index"])]
            self.assertEqual((d["name"], d["op_type"]), (n.name, n.op_type))
            self.assertEqual(json.loads(d["inputs"]), list(n.input))
            self.assertEqual(json.loads(d["outputs"]), list(n.output))
            self.assertEqual([a["name"] for a in json.loads(d.get("attributes", "[]"))],
                             [a.name for a in n.attribute])

    def test_edges_carry_tensors_and_sit_in_deepest_common_graph(self):
        doc = self.doc()
        graph = self.model().graph
        types = {}  # tensor -> (dtype, shape) as the edges should show them
        for t in graph.initializer:
            types[t.name] = (DTYPE_NAMES[t.data_type], "[" + ",".join(map(str, t.dims)) + "]")
        for vi in list(graph.value_info) + list(graph.output) + list(graph.input):
            types[vi.name] = type_text(vi.type)
        self.assertEqual(len(doc.edges), tensor_uses(graph))
        for edge, owner in doc.edges:
            d = doc.data(edge)
            source, target = edge.get("source"), edge.get("target")
            self.assertIn(source, doc.nodes)
            self.assertIn(target, doc.nodes)
            td = doc.data(doc.nodes[target])
            if td["kind"] == "op":
                self.assertEqual(json.loads(td["inputs"])[int(d["slot"])], d["tensor"])
            else:
                self.assertEqual((td["kind"], td["name"]), ("output", d["tensor"]))
            self.assertEqual((d.get("dtype", ""), d.get("shape", "")), types.get(d["tensor"], ("", "")),
                             d["tensor"])
            a, b = doc.chain(source), doc.chain(target)
            common = None
            for x, y in zip(a, b):
                if x != y:
                    break
                common = x
            self.assertEqual(owner, common, f"edge {edge.get('id')} is not in the deepest common graph")

    def test_graph_data(self):
        doc = self.doc()
        model = self.model()
        d = doc.data(doc.top)
        self.assertEqual(d["format"], "mexport-graphml")
        self.assertEqual(json.loads(d["opset_imports"]),
                         [{"domain": o.domain, "version": o.version} for o in model.opset_import])
        self.assertEqual(int(d["ir_version"]), model.ir_version)
        self.assertEqual(d["producer_name"], model.producer_name)
        self.assertEqual(d["strategy"], "htp")
        self.assertEqual(d["tool_version"], self.meta()["tool"]["version"])
        self.assertEqual(d["parameters"], "sidecar")
        with open(self.sidecar_path, "rb") as f:
            sidecar = f.read()
        self.assertEqual(int(d["sidecar_bytes"]), len(sidecar))
        self.assertEqual(d["sidecar_sha256"], hashlib.sha256(sidecar).hexdigest())
        self.assertEqual(d["sidecar_file"], os.path.basename(self.sidecar_path))

    def round_trip(self):
        out = os.path.join(self.dir, "roundtrip", "rt.onnx")
        shutil.rmtree(os.path.dirname(out), ignore_errors=True)
        r = mexport("graphml-to-onnx", self.graphml_path, out)
        self.assertEqual(r.returncode, 0, describe(r))
        return out

    def test_round_trip_equals_export(self):
        import onnx
        self.require_export()
        out = self.round_trip()
        original, rebuilt = self.model(), onnx.load(out)
        g0, g1 = original.graph, rebuilt.graph
        self.assertEqual([n.name for n in g1.node], [n.name for n in g0.node])
        for n0, n1 in zip(g0.node, g1.node):
            self.assertEqual(n1.SerializeToString(), n0.SerializeToString(), n0.name)
        self.assertEqual([i.name for i in g1.initializer], [i.name for i in g0.initializer])
        for t0, t1 in zip(g0.initializer, g1.initializer):
            self.assertEqual(t1.SerializeToString(), t0.SerializeToString(), t0.name)
        self.assertEqual([o.SerializeToString() for o in rebuilt.opset_import],
                         [o.SerializeToString() for o in original.opset_import])
        self.assertEqual([v.SerializeToString() for v in g1.input],
                         [v.SerializeToString() for v in g0.input])
        self.assertEqual([v.SerializeToString() for v in g1.output],
                         [v.SerializeToString() for v in g0.output])
        self.assertEqual(rebuilt.ir_version, original.ir_version)
        with open(out, "rb") as f1, open(self.onnx_path, "rb") as f0:
            self.assertTrue(f1.read() == f0.read(), "the rebuilt file differs from the exported one")
        onnx.checker.check_model(rebuilt, full_check=True)

    def test_round_trip_runs_identically_in_onnx_runtime(self):
        self.require_export()
        out = self.round_trip()
        arrays = make_inputs(self.CONFIG)
        expected = ort_outputs(self.onnx_path, arrays, os.path.join("model-" + self.CONFIG, "ort-original"))
        got = ort_outputs(out, arrays, os.path.join("model-" + self.CONFIG, "ort-rebuilt"))
        self.assertEqual(sorted(got), sorted(expected))
        for name in expected:
            self.assertTrue(np.array_equal(got[name], expected[name]), name)


class BertGraphml(ModelGraphml, unittest.TestCase):
    CONFIG, PT = "bert", "bert_tiny"


class Resnet18Graphml(ModelGraphml, unittest.TestCase):
    CONFIG, PT = "resnet18", "resnet18"


class ControlFlowGraphml(unittest.TestCase):
    """A scripted model whose `if` stays an ONNX If: the branches are kept
    whole in the If node's attributes and come back exactly."""

    def test_if_branches_round_trip(self):
        import onnx
        d = fresh_dir("control-flow")
        out = os.path.join(d, "cf.onnx")
        r = mexport("export", os.path.join(MODELS, "control_flow.pt"), out, "--input", "x:2x8:float32",
                    "--strategy", "htp", "--with-graphml")
        self.assertEqual(r.returncode, 0, describe(r))
        graphml = os.path.join(d, "cf_hierarchical_graph.graphml")
        doc = GraphmlDoc(graphml)
        ifs = [n for n in doc.of_kind("op") if doc.data(n)["op_type"] == "If"]
        self.assertEqual(len(ifs), 1)
        attributes = {a["name"]: a for a in json.loads(doc.data(ifs[0])["attributes"])}
        self.assertEqual(attributes["then_branch"]["type"], "graph")
        self.assertEqual(doc.data(doc.nodes[doc.parent[ifs[0].get("id")]])["module_path"], "gate")
        back = os.path.join(d, "rt.onnx")
        r = mexport("graphml-to-onnx", graphml, back)
        self.assertEqual(r.returncode, 0, describe(r))
        with open(back, "rb") as f1, open(out, "rb") as f0:
            self.assertTrue(f1.read() == f0.read(), "the rebuilt file differs from the exported one")
        onnx.checker.check_model(onnx.load(back), full_check=True)


# --------------------------------------------------------------------------
# damaged files: one line, exit 1 or 2, no output, no crash
# --------------------------------------------------------------------------

class TamperedFiles(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = fresh_dir("tampered")
        cls.onnx_path, cls.result = export("bert", "bert_tiny", os.path.join(cls.dir, "export"),
                                           "--with-graphml")
        base = os.path.join(cls.dir, "export", "bert_hierarchical_graph")
        cls.graphml, cls.sidecar = base + ".graphml", base + ".onnxdata"

    def case(self, name, edit_text=None, edit_sidecar=None, drop_sidecar=False):
        """A copy of the export's GraphML and sidecar, edited; returns the
        result of converting it."""
        if self.result.returncode != 0:
            self.fail("export failed\n" + describe(self.result))
        d = fresh_dir("tampered", name)
        graphml = os.path.join(d, os.path.basename(self.graphml))
        with open(self.graphml) as f:
            text = f.read()
        write(graphml, edit_text(text) if edit_text else text)
        if not drop_sidecar:
            with open(self.sidecar, "rb") as f:
                data = f.read()
            with open(os.path.join(d, os.path.basename(self.sidecar)), "wb") as f:
                f.write(edit_sidecar(data) if edit_sidecar else data)
        out = os.path.join(d, "out", "rt.onnx")
        r = mexport("graphml-to-onnx", graphml, out)
        self.assertIn(r.returncode, (1, 2), describe(r))
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, describe(r))
        self.assertTrue(lines[0].startswith("mexport: error: "), describe(r))
        self.assertNotIn("internal error", lines[0])
        self.assertFalse(os.path.exists(out), "an output file was written")
        self.assertFalse(os.path.isdir(os.path.dirname(out)) and os.listdir(os.path.dirname(out)),
                         "temporary files were left behind")
        return lines[0]

    def test_bad_xml(self):
        line = self.case("bad-xml", edit_text=lambda t: t[: len(t) // 2])
        self.assertIn("not well-formed XML", line)
        self.assertRegex(line, r"\.graphml:\d+:")

    def test_missing_sidecar(self):
        line = self.case("missing-sidecar", drop_sidecar=True)
        self.assertIn("sidecar", line)
        self.assertIn("missing", line)

    def test_checksum_mismatch(self):
        def flip(data):
            b = bytearray(data)
            b[len(b) // 2] ^= 0x01
            return bytes(b)
        line = self.case("checksum", edit_sidecar=flip)
        self.assertIn("checksum mismatch", line)

    def test_sidecar_elsewhere_is_not_read(self):
        # Found in review of the fuzzed reader: the sidecar name was joined to
        # the GraphML's directory as given, so '/dev/zero' was read until
        # memory ran out and any other file was hashed.
        for label, name in (("device", "/dev/zero"),
                            ("parent", "../export/bert_hierarchical_graph.onnxdata")):
            def rename(text):
                new, n = re.subn(r'(<data key="g_sidecar_file">)[^<]*(</data>)',
                                 lambda m: m.group(1) + name + m.group(2), text)
                self.assertEqual(n, 1)
                return new
            line = self.case("sidecar-" + label, edit_text=rename)
            self.assertIn(name, line)
            self.assertIn("not a file name", line)

    def test_truncated_sidecar(self):
        line = self.case("short-sidecar", edit_sidecar=lambda d: d[:-4])
        self.assertIn("sidecar", line)

    def test_dangling_edge(self):
        def dangle(text):
            new, n = re.subn(r'(<edge id="e0" source="[^"]+" target=")[^"]+"', r'\1nowhere"', text, count=1)
            self.assertEqual(n, 1)
            return new
        line = self.case("dangling-edge", edit_text=dangle)
        self.assertIn("dangling edge", line)
        self.assertIn("nowhere", line)

    def test_deleted_edge(self):
        def drop(text):
            new, n = re.subn(r'\s*<edge id="e3" .*?</edge>', "", text, count=1, flags=re.S)
            self.assertEqual(n, 1)
            return new
        line = self.case("deleted-edge", edit_text=drop)
        self.assertIn("no edge", line)

    def test_not_a_mexport_graphml(self):
        line = self.case("foreign",
                         edit_text=lambda t: re.sub(r"mexport-graphml", "something-else", t, count=1))
        self.assertIn("not a mexport GraphML", line)

    def test_missing_file_is_a_usage_error(self):
        out = os.path.join(fresh_dir("tampered", "no-file"), "rt.onnx")
        r = mexport("graphml-to-onnx", os.path.join(WORK, "tampered", "no-such.graphml"), out)
        self.assertEqual(r.returncode, 2, describe(r))
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, describe(r))
        self.assertFalse(os.path.exists(out))


# --------------------------------------------------------------------------
# parameters: sidecar | embedded | none, and failure isolation
# --------------------------------------------------------------------------

class ParameterOptions(unittest.TestCase):

    def test_embedded_round_trips_without_sidecar(self):
        d = fresh_dir("embedded")
        onnx_path, r = export("bert", "bert_tiny", d,
                              emitters="{onnx: {}, metadata: {}, graphml: {parameters: embedded}}")
        self.assertEqual(r.returncode, 0, describe(r))
        graphml = os.path.join(d, "bert_hierarchical_graph.graphml")
        self.assertFalse(os.path.exists(os.path.join(d, "bert_hierarchical_graph.onnxdata")))
        doc = GraphmlDoc(graphml)
        self.assertEqual(doc.data(doc.top)["parameters"], "embedded")
        out = os.path.join(d, "rt.onnx")
        r = mexport("graphml-to-onnx", graphml, out)
        self.assertEqual(r.returncode, 0, describe(r))
        with open(out, "rb") as f1, open(onnx_path, "rb") as f0:
            self.assertTrue(f1.read() == f0.read(), "embedded round trip differs")

    def test_none_is_structure_only(self):
        import networkx as nx
        import onnx
        d = fresh_dir("none")
        onnx_path, r = export("bert", "bert_tiny", d,
                              emitters="{onnx: {}, metadata: {}, graphml: {parameters: none}}")
        self.assertEqual(r.returncode, 0, describe(r))
        graphml = os.path.join(d, "bert_hierarchical_graph.graphml")
        self.assertFalse(os.path.exists(os.path.join(d, "bert_hierarchical_graph.onnxdata")))
        graph = onnx.load(onnx_path).graph
        self.assertEqual(nx.read_graphml(graphml).number_of_edges(), tensor_uses(graph))
        self.assertLess(os.path.getsize(graphml), sum(len(t.raw_data) for t in graph.initializer))
        out = os.path.join(d, "rt.onnx")
        r = mexport("graphml-to-onnx", graphml, out)
        self.assertEqual(r.returncode, 1, describe(r))
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, describe(r))
        self.assertIn("parameters: none", r.stderr)
        self.assertFalse(os.path.exists(out))

    def test_failing_graphml_keeps_onnx_and_metadata(self):
        # resnet18's 45 MiB of parameters are over the embedded limit: the
        # GraphML emitter fails, the rest of the export is written.
        d = fresh_dir("isolation")
        onnx_path, r = export("resnet18", "resnet18", d,
                              emitters="{onnx: {}, metadata: {}, graphml: {parameters: embedded}}")
        self.assertEqual(r.returncode, 1, describe(r))
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, describe(r))
        self.assertIn("emitter 'graphml' failed", lines[0])
        self.assertIn("parameters: sidecar", lines[0])
        self.assertTrue(os.path.isfile(onnx_path))
        self.assertTrue(os.path.isfile(os.path.join(d, "resnet18_htp_metadata.json")))
        self.assertEqual(sorted(os.listdir(d)),
                         ["config.yaml", "resnet18.onnx", "resnet18_htp_metadata.json"])

    def test_unknown_option_is_a_config_error(self):
        d = fresh_dir("bad-option")
        _, r = export("bert", "bert_tiny", d, emitters="{onnx: {}, graphml: {parameter: sidecar}}")
        self.assertEqual(r.returncode, 2, describe(r))
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, describe(r))
        self.assertIn("unknown option 'parameter'", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(d, "bert_hierarchical_graph.graphml")))

    def test_no_graphml_unless_asked(self):
        d = fresh_dir("default")
        _, r = export("bert", "bert_tiny", d)
        self.assertEqual(r.returncode, 0, describe(r))
        self.assertFalse([f for f in os.listdir(d) if "hierarchical_graph" in f])


if __name__ == "__main__":
    unittest.main(verbosity=int(os.environ.get("MEXPORT_VERBOSITY", "2")))
