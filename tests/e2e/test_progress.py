#!/usr/bin/python3
"""End-to-end tests of the export's progress display.

On a terminal (stderr on a pseudo-terminal, made with Python's pty module)
an export shows its stages on one line that updates in place. The display
waits a second before it appears; MEXPORT_PROGRESS_DELAY=0 makes it appear at
once, so that the quick BERT-tiny export shows every stage. Checked: each
stage in order (load, tag, lower, check, validate, write), the node counts of
lower and validate at their end, the bytes written equal to the files'
sizes, the line erased before the summary and before an error; nothing with
a delay longer than the export, nothing with --quiet, nothing in a pipe, and
one line per stage with --verbose.

Environment as tests/e2e/test_export.py.
"""

import os
import pty
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_export import (BIN, MODELS, TIMEOUT, config_text, describe, ensure_models,  # noqa: E402
                         fresh_dir, mexport, write)

import onnx  # noqa: E402

STAGES = ["load", "tag", "lower", "check", "validate", "write"]
ERASE = "\r\x1b[K"  # carriage return, erase to the end of the line


def setUpModule():
    ensure_models(["bert_tiny", "unsupported_op"])


def on_terminal(args, delay):
    """Runs mexport with stderr on a pseudo-terminal and stdout in a pipe;
    returns (exit code, what the terminal received, stdout)."""
    env = dict(os.environ)
    env.pop("MEXPORT_PROGRESS_DELAY", None)
    if delay is not None:
        env["MEXPORT_PROGRESS_DELAY"] = str(delay)
    master, slave = pty.openpty()
    with subprocess.Popen([BIN] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=slave, env=env) as process:
        os.close(slave)
        received = b""
        while True:  # until the process has closed the terminal
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: no writer left
                break
            if not chunk:
                break
            received += chunk
        os.close(master)
        stdout = process.stdout.read().decode()
        code = process.wait(timeout=TIMEOUT)
    return code, received.decode(errors="replace").replace("\r\n", "\n"), stdout


def drawn_lines(terminal):
    """The successive states of the progress line."""
    return [part for part in terminal.split(ERASE) if part.startswith("mexport: [")]


class Progress(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = fresh_dir("progress")
        cls.onnx_path = os.path.join(cls.dir, "out", "bert.onnx")
        cls.cfg = write(os.path.join(cls.dir, "config.yaml"),
                        config_text("bert", os.path.join(MODELS, "bert_tiny.pt"), cls.onnx_path))

    def export_args(self, *flags):
        return ["export", "--config", self.cfg, "--strategy", "htp", *flags]

    def test_stages_on_a_terminal(self):
        code, terminal, stdout = on_terminal(self.export_args(), delay=0)
        self.assertEqual(code, 0, terminal + stdout)
        lines = drawn_lines(terminal)
        print("\n  " + "\n  ".join(lines), end=" ")
        stages = [re.match(r"mexport: \[(\w+)\]", line).group(1) for line in lines]
        self.assertEqual([s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s], STAGES,
                         terminal)
        for line in lines:
            self.assertRegex(line, r"^mexport: \[\w+\] (\d+/\d+ nodes |\d+\.\d MB )?\(\d+\.\d s\)$")

        # Each counting stage is drawn as it ends, with its full count.
        graph = onnx.load(self.onnx_path).graph
        last = {stage: line for stage, line in zip(stages, lines)}
        done, total = map(int, re.search(r"(\d+)/(\d+) nodes", last["validate"]).groups())
        self.assertEqual((done, total), (len(graph.node), len(graph.node)), last["validate"])
        done, total = map(int, re.search(r"(\d+)/(\d+) nodes", last["lower"]).groups())
        self.assertEqual(done, total, last["lower"])
        written = [line.split()[-1] for line in stdout.splitlines() if line.startswith("  wrote ")]
        megabytes = sum(os.path.getsize(path) for path in written) / 1e6
        self.assertIn(f"[write] {megabytes:.1f} MB", last["write"])

        # The line is erased before the summary goes out.
        self.assertTrue(terminal.endswith(ERASE), repr(terminal[-200:]))
        self.assertIn("mexport: exported bert-tiny", stdout)

    def test_nothing_before_the_delay(self):
        code, terminal, stdout = on_terminal(self.export_args(), delay=3600)
        self.assertEqual(code, 0, terminal + stdout)
        self.assertEqual(terminal, "")
        self.assertIn("mexport: exported bert-tiny", stdout)

    def test_nothing_with_quiet(self):
        code, terminal, stdout = on_terminal(self.export_args("--quiet"), delay=0)
        self.assertEqual(code, 0, terminal + stdout)
        self.assertEqual(terminal, "")
        self.assertEqual(stdout, "")

    def test_nothing_in_a_pipe(self):
        r = subprocess.run([BIN] + self.export_args(), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=TIMEOUT,
                           env=dict(os.environ, MEXPORT_PROGRESS_DELAY="0"))
        self.assertEqual(r.returncode, 0, describe(r))
        self.assertEqual(r.stderr, "", describe(r))
        self.assertIn("mexport: exported bert-tiny", r.stdout)

    def test_verbose_prints_one_line_per_stage(self):
        r = mexport(*self.export_args("--verbose"))
        self.assertEqual(r.returncode, 0, describe(r))
        self.assertNotIn("\r", r.stderr)
        self.assertRegex(r.stderr, r"(?s)^mexport: loading .*bert_tiny\.pt\nmexport: tagging\n"
                                   r"mexport: lowering to ONNX opset 17\nmexport: checking\n"
                                   r"mexport: validating against PyTorch\nmexport: writing\n$")

    def test_an_error_gets_a_line_of_its_own(self):
        out = os.path.join(fresh_dir("progress", "error"), "m.onnx")
        code, terminal, _ = on_terminal(
            ["export", os.path.join(MODELS, "unsupported_op.pt"), out, "--input", "x:2x8:float32"],
            delay=0)
        self.assertEqual(code, 1, terminal)
        self.assertIn("mexport: [lower]", terminal)
        last = terminal.split(ERASE)[-1]
        self.assertRegex(last, r"^mexport: error: .*aten::cumprod.*\n$")


if __name__ == "__main__":
    unittest.main(verbosity=2)
