#!/usr/bin/python3
"""Bad input: one table row per case, each run through the real binary.

    MEXPORT_BIN=build/mexport MEXPORT_MODELS=build/tests/models MEXPORT_REPO=. \\
    MEXPORT_FIXTURE_PLUGINS=build/tests/fixture_plugins \\
    /usr/bin/python3 tests/e2e/test_bad_inputs.py [-v] [BadInputs.test_<case>]

Every case must end with exit code 1 (the work failed) or 2 (usage or config
error), exactly one line on stderr, `mexport: error: ...`, matching the row's
pattern (what, where, what to do), no crash (no signal, no Python or C++
traceback, no terminate/abort) and its output directory as it was: no output
file, no temporary. The interrupted exports instead end by the signal they
got, after the same one line. A summary table of every case is printed at
the end. The environment is that of test_export.py; the plugin rows need
MEXPORT_FIXTURE_PLUGINS (ctest sets it).

Fixtures are made here: truncated and corrupt copies of the seeded fixture
models and of a real export, a zip that is not TorchScript, configs with one
mistake each, .npy files, plugin directories holding one bad plugin each.
"""

import collections
import glob
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import unittest
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_export as e2e  # noqa: E402

FIXTURE_PLUGINS = os.environ.get("MEXPORT_FIXTURE_PLUGINS", "")
CRASH_SIGNS = re.compile(r"Traceback|terminate called|Aborted|Segmentation fault|core dumped|"
                         r"what\(\):|internal error|Assertion")
ERROR_LINE = "mexport: error: "
CONTROL_FLOW_INPUT = ("--input", "x:2x8:float32")  # the control_flow fixture's one input

# name, argv (without the binary), expected exit code, regex the error line
# must match (after "mexport: error: "), output directory that must stay as it
# was, extra paths that must not exist afterwards
Case = collections.namedtuple("Case", "name argv code pattern out absent")
RESULTS = []  # (case, exit code, stderr line) in the order run, for the summary


def fixture_dir(*parts):
    return e2e.fresh_dir("bad-inputs", *parts)


def listing(directory):
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else None


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------

class Fixtures:
    """Paths of the inputs the cases read; made once per run."""

    def __init__(self):
        e2e.ensure_models(["bert_tiny", "control_flow"])
        self.dir = fixture_dir("fixtures")
        self.bert = os.path.join(e2e.MODELS, "bert_tiny.pt")
        self.control_flow = os.path.join(e2e.MODELS, "control_flow.pt")
        rng = np.random.default_rng(8)
        with open(self.control_flow, "rb") as f:
            model_bytes = f.read()
        self.empty_pt = self.file("empty.pt", b"")
        self.truncated_pt = self.file("truncated.pt", model_bytes[:len(model_bytes) // 2])
        self.random_pt = self.file("random.pt", rng.bytes(4096))
        self.not_torchscript_pt = os.path.join(self.dir, "not_torchscript.pt")
        with zipfile.ZipFile(self.not_torchscript_pt, "w") as z:
            z.writestr("archive/data.pkl", b"not a pickle")
            z.writestr("archive/version", b"3\n")

        # A real export (with GraphML) for the malformed-file cases.
        self.good_onnx = os.path.join(self.dir, "good", "cf.onnx")
        r = e2e.mexport("export", self.control_flow, self.good_onnx, *CONTROL_FLOW_INPUT,
                        "--strategy", "htp", "--with-graphml")
        if r.returncode != 0:
            raise RuntimeError("the fixture export failed\n" + e2e.describe(r))
        with open(self.good_onnx, "rb") as f:
            onnx_bytes = f.read()
        self.truncated_onnx = self.file("truncated.onnx", onnx_bytes[:len(onnx_bytes) // 2])
        self.random_onnx = self.file("random.onnx", rng.bytes(4096))
        self.empty_onnx = self.file("empty.onnx", b"")
        graphml = os.path.join(self.dir, "good", "cf_hierarchical_graph.graphml")
        with open(graphml, "rb") as f:
            graphml_bytes = f.read()
        self.truncated_graphml = self.file("truncated.graphml",
                                           graphml_bytes[:len(graphml_bytes) // 2])
        self.other_graphml = self.file(
            "other.graphml", b'<?xml version="1.0"?>\n<graphml xmlns="http://graphml.graphdrawing.'
            b'org/xmlns"><graph id="G" edgedefault="directed"/></graphml>\n')
        self.no_sidecar_graphml = os.path.join(fixture_dir("no-sidecar"), "cf.graphml")
        shutil.copy(graphml, self.no_sidecar_graphml)

        self.float_npy = os.path.join(self.dir, "float32.npy")
        np.save(self.float_npy, np.ones((1, 16), dtype=np.float32))
        self.complex_npy = os.path.join(self.dir, "complex.npy")
        np.save(self.complex_npy, np.ones((1, 16), dtype=np.complex64))
        self.regular_file = self.file("a-file", b"a regular file, not a directory\n")

    def file(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path


# --------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------

def bert_config(name, out, edit=None):
    """configs/bert.yaml with absolute paths, output out/m.onnx, and `edit`
    ((old line, new line) or a function of the text) applied."""
    text = e2e.config_text("bert", FX.bert, os.path.join(out, "m.onnx"))
    if callable(edit):
        text = edit(text)
    elif edit:
        old, new = edit
        assert text.count(old + "\n") == 1, f"'{old}' is not one line of configs/bert.yaml"
        text = text.replace(old + "\n", new + "\n")
    return e2e.write(os.path.join(FX.dir, "configs", name + ".yaml"), text)


def plugin_dir_with(name, library=None, text=None, mode=0o755, dir_mode=0o755):
    """A directory holding one plugin: a copy of a fixture library or a text file."""
    directory = fixture_dir("plugins", name)
    target = os.path.join(directory, "lib" + name.replace("-", "_") + ".so")
    if library:
        shutil.copy(os.path.join(FIXTURE_PLUGINS, "libfixture_" + library + ".so"), target)
    else:
        with open(target, "w") as f:
            f.write(text)
    os.chmod(target, mode)
    os.chmod(directory, dir_mode)
    return directory, target


def build_cases():
    cases = []

    def add(name, code, pattern, argv, absent=()):
        cases.append(Case(name, [str(a) for a in argv(OUT[name])], code, pattern, OUT[name],
                          tuple(absent)))

    def export(model, *extra):
        return lambda out: ["export", model, os.path.join(out, "m.onnx"), *CONTROL_FLOW_INPUT,
                            *extra]

    def with_config(name, edit):
        return lambda out: ["export", "--config", bert_config(name, out, edit)]

    # --- the model file -------------------------------------------------
    add("empty-pt", 1, r"cannot load '.*empty\.pt' as TorchScript .*torch\.jit\.save",
        export(FX.empty_pt))
    add("truncated-pt", 1, r"cannot load '.*truncated\.pt' as TorchScript", export(FX.truncated_pt))
    add("non-zip-pt", 1, r"cannot load '.*random\.pt' as TorchScript", export(FX.random_pt))
    add("zip-not-torchscript", 1, r"cannot load '.*not_torchscript\.pt' as TorchScript",
        export(FX.not_torchscript_pt))
    add("missing-pt", 2, r"model file '.*missing\.pt' not found; trace it",
        export(os.path.join(FX.dir, "missing.pt")))

    # --- a forward that fails on the configured inputs: the input is named
    add("forward-wrong-shape", 1,
        r"failed on the example inputs at aten::add \(.*make_models\.py:\d+\): The size of tensor "
        r"a \(16\) must match the size of tensor b \(7\).*; the inputs reaching it, nearest "
        r"first: 'attention_mask' \(int64 \[1, 7\]\), 'input_ids' .*; check their shapes and "
        r"dtypes in .*wrong-shape\.yaml",
        with_config("wrong-shape", ("    shape: [1, 16]\n    dtype: int64\n    fill: 1",
                                    "    shape: [1, 7]\n    dtype: int64\n    fill: 1")))
    add("forward-wrong-dtype", 1,
        r"failed on the example inputs at aten::embedding .*: .*Long, Int; but got "
        r"\w*Float\w*.*; the inputs reaching it, nearest first: 'input_ids' \(float32 \[1, 16\]\);",
        with_config("wrong-dtype", ("    dtype: int64\n    range: [0, 1000]",
                                    "    dtype: float32\n    range: [0, 1000]")))
    add("forward-wrong-count", 2,
        r"wrong-count\.yaml: the model's forward takes 3 inputs \(input_ids, attention_mask, "
        r"token_type_ids\) but 2 are given \(input_ids, attention_mask\)",
        with_config("wrong-count", lambda text: re.sub(
            r"  - name: token_type_ids\n(    .*\n)+", "", text)))
    add("forward-wrong-count-flags", 2,
        r"command line: the model's forward takes 1 inputs \(x\) but 2 are given \(x, y\)",
        export(FX.control_flow, "--input", "y:2x8:float32"))

    # --- the config -------------------------------------------------------
    add("yaml-syntax-error", 2, r"yaml-syntax\.yaml:\d+: invalid YAML",
        with_config("yaml-syntax", ("  opset: 17", "  opset: [17")))
    add("unknown-key", 2, r"unknown-key\.yaml:\d+: unknown key 'exprot'; did you mean 'export'",
        with_config("unknown-key", ("export:", "exprot:")))
    add("wrong-type", 2, r"wrong-type\.yaml:\d+: 'export\.opset' must be an integer",
        with_config("wrong-type", ("  opset: 17", "  opset: seventeen")))
    add("negative-dim", 2,
        r"negative-dim\.yaml:\d+: input 'input_ids' has dimension -16 on axis 1; every dimension "
        r"must be at least 1",
        with_config("negative-dim", ("    shape: [1, 16]\n    dtype: int64\n    range: [0, 1000]",
                                     "    shape: [1, -16]\n    dtype: int64\n    range: [0, 1000]")))
    add("zero-dim", 2, r"zero-dim\.yaml:\d+: input 'input_ids' has dimension 0 on axis 0",
        with_config("zero-dim", ("    shape: [1, 16]\n    dtype: int64\n    range: [0, 1000]",
                                 "    shape: [0, 16]\n    dtype: int64\n    range: [0, 1000]")))
    add("zero-dim-flag", 2, r"--input 'x:0x8:float32': bad dimension '0'",
        lambda out: ["export", FX.control_flow, os.path.join(out, "m.onnx"), "--input",
                     "x:0x8:float32"])
    add("unknown-dtype", 2, r"unknown-dtype\.yaml:\d+: 'dtype' must be one of .*did you mean "
        r"'float32'", with_config("unknown-dtype", ("    dtype: int64\n    range: [0, 1000]",
                                                   "    dtype: float33\n    range: [0, 1000]")))
    add("missing-npy", 2, r"input file '.*missing\.npy' not found",
        with_config("missing-npy", ("    shape: [1, 16]\n    dtype: int64\n    fill: 1",
                                    "    file: missing.npy")))
    add("npy-wrong-dtype", 2,
        r"input 'attention_mask': .*float32\.npy holds float32 values but the config says dtype "
        r"int64; save the array as int64",
        with_config("npy-wrong-dtype", ("    shape: [1, 16]\n    dtype: int64\n    fill: 1",
                                        f"    file: {e2e.yaml_str(FX.float_npy)}\n"
                                        "    dtype: int64")))
    add("npy-unsupported-dtype", 2, r"complex\.npy: NumPy dtype 'c8' is not supported",
        with_config("npy-unsupported", ("    shape: [1, 16]\n    dtype: int64\n    fill: 1",
                                        f"    file: {e2e.yaml_str(FX.complex_npy)}")))
    add("opset-too-low", 2, r"opset 13 is not supported; use 14 to 17",
        export(FX.control_flow, "--opset", "13"))
    add("opset-too-high", 2, r"opset 18 is not supported; use 14 to 17",
        export(FX.control_flow, "--opset", "18"))

    # --- the output -------------------------------------------------------
    # Tests run as root, who ignores permission bits; sysfs refuses new files
    # to everyone, root included, so /sys is a directory nobody can write.
    add("output-dir-unwritable", 1,
        r"cannot write '/sys/mexport-bad-inputs\.onnx': (Permission denied|Read-only file system|"
        r"Operation not permitted); choose an output directory you can write to",
        lambda out: ["export", FX.control_flow, "/sys/mexport-bad-inputs.onnx",
                     *CONTROL_FLOW_INPUT],
        absent=["/sys/mexport-bad-inputs.onnx"])
    add("output-parent-is-a-file", 1,
        r"cannot create the output directory '.*/a-file/sub': .*; choose a directory you can "
        r"write to",
        lambda out: ["export", FX.control_flow, os.path.join(FX.regular_file, "sub", "m.onnx"),
                     *CONTROL_FLOW_INPUT])
    add("output-is-a-directory", 2,
        r"output '.*/existing-dir' is a directory; give the path of the file to write",
        lambda out: ["export", FX.control_flow, os.path.join(out, "existing-dir"),
                     *CONTROL_FLOW_INPUT])
    add("output-dev-full", 1,
        r"cannot write '/dev/full': No space left on device; free some space",
        lambda out: ["export", FX.control_flow, "/dev/full", *CONTROL_FLOW_INPUT],
        absent=["/dev/full_htp_metadata.json", "/dev/full_htp_export_report.txt"])

    # --- plugin directories: each holds one bad plugin ------------------------
    if FIXTURE_PLUGINS:
        def with_plugins(name, **kwargs):
            directory, _ = plugin_dir_with(name, **kwargs)
            return export(FX.control_flow, "--plugin-dir", directory)

        add("plugin-not-a-library", 2,
            r"plugin .*/libnot_a_library\.so refused: cannot be loaded: .*\(`mexport plugins`",
            with_plugins("not-a-library", text="not an ELF file\n"))
        add("plugin-no-entry-point", 2,
            r"plugin .*/libno_entry_point\.so refused: has no mexport_plugin_descriptor\(\) entry "
            r"point; define it with MEXPORT_PLUGIN",
            with_plugins("no-entry-point", library="no_entry_point"))
        add("plugin-wrong-abi", 2,
            r"plugin .*/libwrong_abi\.so refused: built for plugin ABI \d+, this mexport has ABI "
            r"\d+; rebuild it against this SDK",
            with_plugins("wrong-abi", library="wrong_abi"))
        add("plugin-duplicate-name", 2,
            r"plugin .*/libduplicate_name\.so refused: .*strategy 'htp' is already registered",
            with_plugins("duplicate-name", library="duplicate_strategy"))
        add("plugin-register-throws", 2,
            r"plugin .*/libregister_throws\.so refused: plugin 'fixture-failing' failed to "
            r"register: fixture refuses to register",
            with_plugins("register-throws", library="failing_register"))
        add("plugin-dir-world-writable", 2,
            r"plugin directory .*/world_dir refused: world-writable \(mode 0777\), so anyone could "
            r"add a plugin to it; run chmod o-w .*/world_dir",
            with_plugins("world_dir", library="good_strategy", dir_mode=0o777))
        add("plugin-file-world-writable", 2,
            r"plugin .*/libworld_file\.so refused: world-writable \(mode 0777\), so anyone could "
            r"change its code; run chmod o-w .*/libworld_file\.so",
            with_plugins("world_file", library="good_strategy", mode=0o777))

    # --- malformed files given to analyze / validate / compare / graphml-to-onnx
    not_onnx = r"'{}' is not a valid ONNX model .*; check that it is an \.onnx file"
    add("analyze-random-bytes", 1, not_onnx.format(".*random\\.onnx"),
        lambda out: ["analyze", FX.random_onnx])
    add("analyze-truncated", 1, not_onnx.format(".*truncated\\.onnx"),
        lambda out: ["analyze", FX.truncated_onnx])
    add("analyze-empty", 1, r"'.*empty\.onnx' is empty, not an ONNX model",
        lambda out: ["analyze", FX.empty_onnx])
    add("analyze-missing", 2, r"cannot read '.*missing\.onnx': no such file",
        lambda out: ["analyze", os.path.join(FX.dir, "missing.onnx")])
    add("validate-truncated", 1, not_onnx.format(".*truncated\\.onnx"),
        lambda out: ["validate", FX.truncated_onnx, "--save-outputs", os.path.join(out, "npy")])
    add("compare-random-bytes", 1, not_onnx.format(".*random\\.onnx"),
        lambda out: ["compare", FX.good_onnx, FX.random_onnx])
    add("graphml-not-well-formed", 1, r"truncated\.graphml:\d+: .*",
        lambda out: ["graphml-to-onnx", FX.truncated_graphml, os.path.join(out, "r.onnx")])
    add("graphml-not-mexport", 1, r"other\.graphml.*not a mexport GraphML",
        lambda out: ["graphml-to-onnx", FX.other_graphml, os.path.join(out, "r.onnx")])
    add("graphml-missing-sidecar", 1, r"cf\.graphml.*sidecar",
        lambda out: ["graphml-to-onnx", FX.no_sidecar_graphml, os.path.join(out, "r.onnx")])
    add("graphml-missing-file", 2, r"missing\.graphml",
        lambda out: ["graphml-to-onnx", os.path.join(FX.dir, "missing.graphml"),
                     os.path.join(out, "r.onnx")])
    return cases


class OutDirs(dict):
    """case name -> a fresh, empty output directory."""

    def __missing__(self, name):
        path = fixture_dir("out", name)
        self[name] = path
        return path


FX = None  # the Fixtures, made by setUpModule
OUT = OutDirs()


def setUpModule():
    global FX
    if not (os.path.isfile(e2e.BIN) and os.access(e2e.BIN, os.X_OK)):
        raise RuntimeError(f"mexport binary not found: {e2e.BIN} (set MEXPORT_BIN)")
    FX = Fixtures()
    os.makedirs(os.path.join(OUT["output-is-a-directory"], "existing-dir"))


def tearDownModule():
    if not RESULTS:
        return
    width = max(len(name) for name, _, _ in RESULTS)
    print(f"\n\n{'case':<{width}}  exit  message", file=sys.stderr)
    for name, code, line in RESULTS:
        print(f"{name:<{width}}  {code:>4}  {line}", file=sys.stderr)
    print(f"{len(RESULTS)} cases", file=sys.stderr)


# --------------------------------------------------------------------------
# the checks
# --------------------------------------------------------------------------

class BadInputs(unittest.TestCase):

    def test_table(self):
        """Every row of build_cases(), each a subtest that passes or fails alone."""
        for case in build_cases():
            with self.subTest(case.name):
                self.run_case(case)

    def check_one_error_line(self, r, name):
        said = r.stdout + r.stderr
        self.assertIsNone(CRASH_SIGNS.search(said), "crash signs\n" + e2e.describe(r))
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, "expected exactly one line on stderr\n" + e2e.describe(r))
        self.assertTrue(lines[0].startswith(ERROR_LINE), e2e.describe(r))
        RESULTS.append((name, r.returncode, lines[0][len(ERROR_LINE):]))
        return lines[0][len(ERROR_LINE):]

    def run_case(self, case):
        before = listing(case.out)
        r = e2e.run([e2e.BIN] + case.argv)
        message = self.check_one_error_line(r, case.name)
        self.assertEqual(r.returncode, case.code, e2e.describe(r))
        self.assertRegex(message, case.pattern, e2e.describe(r))
        self.assertEqual(listing(case.out), before, "output left behind\n" + e2e.describe(r))
        for path in case.absent:
            self.assertFalse(os.path.lexists(path), f"{path} left behind\n" + e2e.describe(r))
            self.assertEqual(glob.glob(glob.escape(path) + ".tmp*"), [],
                             "temporary left behind\n" + e2e.describe(r))

    # --- interrupted exports ----------------------------------------------------

    def interrupt(self, signum):
        """An export whose ONNX output is a FIFO nobody reads: the metadata and
        report are staged as temporaries, then writing the FIFO waits for a
        reader. The signal comes while both temporaries exist: it must remove
        them, print one line and end the process by that signal."""
        name = f"interrupted-{signal.Signals(signum).name}"
        out = OUT[name]
        fifo = os.path.join(out, "m.onnx")
        os.mkfifo(fifo)
        before = listing(out)
        # The signal's default action, even when this test runs where it is
        # ignored (mexport keeps an ignored SIGINT ignored, as it should).
        proc = subprocess.Popen(
            [e2e.BIN, "export", FX.control_flow, fifo, *CONTROL_FLOW_INPUT, "--strategy", "htp"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            preexec_fn=lambda: signal.signal(signum, signal.SIG_DFL))
        temporaries = []
        while proc.poll() is None and len(temporaries) < 2:
            time.sleep(0.01)
            temporaries = [n for n in os.listdir(out) if ".tmp" in n]
        self.assertIsNone(proc.poll(), "the export ended before it was interrupted")
        self.assertEqual(len(temporaries), 2, temporaries)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate()
        r = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        message = self.check_one_error_line(r, name)
        self.assertEqual(r.returncode, -signum, "not ended by the signal\n" + e2e.describe(r))
        self.assertEqual(message, f"interrupted by {signal.Signals(signum).name}; unfinished output "
                                  "files were removed")
        self.assertEqual(listing(out), before, "files left behind\n" + e2e.describe(r))
        self.assertTrue(stat.S_ISFIFO(os.stat(fifo).st_mode), "the FIFO itself was replaced")

    def test_interrupted_by_sigint(self):
        self.interrupt(signal.SIGINT)

    def test_interrupted_by_sigterm(self):
        self.interrupt(signal.SIGTERM)

    # --- not errors: the guarantees around them ---------------------------------

    def test_missing_parent_directories_are_created(self):
        out = os.path.join(OUT["parents"], "a", "b", "m.onnx")
        r = e2e.mexport("export", FX.control_flow, out, *CONTROL_FLOW_INPUT, "--strategy", "htp")
        self.assertEqual(r.returncode, 0, e2e.describe(r))
        self.assertEqual(listing(os.path.dirname(out)),
                         ["m.onnx", "m_htp_export_report.txt", "m_htp_metadata.json"])

    def test_an_existing_output_is_replaced_whole(self):
        out = os.path.join(OUT["replace"], "m.onnx")
        with open(out, "w") as f:
            f.write("an older file")
        os.link(out, out + ".older")  # a second name for the old inode: it must be untouched
        r = e2e.mexport("export", FX.control_flow, out, *CONTROL_FLOW_INPUT, "--strategy", "htp")
        self.assertEqual(r.returncode, 0, e2e.describe(r))
        with open(out + ".older") as f:
            self.assertEqual(f.read(), "an older file", "written in place, not replaced")
        import onnx
        onnx.checker.check_model(onnx.load(out), full_check=True)

    @unittest.skipUnless(FIXTURE_PLUGINS, "MEXPORT_FIXTURE_PLUGINS not set (ctest sets it)")
    @unittest.skipUnless(os.geteuid() == 0, "giving a file to another group needs root")
    def test_plugin_writable_by_another_group(self):
        directory, plugin = plugin_dir_with("group_file", library="good_strategy", mode=0o775)
        os.chown(plugin, 0, 54321)
        out = OUT["plugin-file-group-writable"]
        case = Case("plugin-file-group-writable",
                    ["export", FX.control_flow, os.path.join(out, "m.onnx"), *CONTROL_FLOW_INPUT,
                     "--plugin-dir", directory], 2,
                    r"plugin .*/libgroup_file\.so refused: writable by group 54321 \(mode 0775\), so "
                    r"its members could change its code; run chmod g-w", out, ())
        self.run_case(case)

    @unittest.skipUnless(FIXTURE_PLUGINS, "MEXPORT_FIXTURE_PLUGINS not set (ctest sets it)")
    def test_plugins_come_only_from_the_named_directories(self):
        """Neither the working directory nor LD_LIBRARY_PATH is searched."""
        env = dict(os.environ, LD_LIBRARY_PATH=FIXTURE_PLUGINS + ":" +
                   os.environ.get("LD_LIBRARY_PATH", ""))
        env.pop("MEXPORT_PLUGIN_PATH", None)
        r = subprocess.run([e2e.BIN, "plugins"], cwd=FIXTURE_PLUGINS, env=env, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, e2e.describe(r))
        self.assertNotIn("fixture", r.stdout, e2e.describe(r))
        self.assertIn("htp", r.stdout.split("rejected plugins:")[0], e2e.describe(r))

    @unittest.skipUnless(FIXTURE_PLUGINS, "MEXPORT_FIXTURE_PLUGINS not set (ctest sets it)")
    def test_plugins_command_lists_a_refused_directory(self):
        directory, _ = plugin_dir_with("listed_world_dir", library="good_strategy",
                                       dir_mode=0o777)
        r = e2e.mexport("plugins", "--plugin-dir", directory)
        self.assertEqual(r.returncode, 0, e2e.describe(r))
        rejected = r.stdout.split("rejected plugins:")[1]
        self.assertRegex(rejected, rf"{re.escape(directory)}: world-writable \(mode 0777\)")
        self.assertNotIn("fixture-good", r.stdout.split("rejected plugins:")[0])


if __name__ == "__main__":
    unittest.main(verbosity=int(os.environ.get("MEXPORT_VERBOSITY", "2")))
