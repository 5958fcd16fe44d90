#!/usr/bin/python3
"""End-to-end tests of the tagging strategies (htp, fx, usage), the selector's
fallback chains and `mexport benchmark`, with the real binary on real models.

    MEXPORT_BIN=build/mexport MEXPORT_MODELS=tests/models MEXPORT_REPO=. \\
    MEXPORT_WORK=/tmp/mexport-e2e /usr/bin/python3 tests/e2e/test_strategies.py [-v]

The environment is that of test_export.py, whose helpers this file uses.
Expected figures are computed from independent sources (the torch model, the
other strategies' metadata, the ONNX files), never typed in.
"""

import collections
import json
import os
import re
import signal
import sys
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_export as e2e  # noqa: E402  (helpers: run, mexport, config_text, ...)

STRATEGIES = ("htp", "fx", "usage")
PROVENANCES = ("direct", "inferred", "root", "untagged")


def setUpModule():
    if not (os.path.isfile(e2e.BIN) and os.access(e2e.BIN, os.X_OK)):
        raise RuntimeError(f"mexport binary not found: {e2e.BIN} (set MEXPORT_BIN)")
    e2e.ensure_models(["bert_tiny", "resnet18", "control_flow"])


# --------------------------------------------------------------------------
# one export per strategy and model, shared by the test classes
# --------------------------------------------------------------------------

Export = collections.namedtuple("Export", "result onnx_path meta nodes")
_exports = {}


def export_with(config_name, pt, strategy, extra_yaml=""):
    """Exports configs/<config_name>.yaml with `--strategy strategy`; cached.
    nodes: [(op_type, tag, provenance)] in ONNX order."""
    key = (config_name, strategy, extra_yaml)
    if key in _exports:
        return _exports[key]
    label = strategy + ("-" + str(abs(hash(extra_yaml))) if extra_yaml else "")
    out_dir = e2e.fresh_dir("strategies", config_name, label)
    onnx_path = os.path.join(out_dir, config_name + ".onnx")
    text = e2e.config_text(config_name, os.path.join(e2e.MODELS, pt + ".pt"), onnx_path)
    cfg = e2e.write(os.path.join(out_dir, "config.yaml"), text.replace("export:\n", "export:\n" + extra_yaml, 1))
    r = e2e.mexport("export", "--config", cfg, "--strategy", strategy)
    meta = nodes = None
    if r.returncode == 0:
        import onnx
        with open(os.path.join(out_dir, f"{config_name}_{strategy}_metadata.json")) as f:
            meta = json.load(f)
        model = onnx.load(onnx_path)
        nodes = [(n.op_type, meta["nodes"][n.name]["tag"], meta["nodes"][n.name]["provenance"])
                 for n in model.graph.node]
    _exports[key] = Export(r, onnx_path, meta, nodes)
    return _exports[key]


def agreement(nodes_a, nodes_b):
    """Share of ONNX nodes (index-aligned) given the same tag."""
    assert [n[0] for n in nodes_a] == [n[0] for n in nodes_b], "lowerings differ"
    return sum(a[1] == b[1] for a, b in zip(nodes_a, nodes_b)) / max(len(nodes_a), 1)


def attempt_lines(stdout):
    """[(name, outcome, reason)] from the 'mexport: strategy ...' console lines."""
    pattern = r"(?m)^mexport: strategy (\S+) (ok|failed) in [0-9.]+ ms(?:: (.*))?$"
    return [(m.group(1), m.group(2), m.group(3) or "") for m in re.finditer(pattern, stdout)]


# --------------------------------------------------------------------------
# every strategy on BERT-tiny and resnet18
# --------------------------------------------------------------------------

class StrategiesOnModel:
    """Mixin; subclasses set CONFIG and PT."""
    CONFIG = PT = None

    def export(self, strategy, extra_yaml=""):
        x = export_with(self.CONFIG, self.PT, strategy, extra_yaml)
        self.assertEqual(x.result.returncode, 0, e2e.describe(x.result))
        return x

    def test_every_strategy_exports_a_checked_model(self):
        import onnx
        for s in STRATEGIES:
            x = self.export(s)
            self.assertEqual(x.meta["export"]["strategy"], s)
            onnx.checker.check_model(onnx.load(x.onnx_path), full_check=True)

    def test_strategies_share_one_lowering(self):
        ops = {s: [n[0] for n in self.export(s).nodes] for s in STRATEGIES}
        for s in STRATEGIES:
            self.assertEqual(ops[s], ops["htp"], f"{s} lowered to other ONNX nodes than htp")

    def test_coverage_counts_are_the_node_provenances(self):
        for s in STRATEGIES:
            x = self.export(s)
            counts = collections.Counter(n[2] for n in x.nodes)
            for p in PROVENANCES:
                self.assertEqual(x.meta["coverage"][p], counts[p], f"{s}: coverage.{p}")
            self.assertEqual(x.meta["coverage"]["total"], len(x.nodes))
            print(f"\n  {self.CONFIG} {s}: " + ", ".join(f"{p} {counts[p]}" for p in PROVENANCES),
                  end=" ")

    def test_fx_tags_every_op_as_htp_does(self):
        htp, fx = self.export("htp").nodes, self.export("fx").nodes
        self.assertFalse([n for n in fx if n[2] in ("untagged", "root")], "fx left nodes untagged")
        # Ops (not constants, which preparation pools across modules) run in
        # one module's code: both strategies must name the same one.
        differ = [(a, b) for a, b in zip(htp, fx) if a[0] != "Constant" and a[1] != b[1]]
        self.assertFalse(differ, f"fx and htp disagree on ops: {differ[:5]}")
        direct = sum(n[2] == "direct" for n in fx)
        self.assertGreater(direct, len(fx) / 2, "fx tagged most ops by inference, not by code")
        print(f"\n  {self.CONFIG}: fx agrees with htp on {100 * agreement(htp, fx):.1f}% of "
              f"{len(fx)} ONNX nodes", end=" ")

    def test_usage_tags_only_parameter_readers_as_htp_does(self):
        import torch
        usage, htp = self.export("usage"), self.export("htp")
        module_tags = {m["path"]: m["tag"] for m in usage.meta["modules"]}
        model = torch.jit.load(os.path.join(e2e.MODELS, self.PT + ".pt"))
        owners = set()
        for name, _ in list(model.named_parameters()) + list(model.named_buffers()):
            owners.add(module_tags[name.rpartition(".")[0]])
        tagged = [(u, h) for u, h in zip(usage.nodes, htp.nodes) if u[2] != "untagged"]
        self.assertTrue(tagged, "usage tagged nothing")
        for u, h in tagged:
            self.assertIn(u[1], owners, f"usage tagged {u} with a module that owns no parameter")
            self.assertEqual(u[1], h[1], f"usage and htp disagree on {u[0]}")
        self.assertTrue({u[1] for u, _ in tagged} <= owners)
        self.assertEqual(usage.meta["coverage"]["root"], 0)
        self.assertGreater(usage.meta["coverage"]["untagged"], 0, "usage guessed glue ops")

    def test_usage_root_fallback_puts_the_rest_on_the_root(self):
        plain = self.export("usage")
        rooted = self.export("usage", "  root_fallback: true\n")
        cov, base = rooted.meta["coverage"], plain.meta["coverage"]
        self.assertEqual(cov["untagged"], 0)
        self.assertEqual(cov["root"], base["untagged"])
        self.assertEqual(cov["direct"], base["direct"])
        root_tag = next(m["tag"] for m in rooted.meta["modules"] if m["path"] == "")
        self.assertTrue(all(n[1] == root_tag for n in rooted.nodes if n[2] == "root"))


class BertStrategies(StrategiesOnModel, unittest.TestCase):
    CONFIG, PT = "bert", "bert_tiny"


class ResNet18Strategies(StrategiesOnModel, unittest.TestCase):
    CONFIG, PT = "resnet18", "resnet18"


# --------------------------------------------------------------------------
# the selector: fallback chains on a scripted control-flow model
# --------------------------------------------------------------------------

def control_flow_config(out_path, export_yaml):
    model = os.path.join(e2e.MODELS, "control_flow.pt")
    return (f"model:\n  path: {e2e.yaml_str(model)}\n"
            "inputs:\n  - name: x\n    shape: [2, 8]\n    dtype: float32\n"
            f"outputs: [y]\nexport:\n  output: {e2e.yaml_str(out_path)}\n{export_yaml}"
            "emitters: [onnx, metadata, report]\n")


def bert_config(base, export_yaml):
    """configs/bert.yaml writing <base>/bert.onnx, its `fallback` replaced by export_yaml."""
    text = e2e.config_text("bert", os.path.join(e2e.MODELS, "bert_tiny.pt"),
                           os.path.join(base, "bert.onnx"))
    text = re.sub(r"(?m)^  fallback: .*\n", "", text).replace("export:\n", "export:\n" + export_yaml, 1)
    return e2e.write(os.path.join(base, "config.yaml"), text)


class FallbackChain(unittest.TestCase):

    def run_control_flow(self, case, export_yaml, *flags):
        base = e2e.fresh_dir("strategies", "fallback", case)
        out = os.path.join(base, "out", "cf.onnx")
        os.makedirs(os.path.dirname(out))
        cfg = e2e.write(os.path.join(base, "config.yaml"), control_flow_config(out, export_yaml))
        return e2e.mexport("export", "--config", cfg, *flags), os.path.dirname(out)

    def assert_names_the_if(self, reason):
        self.assertIn("prim::If", reason)
        self.assertRegex(reason, r"module 'gate'")
        self.assertIn("/ControlFlowModel/Gate", reason)
        self.assertIn("make_models.py", reason)

    def test_fx_alone_refuses_the_if_naming_its_module(self):
        r, out_dir = self.run_control_flow("fx-alone", "", "--strategy", "fx")
        self.assertEqual(r.returncode, 1, e2e.describe(r))
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, e2e.describe(r))
        self.assert_names_the_if(lines[0])
        self.assertEqual(os.listdir(out_dir), [], "output left behind")
        print(f"\n  {lines[0]}", end=" ")

    def test_auto_speed_tries_fx_then_succeeds_with_htp(self):
        r, out_dir = self.run_control_flow(
            "auto-speed", "  strategy: auto\n  priority: speed\n  fallback: [htp, fx]\n")
        attempts = attempt_lines(r.stdout)
        self.assertEqual([(a[0], a[1]) for a in attempts], [("fx", "failed"), ("htp", "ok")],
                         e2e.describe(r))
        self.assert_names_the_if(attempts[0][2])
        self.assertNotIn("no strategy could tag", r.stderr)
        if r.returncode == 0:
            with open(os.path.join(out_dir, "cf_htp_metadata.json")) as f:
                meta = json.load(f)
            self.assertEqual(meta["export"]["strategy"], "htp")
            recorded = [(a["name"], a["outcome"], a["reason"]) for a in meta["strategy_attempts"]]
            self.assertEqual(recorded, attempts)
            print("\n  exported after the fallback; metadata attempts checked", end=" ")
        else:
            # The chain worked; what failed is lowering the prim::If itself.
            self.assertEqual(r.returncode, 1, e2e.describe(r))
            self.assertEqual(len(r.stderr.splitlines()), 1, e2e.describe(r))
            self.assertEqual(os.listdir(out_dir), [])
            print(f"\n  chain checked on the console; lowering failed: {r.stderr.strip()}", end=" ")

    def test_auto_coverage_tries_the_control_flow_strategy_last(self):
        r, out_dir = self.run_control_flow(
            "auto-coverage", "  strategy: auto\n  priority: coverage\n  fallback: [fx, htp]\n")
        # htp succeeds first: a single successful attempt prints no chain.
        self.assertEqual(attempt_lines(r.stdout), [], e2e.describe(r))
        self.assertNotIn("strategy fx", r.stdout + r.stderr)
        if r.returncode == 0:
            with open(os.path.join(out_dir, "cf_htp_metadata.json")) as f:
                attempts = json.load(f)["strategy_attempts"]
            self.assertEqual([(a["name"], a["outcome"]) for a in attempts], [("htp", "ok")])

    def test_min_coverage_passes_usage_over_to_fx(self):
        extra = ("  priority: speed\n  min_coverage: 0.9\n  fallback: [htp, fx, usage]\n")
        base = e2e.fresh_dir("strategies", "fallback", "min-coverage")
        cfg = bert_config(base, extra)
        r = e2e.mexport("export", "--config", cfg, "--strategy", "auto")
        self.assertEqual(r.returncode, 0, e2e.describe(r))
        attempts = attempt_lines(r.stdout)
        self.assertEqual([(a[0], a[1]) for a in attempts], [("usage", "failed"), ("fx", "ok")])
        self.assertRegex(attempts[0][2], r"coverage \d+\.\d% is below min_coverage 90\.0%")
        with open(os.path.join(base, "bert_fx_metadata.json")) as f:
            meta = json.load(f)
        self.assertEqual(meta["export"]["strategy"], "fx")
        self.assertEqual([(a["name"], a["outcome"], a["reason"]) for a in meta["strategy_attempts"]],
                         attempts)
        for a in meta["strategy_attempts"]:
            self.assertGreaterEqual(a["seconds"], 0)

    def test_root_fallback_typo_names_the_key(self):
        r, _ = self.run_control_flow("typo", "  root_fallbak: true\n", "--strategy", "htp")
        self.assertEqual(r.returncode, 2, e2e.describe(r))
        self.assertRegex(r.stderr, r"unknown key 'export\.root_fallbak'.*did you mean 'root_fallback'")


# --------------------------------------------------------------------------
# export.isolation: process, with strategies that crash and hang
# --------------------------------------------------------------------------

MISBEHAVING = os.environ.get("MEXPORT_MISBEHAVING_PLUGINS") or os.path.join(
    e2e.REPO, "build", "tests", "misbehaving_plugins")


class ProcessIsolation(unittest.TestCase):
    """The fixture plugin tests/fixtures/plugins/misbehaving_strategies.cpp has
    strategies `segfault`, `abort` and `hang`."""

    TIMEOUT_S = 2

    def export(self, case, export_yaml, *flags):
        """(result, output dir) of BERT-tiny exported into a fresh directory."""
        base = e2e.fresh_dir("strategies", "isolation", case)
        cfg = bert_config(base, export_yaml)
        r = e2e.mexport("export", "--config", cfg, "--plugin-dir", MISBEHAVING, *flags)
        return r, base

    def outputs(self, out_dir):
        return sorted(f for f in os.listdir(out_dir) if f != "config.yaml")

    def test_crashes_and_hangs_fall_through_to_htp(self):
        chain = ("  strategy: auto\n  isolation: process\n"
                 f"  strategy_timeout: {self.TIMEOUT_S}\n  fallback: [segfault, abort, hang, htp]\n")
        r, out_dir = self.export("chain", chain)
        self.assertEqual(r.returncode, 0, e2e.describe(r))
        attempts = attempt_lines(r.stdout)
        self.assertEqual(sorted((a[0], a[1]) for a in attempts[:3]),
                         [("abort", "failed"), ("hang", "failed"), ("segfault", "failed")],
                         e2e.describe(r))
        self.assertEqual(attempts[3][:2], ("htp", "ok"))
        reasons = {a[0]: a[2] for a in attempts}
        self.assertRegex(reasons["segfault"], r"killed by signal SIGSEGV \(Segmentation fault\)")
        self.assertRegex(reasons["abort"], r"killed by signal SIGABRT \(Aborted\)")
        self.assertRegex(reasons["hang"], rf"timed out after {self.TIMEOUT_S} s .*killed")
        with open(os.path.join(out_dir, "bert_htp_metadata.json")) as f:
            meta = json.load(f)
        recorded = {a["name"]: a for a in meta["strategy_attempts"]}
        self.assertEqual({n: (a["outcome"], a["reason"]) for n, a in recorded.items()},
                         {a[0]: (a[1], a[2]) for a in attempts})
        # The timeout is a lower bound on the time the hanging attempt took.
        self.assertGreaterEqual(recorded["hang"]["seconds"], self.TIMEOUT_S)

        # Tags sent back from the child are those htp gives in process.
        r_in, in_dir = self.export("in-process", "  strategy: htp\n")
        self.assertEqual(r_in.returncode, 0, e2e.describe(r_in))
        with open(os.path.join(in_dir, "bert.onnx"), "rb") as a, \
                open(os.path.join(out_dir, "bert.onnx"), "rb") as b:
            self.assertEqual(a.read(), b.read(), "isolated and in-process exports differ")
        with open(os.path.join(in_dir, "bert_htp_metadata.json")) as f:
            self.assertEqual(json.load(f)["nodes"], meta["nodes"])
        for a in attempts:
            print(f"\n  {a[0]}: {a[1]} {a[2]}", end=" ")

    def test_an_explicit_crashing_strategy_is_a_one_line_error(self):
        r, out_dir = self.export("explicit", "", "--strategy", "segfault", "--isolate")
        self.assertEqual(r.returncode, 1, e2e.describe(r))
        self.assertEqual(len(r.stderr.splitlines()), 1, e2e.describe(r))
        self.assertRegex(r.stderr, r"segfault: crashed in its isolated process: killed by signal SIGSEGV")
        self.assertEqual(self.outputs(out_dir), [])

    def test_the_timeout_flag_overrides_the_config(self):
        r, out_dir = self.export("flag-timeout", "  isolation: process\n  strategy_timeout: 600\n",
                                 "--strategy", "hang", "--strategy-timeout", "0.5")
        self.assertEqual(r.returncode, 1, e2e.describe(r))
        self.assertRegex(r.stderr, r"hang: timed out after 0\.5 s")
        self.assertEqual(self.outputs(out_dir), [])

    def test_without_isolation_a_crash_ends_the_process_and_leaves_no_file(self):
        r, out_dir = self.export("in-process-abort", "", "--strategy", "abort")
        self.assertEqual(r.returncode, -signal.SIGABRT, e2e.describe(r))
        self.assertEqual(self.outputs(out_dir), [])

    def test_config_errors_name_the_key(self):
        for yaml, pattern in (("  isolation: sandbox\n", r"export\.isolation"),
                              ("  strategy_timeout: 0\n", r"export\.strategy_timeout.*positive")):
            r, _ = self.export("config-error", yaml, "--strategy", "htp")
            self.assertEqual(r.returncode, 2, e2e.describe(r))
            self.assertRegex(r.stderr, r"config\.yaml:\d+: .*" + pattern)


# --------------------------------------------------------------------------
# mexport benchmark
# --------------------------------------------------------------------------

class Benchmark(unittest.TestCase):
    REPEAT = 3

    @classmethod
    def setUpClass(cls):
        cls.dir = e2e.fresh_dir("strategies", "benchmark")
        cls.json_path = os.path.join(cls.dir, "bench.json")
        cls.svg_path = os.path.join(cls.dir, "bench.svg")
        cls.cfg = e2e.write(os.path.join(cls.dir, "config.yaml"), e2e.config_text(
            "bert", os.path.join(e2e.MODELS, "bert_tiny.pt"), os.path.join(cls.dir, "unused.onnx")))
        cls.result = e2e.mexport("benchmark", "--config", cls.cfg, "--strategies", ",".join(STRATEGIES),
                                 "--repeat", cls.REPEAT, "--json", cls.json_path, "--plot", cls.svg_path)
        cls.data = None
        if cls.result.returncode == 0:
            with open(cls.json_path) as f:
                cls.data = json.load(f)

    def setUp(self):
        self.assertEqual(self.result.returncode, 0, e2e.describe(self.result))

    def by_name(self):
        return {s["name"]: s for s in self.data["strategies"]}

    def test_prints_a_table_and_the_agreement_matrix(self):
        out = self.result.stdout
        print("\n" + out, end=" ")
        for s in STRATEGIES:
            self.assertRegex(out, rf"(?m)^{s}\s+\d+\.\d+\s+\d+\.\d+\s+\d+\.\d+")
        self.assertIn("agreement", out)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "unused.onnx")))

    def test_json_timings_and_coverage(self):
        self.assertEqual(self.data["repeat"], self.REPEAT)
        self.assertEqual([s["name"] for s in self.data["strategies"]], list(STRATEGIES))
        totals = set()
        for s in self.data["strategies"]:
            self.assertEqual(s["outcome"], "ok", s)
            for key in ("tag_seconds", "export_seconds"):
                t = s[key]
                self.assertEqual(len(t["runs"]), self.REPEAT, key)
                self.assertEqual(t["min"], min(t["runs"]))
                self.assertEqual(t["max"], max(t["runs"]))
                self.assertLessEqual(t["min"], t["median"])
                self.assertLessEqual(t["median"], t["max"])
            self.assertGreaterEqual(min(s["export_seconds"]["runs"]), min(s["tag_seconds"]["runs"]))
            c = s["coverage"]
            self.assertEqual(sum(c[p] for p in PROVENANCES), c["total"])
            self.assertAlmostEqual(c["tagged_ratio"], (c["total"] - c["untagged"]) / c["total"])
            totals.add(c["total"])
        self.assertEqual(len(totals), 1, "strategies lowered to different node counts")

    def test_json_matches_separate_exports(self):
        data = self.by_name()
        exports = {s: export_with("bert", "bert_tiny", s) for s in STRATEGIES}
        for s, x in exports.items():
            self.assertEqual(x.result.returncode, 0, e2e.describe(x.result))
            self.assertEqual(data[s]["coverage"], x.meta["coverage"], s)
            reached = {n[1] for n in x.nodes if n[1]}
            self.assertEqual(data[s]["modules_reached"], len(reached), s)
        for a in STRATEGIES:
            self.assertEqual(self.data["agreement"][a][a], 1.0)
            for b in STRATEGIES:
                expected = agreement(exports[a].nodes, exports[b].nodes)
                self.assertAlmostEqual(self.data["agreement"][a][b], expected, places=9,
                                       msg=f"agreement {a}/{b}")
                self.assertEqual(self.data["agreement"][a][b], self.data["agreement"][b][a])

    def test_svg_chart(self):
        root = ET.parse(self.svg_path).getroot()
        self.assertEqual(root.tag, "{http://www.w3.org/2000/svg}svg")
        texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
        for s in STRATEGIES:
            self.assertIn(s, texts)
        titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
        for s in STRATEGIES:
            self.assertTrue(any(t.startswith(f"{s}: median") for t in titles), s)
            self.assertTrue(any(t.startswith(f"{s}: ") and "direct of" in t for t in titles), s)

    def test_unknown_strategy_is_a_usage_error(self):
        r = e2e.mexport("benchmark", "--config", self.cfg, "--strategies", "htp,nope", "--repeat", 1)
        self.assertEqual(r.returncode, 2, e2e.describe(r))
        self.assertEqual(len(r.stderr.splitlines()), 1, e2e.describe(r))
        self.assertIn("unknown strategy 'nope'", r.stderr)

    def test_a_failing_strategy_is_reported_with_its_reason(self):
        base = e2e.fresh_dir("strategies", "benchmark-fail")
        json_path = os.path.join(base, "bench.json")
        cfg = e2e.write(os.path.join(base, "config.yaml"),
                        control_flow_config(os.path.join(base, "cf.onnx"), ""))
        r = e2e.mexport("benchmark", "--config", cfg, "--strategies", "fx", "--repeat", 1,
                        "--json", json_path)
        self.assertEqual(r.returncode, 1, e2e.describe(r))
        self.assertRegex(r.stdout, r"(?m)^fx\s+failed: prim::If in module 'gate'")
        with open(json_path) as f:
            entry = json.load(f)["strategies"][0]
        self.assertEqual((entry["name"], entry["outcome"]), ("fx", "failed"))
        self.assertIn("prim::If", entry["reason"])
        self.assertIsNone(entry["coverage"])


if __name__ == "__main__":
    unittest.main(verbosity=int(os.environ.get("MEXPORT_VERBOSITY", "2")))
