#!/usr/bin/python3
"""End-to-end tests of mexport's op converters, one per op family (PNNX style).

Each test builds a small seeded nn.Module that uses several ops of one family,
traces it, exports it with the real binary (no-config form), runs the ONNX
file in ONNX Runtime (tests/e2e/ort_run.js, onnxruntime-node) on inputs made
here, and compares with PyTorch's outputs on the same inputs.

    MEXPORT_BIN=build/mexport MEXPORT_WORK=/tmp/ops MEXPORT_REPO=. \\
        /usr/bin/python3 -m unittest tests/e2e/test_ops.py

MEXPORT_BIN is the mexport binary, MEXPORT_WORK a scratch directory (a fresh
temporary one if unset), MEXPORT_REPO the repository root (default: two levels
up from this file). Use Debian's /usr/bin/python3 (torch 1.13).
"""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = os.environ.get("MEXPORT_REPO") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("MEXPORT_BIN", "")
WORK = os.environ.get("MEXPORT_WORK") or tempfile.mkdtemp(prefix="mexport_ops_")
ORT_RUN = os.path.join(REPO, "tests", "e2e", "ort_run.js")

ATOL = 1e-4
RTOL = 1e-3

# torch dtype -> (name used by mexport --input and ort_run.js, numpy dtype)
DTYPES = {
    torch.float32: ("float32", np.float32),
    torch.float64: ("float64", np.float64),
    torch.int64: ("int64", np.int64),
    torch.int32: ("int32", np.int32),
    torch.bool: ("bool", np.bool_),
}
NUMPY_BY_NAME = {name: np_type for name, np_type in DTYPES.values()}


def skip_reason():
    if not BIN or not os.access(BIN, os.X_OK):
        return "MEXPORT_BIN is not set to the mexport binary"
    if shutil.which("node") is None:
        return "node is not installed"
    if not os.path.isdir(os.path.join(REPO, "node_modules", "onnxruntime-node")):
        return f"onnxruntime-node is not installed in {REPO}/node_modules"
    return None


def flatten(outputs):
    """A model's outputs as a flat list of tensors (tuples flattened in order)."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    flat = []
    for item in outputs:
        flat.extend(flatten(item))
    return flat


def run(cmd, what):
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise AssertionError(f"{what} failed with exit code {result.returncode}: "
                             f"{(result.stderr or result.stdout).strip()}")
    return result


def write_inputs(directory, inputs):
    os.makedirs(directory, exist_ok=True)
    specs = []
    for name, tensor in inputs.items():
        dtype, np_type = DTYPES[tensor.dtype]
        file = name + ".bin"
        tensor.numpy().astype(np_type).tofile(os.path.join(directory, file))
        specs.append({"name": name, "dtype": dtype, "shape": list(tensor.shape), "file": file})
    with open(os.path.join(directory, "inputs.json"), "w") as f:
        json.dump(specs, f, indent=1)


def read_outputs(directory):
    with open(os.path.join(directory, "outputs.json")) as f:
        specs = json.load(f)
    arrays = []
    for spec in specs:
        path = os.path.join(directory, spec["file"])
        data = np.fromfile(path, dtype=NUMPY_BY_NAME[spec["dtype"]])
        arrays.append((spec["name"], data.reshape(spec["shape"])))
    return arrays


def assert_outputs_match(case, what, expected, actual, rtol=RTOL, atol=ATOL, float16_rtol=1e-2,
                         atol_scaled=False):
    """ONNX Runtime's outputs (name, array) against PyTorch's (tensors): the
    count, each shape, the dtype of floats, floats within rtol / atol (atol
    times the output's largest magnitude with `atol_scaled`; float16 with
    `float16_rtol`), other dtypes exactly."""
    case.assertEqual(len(actual), len(expected), f"{what}: number of outputs")
    for i, (want, (output_name, got)) in enumerate(zip(expected, actual)):
        want = want.numpy()
        message = f"{what}: output {i} ({output_name})"
        case.assertEqual(list(got.shape), list(want.shape), message + ": shape")
        if np.issubdtype(want.dtype, np.floating):
            case.assertEqual(got.dtype, want.dtype, message + ": dtype")
            tolerance = float16_rtol if want.dtype == np.float16 else rtol
            scale = max(1.0, float(np.abs(want).max())) if atol_scaled and want.size else 1.0
            np.testing.assert_allclose(got, want, rtol=tolerance, atol=atol * scale,
                                       err_msg=message)
        else:
            np.testing.assert_array_equal(got.astype(want.dtype), want, err_msg=message)


class EndToEndTest(unittest.TestCase):
    """Skips when the binary, node or onnxruntime-node is missing."""

    @classmethod
    def setUpClass(cls):
        reason = skip_reason()
        if reason:
            raise unittest.SkipTest(reason)
        torch.set_num_threads(1)  # the machine is shared with a compiler


class OpFamilyTest(EndToEndTest):
    """Export, run in ONNX Runtime, compare with PyTorch."""

    def check(self, name, module, inputs):
        """Traces `module` on `inputs` (name -> tensor, in forward() order),
        exports it and checks ONNX Runtime's outputs against PyTorch's."""
        directory = os.path.join(WORK, name)
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory)
        model_path = os.path.join(directory, "model.pt")
        onnx_path = os.path.join(directory, "model.onnx")

        module = module.eval()
        example = tuple(inputs.values())
        with torch.no_grad():
            torch.jit.trace(module, example, check_trace=False).save(model_path)
            expected = flatten(torch.jit.load(model_path)(*example))

        command = [BIN, "export", model_path, onnx_path]
        for input_name, tensor in inputs.items():
            shape = "x".join(str(d) for d in tensor.shape)
            command += ["--input", f"{input_name}:{shape}:{DTYPES[tensor.dtype][0]}"]
        run(command, "mexport export")

        in_dir = os.path.join(directory, "in")
        out_dir = os.path.join(directory, "out")
        write_inputs(in_dir, inputs)
        run(["node", ORT_RUN, onnx_path, in_dir, out_dir], "ort_run.js")
        actual = read_outputs(out_dir)

        self.assertEqual([output_name for output_name, _ in actual],
                         ["output" if i == 0 else f"output_{i}" for i in range(len(actual))])
        assert_outputs_match(self, name, expected, actual)

    # --- one test per converter family ------------------------------------

    def test_elementwise(self):
        class Elementwise(nn.Module):
            def forward(self, x, y, n):
                positive = y.abs() + 0.5
                m = n - 5  # int64 with negative values
                return (
                    torch.add(x, y, alpha=2), x - y, x * y, x / positive, 1.0 - x,
                    x ** 2, torch.pow(positive, y), torch.sqrt(positive), -x, torch.exp(x),
                    torch.log(positive), torch.reciprocal(positive), torch.rsqrt(positive),
                    x.floor(), x.ceil(), torch.maximum(x, y), torch.minimum(x, y),
                    x == y, x != x, x < y, x > 0.5, x <= y, x >= 0, n > 4,
                    torch.where(x > y, x, y), x.masked_fill(x < 0, -1.0),
                    x.clamp(-0.5, 0.5), x.clamp(min=0.1), torch.clip(x, max=0.2),
                    # int64 with a Python float is float32 in PyTorch
                    x + n, n * 2.5, n / 4, m // 3, torch.remainder(m, 3),
                    torch.div(m, 3, rounding_mode="trunc"),
                    torch.div(x, positive, rounding_mode="floor"), torch.remainder(x, positive),
                    torch.logical_not(x > 0), (x > 0) & (y > 0),
                )

        torch.manual_seed(0)
        inputs = {"x": torch.randn(2, 3, 8), "y": torch.randn(2, 3, 8),
                  "n": torch.randint(0, 10, (2, 3, 8))}
        self.check("elementwise", Elementwise(), inputs)

    def test_inplace_elementwise(self):
        class InPlace(nn.Module):
            def forward(self, x, y):
                z = x.clone()
                z.add_(y)
                z.mul_(2.0)
                z.sub_(y, alpha=0.5)
                z.div_(4.0)
                z.clamp_(-1.0, 1.0)
                return z

        torch.manual_seed(0)
        self.check("inplace", InPlace(), {"x": torch.randn(2, 3, 8), "y": torch.randn(2, 3, 8)})

    def test_activation(self):
        class Activations(nn.Module):
            def __init__(self):
                super().__init__()
                self.relu = nn.ReLU(inplace=True)
                self.relu6 = nn.ReLU6(inplace=True)
                self.prelu = nn.PReLU(3)
                with torch.no_grad():
                    self.prelu.weight.uniform_(0.1, 0.5)

            def forward(self, x):
                return (
                    self.relu(x.clone()), self.relu6(x * 4), F.gelu(x),
                    F.gelu(x, approximate="tanh"), torch.tanh(x), torch.sigmoid(x), F.silu(x),
                    F.hardswish(x * 4), F.hardsigmoid(x * 4), F.softmax(x, dim=-1),
                    F.log_softmax(x, dim=1), F.softmax(x, dim=0, dtype=torch.float64),
                    F.leaky_relu(x, 0.2), F.elu(x, 0.7), F.softplus(x, beta=2.0), F.mish(x),
                    self.prelu(x), F.selu(x), F.hardtanh(x, -0.3, 0.4),
                )

        torch.manual_seed(0)
        self.check("activation", Activations(), {"x": torch.randn(2, 3, 8)})

    def test_linear(self):
        class Linear(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc3d = nn.Linear(8, 5)
                self.fc2d = nn.Linear(8, 6)
                self.no_bias = nn.Linear(8, 4, bias=False)
                self.bias = nn.Parameter(torch.randn(3))
                self.weight = nn.Parameter(torch.randn(8, 3))

            def forward(self, x):
                first = x[:, 0]  # 2-D: Gemm
                scores = torch.matmul(x, x.transpose(1, 2))
                return (
                    self.fc3d(x), self.fc2d(first), self.no_bias(x), scores,
                    torch.bmm(scores, x), torch.mm(first, self.weight),
                    torch.addmm(self.bias, first, self.weight, beta=0.5, alpha=2.0),
                    torch.baddbmm(scores, scores, scores, alpha=0.5),
                    torch.einsum("bij,bkj->bik", x, x),
                )

        torch.manual_seed(0)
        self.check("linear", Linear(), {"x": torch.randn(2, 3, 8)})

    def test_normalization(self):
        class Norms(nn.Module):
            def __init__(self):
                super().__init__()
                self.layer_norm = nn.LayerNorm(6)
                self.plain_layer_norm = nn.LayerNorm([4, 6], elementwise_affine=False)
                self.batch_norm = nn.BatchNorm1d(4)
                self.group_norm = nn.GroupNorm(2, 4)
                self.instance_norm = nn.InstanceNorm1d(4, affine=True)
                affine = (self.layer_norm, self.batch_norm, self.group_norm, self.instance_norm)
                with torch.no_grad():  # non-trivial affine parameters and statistics
                    for m in affine:
                        m.weight.uniform_(0.5, 1.5)
                        m.bias.uniform_(-0.5, 0.5)
                    self.batch_norm.running_mean.uniform_(-0.5, 0.5)
                    self.batch_norm.running_var.uniform_(0.5, 1.5)

            def forward(self, x):
                return (self.layer_norm(x), self.plain_layer_norm(x), self.batch_norm(x),
                        self.batch_norm(x[:, :, 0]), self.group_norm(x), self.instance_norm(x))

        torch.manual_seed(0)
        self.check("normalization", Norms(), {"x": torch.randn(2, 4, 6)})

    def test_conv(self):
        class Convs(nn.Module):
            def __init__(self):
                super().__init__()
                self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
                self.bn = nn.BatchNorm2d(8)
                self.relu = nn.ReLU(inplace=True)
                self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)
                self.same = nn.Conv2d(8, 4, 3, padding="same", dilation=2)
                self.up = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
                self.pool = nn.MaxPool2d(3, stride=2, padding=1)
                self.avg = nn.AvgPool2d(2)
                self.gap = nn.AdaptiveAvgPool2d(1)
                self.grid = nn.AdaptiveAvgPool2d((2, 2))
                self.conv1d = nn.Conv1d(3, 4, 5, stride=2)
                with torch.no_grad():
                    self.bn.running_mean.uniform_(-0.5, 0.5)
                    self.bn.running_var.uniform_(0.5, 1.5)

            def forward(self, x):
                y = self.relu(self.bn(self.stem(x)))
                z = self.depthwise(y)
                z += y  # in-place residual add: aten::add_
                return (
                    torch.flatten(self.gap(z), 1), self.same(z), self.up(z), self.pool(z),
                    self.avg(z), self.grid(z), F.max_pool2d(z, 2, ceil_mode=True),
                    self.conv1d(x.flatten(2)),
                )

        torch.manual_seed(0)
        self.check("conv", Convs(), {"x": torch.randn(1, 3, 16, 16)})

    def test_shape(self):
        class Shapes(nn.Module):
            def forward(self, x):
                batch = x.size(0)
                n = x.size(1) * 2  # prim::NumToTensor, aten::mul, aten::Int
                a, b = x.split(2, dim=1)
                head, tail = x.split(3, dim=1)  # uneven: 3 + 1
                c0, c1, c2 = x.chunk(3, dim=-1)
                u0, u1, u2, u3 = x.unbind(1)
                return (
                    x.view(batch, -1), x.reshape(batch, n // 2, -1), x.permute(2, 0, 1),
                    x.transpose(-1, -2).contiguous(), x[0].t(), x.unsqueeze(1), x.unsqueeze(-1),
                    x[:, :1].squeeze(1), x[:, :1].squeeze(), x.flatten(0, 1), x.flatten(1),
                    x[:, :1].expand(-1, 3, -1), x[:, :1].expand(batch, 3, -1),
                    x[:, :1].expand_as(x), x[:, 1:x.size(1) - 1], x[:, ::2, -3:], x[:, 2], x[1],
                    torch.cat([a, b * 2], dim=-1),
                    torch.stack([a, b], dim=1), head, tail, c0 + c1 - c2, u0 * u3, u1 - u2,
                    F.dropout(x, 0.5, training=False), x.clone().detach(),
                    x.to(torch.float64), (x > 0).to(torch.int64), (x > 0).type_as(x),
                    torch.ones(batch, 3), torch.zeros(2, n), torch.full((batch, 2), 1.5),
                    torch.arange(x.size(2)), torch.arange(1, 7, 2, dtype=torch.float32),
                    torch.zeros_like(x), x.new_ones(3, 2), x.repeat(1, 2, 1),
                    x.repeat(2, 1, 1, 1), F.pad(x, (1, 2)), F.pad(x, (1, 1, 2, 0), value=0.5),
                    F.pad(x, (2, 2), mode="reflect"),
                    torch.triu(x), torch.tril(x, -1), x.view(-1, 6).size(0) * x[:, :1, :1],
                )

        torch.manual_seed(0)
        self.check("shape", Shapes(), {"x": torch.randn(2, 4, 6)})

    def test_writes_through_views(self):
        class Writes(nn.Module):
            def forward(self, x, y):
                cache = torch.zeros(2, 5, 8)
                cache[:, 1:4] = x  # copy_ into a slice
                cache[1, 0] = y[0]  # into a select of a select
                cache[:, :, ::2] = 1.5  # fill_ on a stepped slice
                whole = torch.empty(2, 8)
                whole.copy_(y)  # into the whole tensor
                states = x.clone()
                states[:, -1] = states[:, 0] * 2  # from the tensor it writes to
                steps = x.clone()
                steps[:, :, 1::3] = y.unsqueeze(1)[:, :, :3]  # broadcast into a stepped slice
                return cache, whole, states, steps

        torch.manual_seed(0)
        self.check("writes", Writes(), {"x": torch.randn(2, 3, 8), "y": torch.randn(2, 8)})

    def test_index_put(self):
        class IndexPut(nn.Module):
            def forward(self, x, scores, idx):
                masked = x.clone()
                masked[scores > 0] = 0.0  # a scalar where a bool mask is true
                rows = x[0].clone()
                rows[scores[0] > 0] = torch.ones(8)  # one row broadcast over the rows picked
                picked = x.reshape(10, 8).clone()
                picked[idx - 10] = x[1, 0] * 2  # integer rows counted from the end
                return masked, rows, picked

        torch.manual_seed(0)
        self.check("index_put", IndexPut(), {"x": torch.randn(2, 5, 8), "scores": torch.randn(2, 5),
                                             "idx": torch.tensor([3, 7])})

    def test_bool_mask_index(self):
        class Masked(nn.Module):
            def forward(self, x, scores):
                picked = x[scores > 0]  # [n, 8]: n depends on the data
                return picked, picked.sum(0), x[x > 0.5].sum()

        torch.manual_seed(0)
        self.check("bool_mask", Masked(), {"x": torch.randn(2, 5, 8), "scores": torch.randn(2, 5)})

    def test_embedding(self):
        class Lookups(nn.Module):
            def __init__(self):
                super().__init__()
                self.embedding = nn.Embedding(10, 4, padding_idx=0)
                self.table = nn.Parameter(torch.randn(10, 3))

            def forward(self, ids):
                vectors = self.embedding(ids)
                return (vectors, torch.index_select(self.table, 0, ids[0]),
                        torch.gather(vectors, 2, ids.unsqueeze(-1) % 4))

        torch.manual_seed(0)
        self.check("embedding", Lookups(), {"ids": torch.randint(0, 10, (2, 5))})

    def test_reduction(self):
        class Reductions(nn.Module):
            def forward(self, x):
                values, indices = x.max(dim=2)
                low, low_at = torch.min(x, 0, keepdim=True)
                return (
                    x.mean(dim=-1, keepdim=True), x.mean(dim=(0, 2)), x.mean(),
                    x.sum(dim=(1, 2)), x.sum(), x.sum(dim=1, keepdim=True), torch.amax(x, dim=1),
                    torch.amin(x, dim=(0, 1)), values, indices, low, low_at, torch.max(x),
                    torch.argmax(x, dim=1), torch.argmin(x, dim=-1, keepdim=True), torch.argmax(x),
                    torch.logsumexp(x, dim=2), torch.cumsum(x, dim=1), torch.prod(x, dim=1),
                    (x > 0).sum(dim=2),
                )

        torch.manual_seed(0)
        self.check("reduction", Reductions(), {"x": torch.randn(2, 4, 6)})


if __name__ == "__main__":
    unittest.main()
