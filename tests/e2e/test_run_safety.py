#!/usr/bin/python3
"""End-to-end tests that no export runs forever, aborts or is killed for memory:

- a model whose forward never ends on the example inputs fails after
  export.reference_timeout with one line naming the stage and where the run
  was, and exports without any real run when validation is off;
- an example input too big for this machine's memory is refused in one line
  with the estimate and the way out, before any of it is made, and
  `--no-validate` exports it from shapes alone;
- quantization-aware-trained models (fake-quantized conv2d, conv2d + relu,
  fused conv-bn-relu, per-channel linear; FakeQuantize and torch.ao's default
  fused observer) export as QuantizeLinear / DequantizeLinear pairs and match
  PyTorch in ONNX Runtime; with their observers still on, they export or fail
  with one line, never with a signal.

    MEXPORT_BIN=build/mexport MEXPORT_WORK=/tmp/safety MEXPORT_REPO=. \\
        /usr/bin/python3 -m unittest tests/e2e/test_run_safety.py
"""

import os
import shutil
import subprocess
import sys
import unittest

import onnx
import torch
import torch.ao.quantization as tq
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_ops  # noqa: E402  (shared helpers: run, flatten, write_inputs, ...)
import test_zoo  # noqa: E402  (export_and_compare)
import zoo_models  # noqa: E402  (save_torchscript)

TIMEOUT = 300  # seconds any one mexport process may take here before the test fails


def mexport(*args):
    """Runs mexport; a hang fails the test instead of stalling the suite."""
    try:
        return subprocess.run([test_ops.BIN, *args], capture_output=True, text=True,
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"mexport {' '.join(args)} did not finish within {TIMEOUT} s") \
            from None


def error_line(case, result):
    """The one stderr line of a failed command (exit 1, not a signal)."""
    case.assertEqual(result.returncode, 1, result.stderr)
    lines = result.stderr.strip().splitlines()
    case.assertEqual(len(lines), 1, f"one line expected: {result.stderr}")
    case.assertTrue(lines[0].startswith("mexport: error: "), lines[0])
    return lines[0]


def fresh(*parts):
    directory = os.path.join(test_ops.WORK, "safety", *parts)
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    return directory


def available_memory():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no MemAvailable in /proc/meminfo")


class Step(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return torch.tanh(self.fc(x))


class Endless(nn.Module):
    """Steps x, which stays in [-1, 1], until its sum is below -1e30: on any
    input, never."""

    def __init__(self):
        super().__init__()
        self.step = Step()

    def forward(self, x):
        while bool(x.sum() > -1.0e30):
            x = self.step(x)
        return x


# --- quantization-aware training ------------------------------------------------------------


class QatConvNet(nn.Module):
    """conv-bn-relu, conv-relu and a plain conv, then a linear head."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(16, 16, 3)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(16, 8, 1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.conv2(x))
        x = self.conv3(x)
        return self.fc(x.mean((2, 3)))


QCONFIGS = {
    # FakeQuantize per tensor (what torch.onnx exports once observers are off)
    "per_tensor": tq.default_qat_qconfig,
    # per-channel weights: the linear and convs quantize per output channel
    "per_channel": tq.QConfig(activation=tq.default_fake_quant,
                              weight=tq.default_per_channel_weight_fake_quant),
    # torch.ao's default for fbgemm: the fused moving-average observer op
    "fused": tq.get_default_qat_qconfig("fbgemm"),
}


def qat_model(qconfig, observers_on):
    """A seeded QAT model, trained for a few steps so that its observers have
    seen data, in eval mode."""
    torch.manual_seed(0)
    model = QatConvNet().train()
    tq.fuse_modules_qat(model, [["conv1", "bn1", "relu1"], ["conv2", "relu2"]], inplace=True)
    model.qconfig = qconfig
    tq.prepare_qat(model, inplace=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(4):
        optimizer.zero_grad()
        model(torch.randn(4, 3, 12, 12)).pow(2).mean().backward()
        optimizer.step()
    model.eval()
    if not observers_on:
        model.apply(tq.disable_observer)
    return model


class RunSafetyTest(test_ops.EndToEndTest):

    def test_a_forward_that_never_ends_fails_at_the_reference_timeout(self):
        directory = fresh("endless")
        model = os.path.join(directory, "model.pt")
        torch.manual_seed(0)
        zoo_models.save_torchscript(Endless().eval(), None, True, model)
        onnx_path = os.path.join(directory, "model.onnx")
        line = error_line(self, mexport("export", model, onnx_path, "--input", "x:2x8:float32",
                                        "--reference-timeout", "3"))
        self.assertIn("the reference run did not finish within 3 s", line)
        self.assertIn("export.reference_timeout", line)
        self.assertRegex(line, r"it had last reached (aten|prim)::\w+ in (module 'step[.\w]*'|"
                               r"the root module)")
        self.assertFalse(os.path.exists(onnx_path), "nothing is written")
        # The walk types the loop without running it: no real run, no timeout.
        r = mexport("export", model, onnx_path, "--input", "x:2x8:float32", "--no-validate",
                    "--reference-timeout", "3")
        self.assertEqual(r.returncode, 0, r.stderr)
        onnx.checker.check_model(onnx.load(onnx_path), full_check=True)

    def test_a_negative_reference_timeout_is_a_usage_error(self):
        r = mexport("export", "model.pt", "out.onnx", "--input", "x:2x8:float32",
                    "--reference-timeout", "-1")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("reference timeout", r.stderr)

    def test_an_input_too_big_for_memory_is_refused_before_it_is_made(self):
        import torchvision
        directory = fresh("huge")
        model = os.path.join(directory, "model.pt")
        torch.manual_seed(0)
        zoo_models.save_torchscript(torchvision.models.resnet18().eval(),
                                    (torch.randn(1, 3, 64, 64),), False, model)
        # resnet18 at 2048 x 2048 holds about 0.6 GB of activations per image
        # at once: a batch that needs twice this machine's free memory.
        batch = max(8, 2 * available_memory() // (512 << 20))
        shape = f"x:{batch}x3x2048x2048:float32"
        onnx_path = os.path.join(directory, "model.onnx")
        line = error_line(self, mexport("export", model, onnx_path, "--input", shape))
        self.assertRegex(line, r"the reference run would need about [\d.]+ GB")
        self.assertRegex(line, r"but [\d.]+ GB of memory is available")
        self.assertIn("--no-validate", line)
        self.assertFalse(os.path.exists(onnx_path), "nothing is written")
        # From shapes alone: no example input is made, nothing runs.
        r = mexport("export", model, onnx_path, "--input", shape, "--no-validate")
        self.assertEqual(r.returncode, 0, r.stderr)
        exported = onnx.load(onnx_path)
        onnx.checker.check_model(exported, full_check=True)
        dims = [d.dim_value for d in exported.graph.input[0].type.tensor_type.shape.dim]
        self.assertEqual(dims, [batch, 3, 2048, 2048])

    def test_qat_models_export_as_quantize_dequantize_pairs(self):
        for name, qconfig in QCONFIGS.items():
            with self.subTest(qconfig=name):
                model = qat_model(qconfig, observers_on=False)
                inputs = {"x": torch.randn(2, 3, 12, 12)}
                exported = test_zoo.export_and_compare(self, "qat_" + name, model, inputs, {})
                kinds = [n.op_type for n in exported.graph.node]
                # Activations and weights of three convs and a linear, at least.
                self.assertGreaterEqual(kinds.count("QuantizeLinear"), 6, name)
                self.assertEqual(kinds.count("QuantizeLinear"), kinds.count("DequantizeLinear"))

    def test_qat_models_with_observers_on_never_abort(self):
        for name, qconfig in QCONFIGS.items():
            with self.subTest(qconfig=name):
                directory = fresh("qat_observing", name)
                model = os.path.join(directory, "model.pt")
                example = (torch.randn(2, 3, 12, 12),)
                zoo_models.save_torchscript(qat_model(qconfig, observers_on=True), example, False,
                                            model)
                r = mexport("export", model, os.path.join(directory, "model.onnx"),
                            "--input", "x:2x3x12x12:float32")
                if r.returncode != 0:
                    error_line(self, r)


if __name__ == "__main__":
    unittest.main()
