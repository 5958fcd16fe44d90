#!/usr/bin/python3
"""End-to-end test of the plugin SDK: install mexport into a temporary prefix,
build the two third-party plugins of tests/fixtures/out_of_tree_plugin/ out of
tree against it (find_package(mexport)), and export with them through each way
mexport finds plugins: --plugin-dir, $MEXPORT_PLUGIN_PATH and plugins.paths.

    MEXPORT_BIN=build/mexport MEXPORT_MODELS=tests/models MEXPORT_REPO=. \\
    MEXPORT_WORK=/tmp/mexport-e2e /usr/bin/python3 tests/e2e/test_plugins_sdk.py [-v]

The environment is that of test_export.py; the build tree installed is the
directory of MEXPORT_BIN (or MEXPORT_BUILD). Needs cmake and a compiler.
"""

import glob
import json
import os
import shutil
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_export as e2e  # noqa: E402

BUILD = os.path.abspath(os.environ.get("MEXPORT_BUILD") or os.path.dirname(e2e.BIN))
FIXTURE = os.path.join(e2e.REPO, "tests", "fixtures", "out_of_tree_plugin")
CMAKE = shutil.which("cmake") or "cmake"


def setUpModule():
    if not (os.path.isfile(e2e.BIN) and os.access(e2e.BIN, os.X_OK)):
        raise RuntimeError(f"mexport binary not found: {e2e.BIN} (set MEXPORT_BIN)")
    e2e.ensure_models(["bert_tiny", "unsupported_op"])


def step(cmd, timeout=900):
    r = e2e.run(cmd, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("step failed\n" + e2e.describe(r))
    return r


def unsupported_op_config(out_path, extra=""):
    model = os.path.join(e2e.MODELS, "unsupported_op.pt")
    return (f"model:\n  path: {e2e.yaml_str(model)}\n"
            "inputs:\n  - name: x\n    shape: [2, 8]\n    dtype: float32\n    dynamic: {0: batch}\n"
            f"outputs: [y]\nexport:\n  output: {e2e.yaml_str(out_path)}\n  strategy: htp\n"
            f"emitters: [onnx, metadata, report]\n{extra}")


class PluginSdk(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.prefix = e2e.fresh_dir("sdk", "prefix")
        step([CMAKE, "--install", BUILD, "--prefix", cls.prefix])
        cls.bin = os.path.join(cls.prefix, "bin", "mexport")
        build = e2e.fresh_dir("sdk", "build")
        configure = [CMAKE, "-S", FIXTURE, "-B", build, "-DCMAKE_PREFIX_PATH=" + cls.prefix,
                     "-DCMAKE_BUILD_TYPE=Release"]
        if shutil.which("ccache"):
            configure.append("-DCMAKE_CXX_COMPILER_LAUNCHER=ccache")
        step(configure)
        step([CMAKE, "--build", build, "-j2"])
        cls.plugin_dir = e2e.fresh_dir("sdk", "plugins")
        for library in glob.glob(os.path.join(build, "lib*.so")):
            shutil.copy(library, cls.plugin_dir)

    def installed(self, *args, env=None):
        cmd = [self.bin] + [str(a) for a in args]
        if env is None:
            return e2e.run(cmd)
        import subprocess
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL, timeout=e2e.TIMEOUT,
                              env=dict(os.environ, **env))

    def test_installed_layout(self):
        for path in ("bin/mexport", "include/mexport/plugin.h", "include/mexport/strategy.h",
                     "include/mexport/lowering.h", "lib/cmake/mexport/mexportConfig.cmake",
                     "lib/cmake/mexport/mexportConfigVersion.cmake",
                     "lib/cmake/mexport/mexportTargets.cmake", "lib/mexport/plugins/libmexport_htp.so"):
            self.assertTrue(os.path.exists(os.path.join(self.prefix, path)), path)
        self.assertTrue(glob.glob(os.path.join(self.prefix, "lib*", "libmexport.so*")))
        self.assertEqual(sorted(os.listdir(self.plugin_dir)),
                         ["libexample_cumprod.so", "libexample_toplevel.so"])

    def test_plugins_command_lists_both(self):
        r = self.installed("plugins", "--plugin-dir", self.plugin_dir)
        self.assertEqual(r.returncode, 0, e2e.describe(r))
        loaded = r.stdout.split("rejected plugins:")[0]
        self.assertRegex(loaded, r"example-toplevel 1\.0\.0 .*libexample_toplevel\.so\): strategy toplevel")
        self.assertRegex(loaded, r"example-cumprod 1\.0\.0 .*: converter aten::cumprod")
        # The installed host loads its own built-in plugins, not the build tree's.
        self.assertRegex(loaded, r"htp .*\(" + self.prefix + r"/lib/mexport/plugins/libmexport_htp\.so\)")
        self.assertEqual(r.stdout.split("rejected plugins:")[1].split("strategies:")[0].split(),
                         ["none"])

    def test_strategy_from_plugin_dir(self):
        out_dir = e2e.fresh_dir("sdk", "toplevel")
        out = os.path.join(out_dir, "bert.onnx")
        cfg = e2e.write(os.path.join(out_dir, "config.yaml"),
                        e2e.config_text("bert", os.path.join(e2e.MODELS, "bert_tiny.pt"), out))
        r = self.installed("export", "--config", cfg, "--strategy", "toplevel",
                           "--plugin-dir", self.plugin_dir)
        self.assertEqual(r.returncode, 0, e2e.describe(r))
        r_htp = self.installed("export", "--config", cfg, "--strategy", "htp")
        self.assertEqual(r_htp.returncode, 0, e2e.describe(r_htp))
        import onnx
        onnx.checker.check_model(onnx.load(out), full_check=True)
        with open(os.path.join(out_dir, "bert_toplevel_metadata.json")) as f:
            top = json.load(f)
        with open(os.path.join(out_dir, "bert_htp_metadata.json")) as f:
            htp = json.load(f)
        self.assertEqual(top["export"]["strategy"], "toplevel")
        self.assertEqual(top["coverage"]["untagged"], 0)
        root = next(m for m in top["modules"] if m["path"] == "")
        allowed = {root["tag"]} | {m["tag"] for m in top["modules"] if m["path"] and "." not in m["path"]}
        # Node names differ (they hold the tag); the lowering, hence the order, is shared.
        top_nodes, htp_nodes = list(top["nodes"].values()), list(htp["nodes"].values())
        self.assertEqual([n["source"] for n in top_nodes], [n["source"] for n in htp_nodes])
        for t, h in zip(top_nodes, htp_nodes):
            self.assertIn(t["tag"], allowed)
            if t["provenance"] == "direct" and h["provenance"] == "direct":
                # htp's tag cut to its top-level module.
                self.assertEqual(t["tag"], "/".join(h["tag"].split("/")[:3]), (t, h))

    def check_cumprod_export(self, out, result):
        self.assertEqual(result.returncode, 0, e2e.describe(result))
        import onnx
        import torch
        model = onnx.load(out)
        onnx.checker.check_model(model, full_check=True)
        self.assertIn("CumSum", [n.op_type for n in model.graph.node])
        with open(out.replace(".onnx", "_htp_metadata.json")) as f:
            nodes = json.load(f)["nodes"]
        cumprod = [n for n in nodes.values() if n["source"] == "aten::cumprod"]
        self.assertTrue(cumprod)
        self.assertTrue(all(n["tag"] == "/UnsupportedOpModel/odd" for n in cumprod), cumprod)

        # ONNX Runtime against PyTorch, negative values and a zero included.
        x = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
        x[1, 4] = 0.0
        in_dir = os.path.join(os.path.dirname(out), "ort-in")
        out_dir = os.path.join(os.path.dirname(out), "ort-out")
        os.makedirs(in_dir, exist_ok=True)
        x.tofile(os.path.join(in_dir, "x.bin"))
        e2e.write(os.path.join(in_dir, "inputs.json"), json.dumps(
            [{"name": "x", "dtype": "float32", "shape": list(x.shape), "file": "x.bin"}]))
        r = e2e.run([e2e.NODE, e2e.ORT_RUN, out, in_dir, out_dir], timeout=300)
        self.assertEqual(r.returncode, 0, e2e.describe(r))
        with open(os.path.join(out_dir, "outputs.json")) as f:
            o = json.load(f)[0]
        got = np.fromfile(os.path.join(out_dir, o["file"]), dtype=np.float32).reshape(o["shape"])
        with torch.no_grad():
            expected = torch.jit.load(os.path.join(e2e.MODELS, "unsupported_op.pt"))(
                torch.from_numpy(x)).numpy()
        diff = float(np.max(np.abs(got - expected)))
        print(f"\n  cumprod plugin: max abs diff {diff:.3g}", end=" ")
        self.assertTrue(np.allclose(got, expected, atol=e2e.ATOL, rtol=e2e.RTOL), f"diff {diff}")

    def test_without_the_plugin_cumprod_is_unsupported(self):
        out_dir = e2e.fresh_dir("sdk", "no-plugin")
        cfg = e2e.write(os.path.join(out_dir, "config.yaml"),
                        unsupported_op_config(os.path.join(out_dir, "m.onnx")))
        r = self.installed("export", "--config", cfg)
        self.assertEqual(r.returncode, 1, e2e.describe(r))
        self.assertIn("aten::cumprod", r.stderr)

    def test_converter_from_env_path(self):
        out_dir = e2e.fresh_dir("sdk", "env")
        out = os.path.join(out_dir, "m.onnx")
        cfg = e2e.write(os.path.join(out_dir, "config.yaml"), unsupported_op_config(out))
        r = self.installed("export", "--config", cfg,
                           env={"MEXPORT_PLUGIN_PATH": "/nonexistent:" + self.plugin_dir})
        self.check_cumprod_export(out, r)

    def test_converter_from_config_plugin_paths(self):
        out_dir = e2e.fresh_dir("sdk", "config-paths")
        out = os.path.join(out_dir, "m.onnx")
        relative = os.path.relpath(self.plugin_dir, out_dir)  # relative to the config file
        cfg = e2e.write(os.path.join(out_dir, "config.yaml"), unsupported_op_config(
            out, f"plugins:\n  paths: [{e2e.yaml_str(relative)}]\n"))
        self.check_cumprod_export(out, self.installed("export", "--config", cfg))

    def test_converter_from_plugin_dir_with_the_build_tree_binary(self):
        out_dir = e2e.fresh_dir("sdk", "build-tree")
        out = os.path.join(out_dir, "m.onnx")
        cfg = e2e.write(os.path.join(out_dir, "config.yaml"), unsupported_op_config(out))
        self.check_cumprod_export(out, e2e.mexport("export", "--config", cfg,
                                                   "--plugin-dir", self.plugin_dir))


if __name__ == "__main__":
    unittest.main(verbosity=int(os.environ.get("MEXPORT_VERBOSITY", "2")))
