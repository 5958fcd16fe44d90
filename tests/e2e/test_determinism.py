#!/usr/bin/python3
"""Determinism and concurrency of exports.

    MEXPORT_BIN=build/mexport MEXPORT_MODELS=build/tests/models MEXPORT_REPO=. \\
    /usr/bin/python3 tests/e2e/test_determinism.py [-v]

- The same config exported twice gives byte-identical ONNX, GraphML and
  GraphML sidecar, and metadata equal once its timing fields are removed.
- Four exports at once into one directory with different stems each leave a
  complete, valid set of files.
- Two exports at once to the same stem leave one export's complete set: the
  ONNX, metadata, report and GraphML all come from the same run (the runs
  differ in model name and tag style, so each file says which run wrote it),
  and the GraphML rebuilds exactly that ONNX file.
- No temporary file is left anywhere.

The environment is that of test_export.py.
"""

import json
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_export as e2e  # noqa: E402


def setUpModule():
    if not (os.path.isfile(e2e.BIN) and os.access(e2e.BIN, os.X_OK)):
        raise RuntimeError(f"mexport binary not found: {e2e.BIN} (set MEXPORT_BIN)")
    e2e.ensure_models(["bert_tiny", "control_flow"])


def output_files(stem, strategy="htp"):
    """The files of one export with --with-graphml, by kind."""
    return {
        "onnx": stem + ".onnx",
        "metadata": f"{stem}_{strategy}_metadata.json",
        "report": f"{stem}_{strategy}_export_report.txt",
        "graphml": stem + "_hierarchical_graph.graphml",
        "sidecar": stem + "_hierarchical_graph.onnxdata",
    }


def bert_config(path, output, name, tag_style="class",
                emitters="[onnx, metadata, report, graphml]"):
    text = e2e.config_text("bert", os.path.join(e2e.MODELS, "bert_tiny.pt"), output)
    for old, new in (("  name: bert-tiny\n", f"  name: {name}\n"),
                     ("  tag_style: class\n", f"  tag_style: {tag_style}\n"),
                     ("emitters: [onnx, metadata, report]\n", f"emitters: {emitters}\n")):
        assert text.count(old) == 1, f"'{old.strip()}' is not once in configs/bert.yaml"
        text = text.replace(old, new)
    return e2e.write(path, text)


def start(config):
    return subprocess.Popen([e2e.BIN, "export", "--config", config, "--strategy", "htp",
                             "--with-graphml"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)


def finish(proc):
    stdout, stderr = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def without_timings(meta):
    """The metadata without the fields that measure time (there is no
    timestamp); fails if they are missing, so that the comparison means
    something."""
    meta = json.loads(json.dumps(meta))
    del meta["timings"]
    for attempt in meta["strategy_attempts"]:
        del attempt["seconds"]
    return meta


def read(path, mode="rb"):
    with open(path, mode) as f:
        return f.read()


class SameConfigTwice(unittest.TestCase):

    def export_twice(self, label, args, stem):
        """Runs `args` (an export to <out>/<stem>.onnx) twice, keeping a copy
        of the first run's files, and compares the two sets."""
        out = e2e.fresh_dir("determinism", label)
        first = e2e.fresh_dir("determinism", label + "-first")
        files = output_files(stem)
        r = e2e.mexport(*args)
        self.assertEqual(r.returncode, 0, e2e.describe(r))
        for name in files.values():
            shutil.copy(os.path.join(out, name), first)
        r = e2e.mexport(*args)
        self.assertEqual(r.returncode, 0, e2e.describe(r))
        self.assertEqual(sorted(os.listdir(out)), sorted(files.values()), "stray files")
        for kind in ("onnx", "graphml", "sidecar"):
            self.assertEqual(read(os.path.join(first, files[kind])),
                             read(os.path.join(out, files[kind])),
                             f"{label}: the two exports' {kind} files differ")
        meta = [json.loads(read(os.path.join(d, files["metadata"]), "r")) for d in (first, out)]
        self.assertEqual(without_timings(meta[0]), without_timings(meta[1]),
                         f"{label}: the metadata differ beyond timings")
        print(f"\n  {label}: ONNX {os.path.getsize(os.path.join(out, files['onnx']))} bytes, "
              f"GraphML {os.path.getsize(os.path.join(out, files['graphml']))} bytes: identical",
              end=" ")

    def test_bert(self):
        out = os.path.join(e2e.WORK, "determinism", "bert", "bert.onnx")
        config = bert_config(os.path.join(e2e.WORK, "determinism", "bert.yaml"), out, "bert-tiny")
        self.export_twice("bert", ["export", "--config", config, "--strategy", "htp",
                                   "--with-graphml"], "bert")

    def test_control_flow(self):
        out = os.path.join(e2e.WORK, "determinism", "control-flow", "cf.onnx")
        self.export_twice("control-flow",
                          ["export", os.path.join(e2e.MODELS, "control_flow.pt"), out,
                           "--input", "x:2x8:float32", "--strategy", "htp", "--with-graphml"],
                          "cf")


class ConcurrentExports(unittest.TestCase):

    def check_set(self, directory, stem):
        """The files of `stem` are complete and come from one run; returns the
        model name that run used."""
        import onnx
        files = {kind: os.path.join(directory, name) for kind, name in output_files(stem).items()}
        model = onnx.load(files["onnx"])
        onnx.checker.check_model(model, full_check=True)
        name = model.graph.name
        props = {p.key: p.value for p in model.metadata_props}
        meta = json.loads(read(files["metadata"], "r"))
        self.assertEqual(meta["model"]["name"], name, "metadata and ONNX from different runs")
        self.assertEqual(meta["export"]["tag_style"], props["mexport.tag_style"],
                         "metadata and ONNX from different runs")
        self.assertEqual(sorted(meta["nodes"]), sorted(n.name for n in model.graph.node),
                         "metadata and ONNX from different runs")
        self.assertIn(name, read(files["report"], "r"), "report from another run")
        # The GraphML (and its sidecar) rebuild this very ONNX file.
        rebuilt = os.path.join(e2e.fresh_dir("concurrency", "rebuilt"), stem + ".onnx")
        r = e2e.mexport("graphml-to-onnx", files["graphml"], rebuilt)
        self.assertEqual(r.returncode, 0, e2e.describe(r))
        self.assertEqual(read(rebuilt), read(files["onnx"]), "GraphML and ONNX from different runs")
        return name

    def test_four_stems_at_once(self):
        out = e2e.fresh_dir("concurrency", "four")
        names = [f"stem-{i}" for i in range(4)]
        configs = [bert_config(os.path.join(e2e.WORK, "concurrency", f"s{i}.yaml"),
                               os.path.join(out, f"s{i}.onnx"), name)
                   for i, name in enumerate(names)]
        results = [finish(p) for p in [start(c) for c in configs]]
        for r in results:
            self.assertEqual(r.returncode, 0, e2e.describe(r))
        expected = sorted(f for i in range(4) for f in output_files(f"s{i}").values())
        self.assertEqual(sorted(os.listdir(out)), expected, "missing, stray or temporary files")
        for i, name in enumerate(names):
            self.assertEqual(self.check_set(out, f"s{i}"), name)

    def test_two_exports_of_one_stem_at_once(self):
        """Last writer wins, never a mix. The two runs differ in model name and
        tag style (so in node names, metadata, report and GraphML), and list
        their emitters in opposite orders, so that two commits running at once
        without the directory lock would each win some of the files. Three
        rounds, each checked."""
        out = e2e.fresh_dir("concurrency", "same")
        target = os.path.join(out, "same.onnx")
        configs = [bert_config(os.path.join(e2e.WORK, "concurrency", "same-a.yaml"), target,
                               "same-a", "class"),
                   bert_config(os.path.join(e2e.WORK, "concurrency", "same-b.yaml"), target,
                               "same-b", "path", "[graphml, report, metadata, onnx]")]
        winners = []
        for _ in range(3):
            results = [finish(p) for p in [start(c) for c in configs]]
            for r in results:
                self.assertEqual(r.returncode, 0, e2e.describe(r))
            self.assertEqual(sorted(os.listdir(out)), sorted(output_files("same").values()),
                             "missing, stray or temporary files")
            winners.append(self.check_set(out, "same"))
        print(f"\n  winners: {', '.join(winners)}", end=" ")
        for name in winners:
            self.assertIn(name, ("same-a", "same-b"))


if __name__ == "__main__":
    unittest.main(verbosity=int(os.environ.get("MEXPORT_VERBOSITY", "2")))
