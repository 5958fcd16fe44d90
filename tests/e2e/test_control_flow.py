#!/usr/bin/python3
"""End-to-end control-flow conformance set: scripted (torch.jit.script) seeded
models with data-dependent `if`, `while` and `for` (break, continue, early
return, nesting, loop-carried tuples and Optional values, a list a loop fills,
tensor-valued conditions, a greedy decoder writing into a preallocated tensor,
a branch that would fail if forced on the example, a loop that never runs on
the example and a carried tensor that grows, a list read inside the loop that
grows it), and a growing list of ragged elements, which mexport refuses in one
line.

Each model is exported ONCE by the real binary (no-config form, so the export's
example inputs are mexport's own seeded standard-normal ones) and then run in
ONNX Runtime (tests/e2e/ort_run.js) on several inputs that take different
branches and loop trip counts; every output must equal PyTorch's (atol 1e-4,
rtol 1e-3; integers exactly). Each model also returns an int64 indicator
(trip count, branch id, ...), and before exporting the test checks from
PyTorch's own outputs that its inputs reach at least two (mostly three or more)
different indicator values, so a case cannot silently test one path only.
Every ONNX node, sub-graph nodes included, must carry a module tag, and the
file must pass onnx.checker.check_model(full_check=True).

    MEXPORT_BIN=build/mexport MEXPORT_WORK=/tmp/cfwork MEXPORT_REPO=. \\
        /usr/bin/python3 -m unittest tests/e2e/test_control_flow.py

An export or ONNX Runtime run that takes longer than TIMEOUT seconds fails its
case (a hang must not stall the suite).
"""

import os
import shutil
import subprocess
import sys
import unittest
from typing import List, Optional, Tuple

import onnx
import torch
import torch.nn as nn
from torch import Tensor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_ops  # noqa: E402  (shared helpers: flatten, write_inputs, read_outputs, ...)
import test_zoo  # noqa: E402  (all_nodes, check_metadata)
import zoo_models  # noqa: E402  (save_torchscript)

TIMEOUT = 60  # seconds per mexport / ONNX Runtime process (an export takes about 1 s)


def run(command, what):
    """Runs a command that must succeed within TIMEOUT seconds."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{what} did not finish within {TIMEOUT} s") from None
    if result.returncode != 0:
        raise AssertionError(f"{what} failed with exit code {result.returncode}: "
                             f"{(result.stderr or result.stdout).strip()}")
    return result


def path_of(indicator):
    """An indicator tensor as a hashable value: an int, or a tuple of ints."""
    values = tuple(int(v) for v in indicator.flatten().tolist())
    return values[0] if len(values) == 1 else values


# --- 1. the issue's model ----------------------------------------------------


class Cell(nn.Module):
    """A linear map that grows two of the basis' directions (x1.6), keeps two
    (x1) and shrinks four (x0.5), squashed by a scaled tanh that saturates at 12."""

    def __init__(self, basis):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        gains = torch.tensor([1.6, 1.6, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5])
        with torch.no_grad():
            self.fc.weight.copy_(basis @ torch.diag(gains) @ basis.t())
            self.fc.bias.zero_()

    def forward(self, h):
        return torch.tanh(self.fc(h) / 12.0) * 12.0


class IssueModel(nn.Module):
    def __init__(self, basis):
        super().__init__()
        self.cell = Cell(basis)
        self.head = nn.Linear(8, 8)

    def forward(self, h):
        steps = 0
        while steps < 20 and bool(h.abs().mean() > 0.05):
            h = self.cell(h)
            steps += 1
            if bool(h.max() > 10.0):
                break
        if bool(h.sum() > 0):
            out = self.head(h) + 1.0
        else:
            out = self.head(h) - 1.0
        return out, torch.full([1], steps, dtype=torch.long)


# --- 2. nested loops -----------------------------------------------------------


class NestedLoops(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        outer = 0
        inner = 0
        while bool(x.abs().max() > 1.0):
            n = int((x.abs() > 2.0).sum())  # the inner trip count depends on the data
            for _ in range(n):
                x = x + 0.1 * torch.tanh(self.fc(x))
                inner += 1
            x = x * 0.5
            outer += 1
        return x, torch.tensor([outer, inner], dtype=torch.long)


# --- 3. continue -----------------------------------------------------------------


class ContinueLoop(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):  # [6, 8]
        acc = torch.zeros_like(x[0])
        skipped = 0
        for i in range(x.size(0)):
            row = x[i]
            if bool(row.sum() < 0):
                skipped += 1
                continue
            acc = acc + self.fc(row)
        return acc, torch.full([1], skipped, dtype=torch.long)


# --- 4. early return ---------------------------------------------------------------


class EarlyReturn(nn.Module):
    def __init__(self):
        super().__init__()
        self.negative = nn.Linear(8, 8)
        self.large = nn.Linear(8, 8)
        self.small = nn.Linear(8, 8)

    def helper(self, x) -> Tuple[Tensor, int]:
        if bool(x.mean() > 0.5):
            return self.large(x), 1
        y = self.small(x)
        return y * 2.0, 2

    def forward(self, x):
        if bool(x.max() < 0):
            return self.negative(x), torch.full([1], 0, dtype=torch.long)
        y, branch = self.helper(x)
        return y + 1.0, torch.full([1], branch, dtype=torch.long)


# --- 5. a loop-carried tuple -----------------------------------------------------------


class CarriedTuple(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        state: Tuple[Tensor, Tensor] = (x, torch.zeros_like(x))
        steps = 0
        while bool(state[0].abs().sum() > 1.0) and steps < 10:
            h, c = state
            c = c + self.fc(h)
            h = h * 0.5
            state = (h, c)
            steps += 1
        return state[0], state[1], torch.full([1], steps, dtype=torch.long)


# --- 6. lists a loop fills ------------------------------------------------------------------


class FilledList(nn.Module):
    """A `while` appends one state per trip; after it the list is stacked,
    iterated over and counted (the loop's ONNX scan output)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        outs: List[Tensor] = []
        h = x
        steps = 0
        while steps == 0 or bool(h.abs().max() > 0.5):
            h = h * 0.5 + 0.1 * torch.tanh(self.fc(h))
            outs.append(h)
            steps += 1
        total = torch.zeros_like(x)
        for o in outs:
            total = total + o
        return torch.stack(outs), total, outs[-1], torch.full([1], len(outs), dtype=torch.long)


class CarriedList(nn.Module):
    """Reads the list it grows inside the loop (outs[-1], len(outs)): the list
    becomes the stack of its elements, carried by the loop."""
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        outs: List[Tensor] = [x]
        while bool(outs[-1].abs().max() > 0.5) and len(outs) < 8:
            outs.append(outs[-1] * 0.5 + 0.1 * torch.tanh(self.fc(outs[-1])))
        total = torch.zeros_like(x)
        for o in outs:
            total = total + o
        return torch.stack(outs), total, torch.full([1], len(outs), dtype=torch.long)


class RaggedList(nn.Module):
    """Grows a list of tensors that each have one more row than the last and
    reads it inside the loop: no single stack holds them, so it is refused."""

    def forward(self, x):
        outs: List[Tensor] = [x]
        while len(outs) < 4:
            outs.append(torch.cat([outs[-1], outs[-1][:1]], 0))
        return outs[-1]


# --- 7. Optional[Tensor] -------------------------------------------------------------------


class OptionalValues(nn.Module):
    def __init__(self):
        super().__init__()
        self.positive = nn.Linear(8, 8)
        self.negative = nn.Linear(8, 8)

    def forward(self, x):
        y: Optional[Tensor] = None
        if bool(x.sum() > 0):
            y = self.positive(x)
        flag = 0
        if y is not None:
            out = y * 2.0
            flag = 1
        else:
            out = self.negative(x)
        peak: Optional[Tensor] = None  # carried through a loop
        for i in range(x.size(0)):
            if bool(x[i].max() > 2.0):
                peak = x[i]
        if peak is not None:
            out = out + peak
            flag += 2
        return out, torch.full([1], flag, dtype=torch.long)


# --- 8. tensor-valued conditions -------------------------------------------------------------


class TensorConditions(nn.Module):
    def __init__(self):
        super().__init__()
        self.squash = nn.Linear(8, 8)
        self.head = nn.Linear(8, 8)

    def forward(self, x):
        branch = 0
        if (x > 2.0).any():
            x = torch.tanh(self.squash(x))
            branch = 1
        elif (x < -2.0).any():
            x = -x
            branch = 2
        steps = 0
        while x.norm() < 5:
            x = x * 2.0 + 0.1
            steps += 1
        return self.head(x), torch.tensor([branch, steps], dtype=torch.long)


# --- 9. a greedy decoder ----------------------------------------------------------------------


class GreedyDecoder(nn.Module):
    """Embedding + GRUCell, one argmax token per step from the start token,
    until the end token or max_length; returns the tokens (padded with pad)
    and the length."""

    def __init__(self, vocab=8, hidden=8, max_length=8):
        super().__init__()
        self.embedding = nn.Embedding(vocab, hidden)
        self.cell = nn.GRUCell(hidden, hidden)
        self.out = nn.Linear(hidden, vocab)
        self.max_length = max_length
        self.pad = 0
        self.end = 1
        self.start = 2

    def forward(self, h):  # [1, hidden]: the initial state
        token = torch.full([1], self.start, dtype=torch.long)
        tokens = torch.full([self.max_length], self.pad, dtype=torch.long)
        length = 0
        for step in range(self.max_length):
            h = self.cell(self.embedding(token), h)
            token = self.out(h).argmax(-1)
            tokens[step] = token[0]
            length = step + 1
            if bool(token[0] == self.end):
                break
        return tokens, torch.full([1], length, dtype=torch.long)


# --- 10. a branch that fails when forced on the example --------------------------------------


class UntakenBranch(nn.Module):
    """The `if` runs only when some |x| > 5, never on a standard-normal
    example; forced there, the outliers are empty and both max() and [0]
    raise."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        mask = x.abs() > 5.0
        count = int(mask.sum())
        if count > 0:
            outliers = x[mask]
            y = self.fc(x / outliers.abs().max()) + outliers[0]
        else:
            y = self.fc(x)
        return y, torch.full([1], count, dtype=torch.long)


# --- 11. a loop that never runs on the example, carrying a growing tensor ---------------------


class GrowingLoop(nn.Module):
    """The `while` runs only when some |x| > 10 (never on a standard-normal
    example); each trip appends a row to `trail` (torch.cat), so the output's
    first dim is 1 + the trip count."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.head = nn.Linear(8, 8)

    def forward(self, x):
        h = x
        trail = x.sum(0, keepdim=True)
        steps = 0
        while bool(h.abs().max() > 10.0):
            h = h * 0.5 + torch.tanh(self.fc(h))
            trail = torch.cat([trail, h.sum(0, keepdim=True)], 0)
            steps += 1
        return self.head(h), trail, torch.full([1], steps, dtype=torch.long)


class ControlFlowTest(test_ops.EndToEndTest):

    def paths(self, name, loaded, runs, minimum):
        """PyTorch's outputs on each run, after checking that the runs' int64
        indicators (the last output) take at least `minimum` values."""
        expected = []
        with torch.no_grad():
            for inputs in runs:
                expected.append(test_ops.flatten(loaded(*inputs.values())))
        indicators = [outputs[-1] for outputs in expected]
        for indicator in indicators:
            self.assertEqual(indicator.dtype, torch.int64, f"{name}: the indicator's dtype")
        seen = [path_of(indicator) for indicator in indicators]
        self.assertGreaterEqual(len(set(seen)), minimum,
                                f"{name}: the inputs take too few paths: {seen}")
        return expected, seen

    def check(self, name, module, runs, minimum=3):
        """Scripts `module` and exports it once, at the shapes of runs[0]
        (name -> tensor, in forward() order), then runs ONNX Runtime on every
        run and compares with PyTorch. Returns the indicators, run by run."""
        directory = os.path.join(test_ops.WORK, "control_flow", name)
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory)
        model_path = os.path.join(directory, "model.pt")
        onnx_path = os.path.join(directory, "model.onnx")
        module = module.eval()
        zoo_models.save_torchscript(module, None, True, model_path)
        expected, seen = self.paths(name, torch.jit.load(model_path), runs, minimum)
        for inputs in runs[1:]:  # one export serves every run
            self.assertEqual([t.shape for t in inputs.values()],
                             [t.shape for t in runs[0].values()], f"{name}: input shapes")

        command = [test_ops.BIN, "export", model_path, onnx_path, "--strategy", "htp", "--quiet",
                   "--no-validate"]
        for input_name, tensor in runs[0].items():
            dims = "x".join(str(d) for d in tensor.shape)
            command += ["--input", f"{input_name}:{dims}:{test_ops.DTYPES[tensor.dtype][0]}"]
        run(command, "mexport export")

        model = onnx.load(onnx_path)
        onnx.checker.check_model(model, full_check=True)
        root = "/" + type(module).__name__
        untagged = [n.name for n in test_zoo.all_nodes(model.graph)
                    if not (n.name.startswith(root + "/") or n.name == root)]
        self.assertEqual(untagged, [], f"{name}: nodes without a module tag")
        test_zoo.check_metadata(self, name, model,
                                os.path.join(directory, "model_htp_metadata.json"))

        for index, (inputs, want_outputs) in enumerate(zip(runs, expected)):
            in_dir = os.path.join(directory, f"in{index}")
            out_dir = os.path.join(directory, f"out{index}")
            test_ops.write_inputs(in_dir, inputs)
            what = f"{name} (run {index}, path {seen[index]})"
            run(["node", test_ops.ORT_RUN, onnx_path, in_dir, out_dir], f"ort_run.js on {what}")
            actual = test_ops.read_outputs(out_dir)
            test_ops.assert_outputs_match(self, what, want_outputs, actual)
        return seen

    # --- the cases ---------------------------------------------------------------------

    def test_issue_model(self):
        torch.manual_seed(0)
        basis, _ = torch.linalg.qr(torch.randn(8, 8))  # orthonormal columns
        module = IssueModel(basis)
        growing, kept, shrinking = basis[:, :2], basis[:, 2:4], basis[:, 4:]
        runs = [
            {"h": torch.randn(2, 8)},  # like the export's example
            {"h": torch.randn(2, 8) * 0.01},  # small: no step
            {"h": torch.randn(2, 4) @ shrinking.t()},  # shrinks below 0.05 after a few steps
            {"h": -(torch.randn(2, 2) @ kept.t())},  # stays: 20 steps
            {"h": torch.randn(2, 2) @ growing.t() * 0.5},  # grows past 10: break
        ]
        # The head's input is the loop's final h: its sign picks the final
        # branch, and a maximum above 10 means the loop ended by `break`.
        finals = []
        handle = module.head.register_forward_pre_hook(lambda _, args: finals.append(args[0]))
        with torch.no_grad():
            for inputs in runs:
                module(*inputs.values())
        handle.remove()
        self.assertEqual({bool(h.sum() > 0) for h in finals}, {True, False},
                         "issue_model: both final branches")
        broke = [bool(h.max() > 10.0) for h in finals]
        seen = self.check("issue_model", module, runs, minimum=4)
        self.assertIn(0, seen)
        self.assertIn(20, seen)
        self.assertTrue(any(b and s < 20 for b, s in zip(broke, seen)), "issue_model: a break")

    def test_nested_loops(self):
        torch.manual_seed(0)
        runs = [{"x": torch.randn(2, 8)}, {"x": torch.randn(2, 8) * 0.3},
                {"x": torch.randn(2, 8) * 5.0}, {"x": torch.randn(2, 8) * 30.0}]
        self.check("nested_loops", NestedLoops(), runs)

    def test_continue(self):
        torch.manual_seed(0)
        runs = []
        for signs in ([1, 1, 1, 1, 1, 1], [1, -1, 1, -1, -1, 1], [-1] * 6):
            x = torch.randn(6, 8)
            x = x - x.mean(1, keepdim=True) + torch.tensor(signs, dtype=torch.float32)[:, None]
            runs.append({"x": x})
        self.assertEqual(self.check("continue", ContinueLoop(), runs), [0, 3, 6])

    def test_early_return(self):
        torch.manual_seed(0)
        runs = [{"x": torch.randn(2, 8)}, {"x": -torch.randn(2, 8).abs()},
                {"x": torch.randn(2, 8).abs() + 0.5}]
        self.assertEqual(self.check("early_return", EarlyReturn(), runs), [2, 0, 1])

    def test_loop_carried_tuple(self):
        torch.manual_seed(0)
        runs = [{"x": torch.randn(2, 8)}, {"x": torch.randn(2, 8) * 0.01},
                {"x": torch.randn(2, 8) * 1000.0}]
        self.check("carried_tuple", CarriedTuple(), runs)

    def test_loop_filled_list(self):
        torch.manual_seed(0)
        runs = [{"x": torch.randn(2, 8)}, {"x": torch.randn(2, 8) * 0.2},
                {"x": torch.randn(2, 8) * 5.0}, {"x": torch.randn(2, 8) * 1000.0}]
        self.check("filled_list", FilledList(), runs)

    def test_loop_carried_list(self):
        torch.manual_seed(0)
        runs = [{"x": torch.randn(2, 8)}, {"x": torch.randn(2, 8) * 0.2},
                {"x": torch.randn(2, 8) * 5.0}, {"x": torch.randn(2, 8) * 1000.0}]
        self.check("carried_list", CarriedList(), runs)

    def test_a_growing_list_of_elements_of_changing_shape_is_refused(self):
        directory = os.path.join(test_ops.WORK, "control_flow", "ragged_list")
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory)
        model_path = os.path.join(directory, "model.pt")
        torch.manual_seed(0)
        zoo_models.save_torchscript(RaggedList().eval(), None, True, model_path)
        result = subprocess.run([test_ops.BIN, "export", model_path,
                                 os.path.join(directory, "model.onnx"), "--input",
                                 "x:2x8:float32"], capture_output=True, text=True,
                                timeout=TIMEOUT)
        self.assertEqual(result.returncode, 1, result.stderr)
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertIn("the list grows at run time", lines[0])
        self.assertFalse(os.path.exists(os.path.join(directory, "model.onnx")))

    def test_optional(self):
        torch.manual_seed(0)
        runs = []
        for shift, spike in ((-0.5, False), (0.5, False), (-0.5, True), (0.5, True)):
            x = torch.randn(2, 8) * 0.3 + shift
            if spike:
                x[1, 3] = 3.0
            runs.append({"x": x})
        self.assertEqual(self.check("optional", OptionalValues(), runs), [0, 1, 2, 3])

    def test_tensor_conditions(self):
        torch.manual_seed(0)
        spike_up = torch.randn(2, 8) * 0.5
        spike_up[0, 2] = 3.0
        spike_down = torch.randn(2, 8) * 0.5
        spike_down[1, 5] = -3.0
        runs = [{"x": torch.randn(2, 8) * 0.5}, {"x": spike_up}, {"x": spike_down},
                {"x": -torch.randn(2, 8).abs() * 3.0 - 0.5}]
        self.check("tensor_conditions", TensorConditions(), runs, minimum=4)

    def test_greedy_decoder(self):
        torch.manual_seed(1)
        module = GreedyDecoder()
        states = [torch.randn(1, 8, generator=torch.Generator().manual_seed(seed)) * 2.0
                  for seed in (100, 104, 106, 107)]
        seen = self.check("greedy_decoder", module, [{"h": h} for h in states], minimum=3)
        self.assertIn(module.max_length, seen)

    def test_untaken_branch_fails_if_forced(self):
        torch.manual_seed(0)
        one = torch.randn(2, 8)
        one[0, 4] = 8.0
        three = torch.randn(2, 8)
        three[0, 1], three[1, 2], three[1, 7] = -7.0, 9.0, 6.0
        runs = [{"x": torch.randn(2, 8)}, {"x": one}, {"x": three}]
        self.assertEqual(self.check("untaken_branch", UntakenBranch(), runs), [0, 1, 3])

    def test_zero_trip_loop_growing_tensor(self):
        torch.manual_seed(0)
        runs = [{"x": torch.randn(2, 8)}, {"x": torch.randn(2, 8) * 30.0},
                {"x": torch.randn(2, 8) * 1000.0}]
        seen = self.check("zero_trip_growing", GrowingLoop(), runs)
        self.assertEqual(seen[0], 0)


if __name__ == "__main__":
    unittest.main()
