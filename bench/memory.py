#!/usr/bin/python3
"""Peak memory of a validated export against PyTorch's own forward peak plus the weights.

    /usr/bin/python3 bench/memory.py --mexport build/mexport [--work DIR]
                                     [--models resnet18_1024,...] [--timeout S] [--keep]

Models (seeded; written to --work, a new temporary directory by default):
  resnet18_1024  torchvision resnet18 (random weights, BatchNorm statistics randomised as in
                 tests/models/make_models.py), traced at 1x3x1024x1024 float32
  resnet18_224   the same at 1x3x224x224
  bert_tiny      the fixture of tests/models/make_models.py (tests/models/bert_tiny.pt when it
                 is up to date, otherwise made in --work), inputs as in configs/bert.yaml
  loop_conv      *scripted*: a data-dependent `while` (until the activation's mean absolute
                 value is at most 0.02, at most 8 steps; 3 on a standard normal input) over a
                 Conv2d + ReLU block (halved each step), then a 1x1 Conv2d, on 1x16x256x256
                 float32 (a prim::Loop in the graph). No BatchNorm, as when it was
                 written, so that its figures stay comparable.

For each model, each a whole process:
  torch    a fresh /usr/bin/python3 that imports torch, resets its peak RSS (writing 5 to
           /proc/self/clear_refs) and reads its RSS (VmRSS) as its baseline, then
           torch.jit.load()s the model, makes inputs of the same shapes and kinds (seeded
           standard normal values; BERT-tiny: the config's ranges and fills) and runs
           forward once under torch.no_grad(); its figure is its peak RSS (VmHWM) less
           that baseline: the forward's peak including the weights. It also reports the
           weights' bytes (parameters and buffers). It keeps libtorch's default number of
           intra-op threads, as mexport does; the number is printed.
  mexport  `mexport export MODEL.pt OUT.onnx --input NAME:DIMS:DTYPE --strategy htp --quiet`
           (BERT-tiny: `--config configs/bert.yaml --model ... --output ...`, for its input
           ranges), numeric validation on (the default), then the same with --no-validate;
           its figure is its peak RSS (wait4's ru_maxrss, in a small wrapper process) less
           the peak RSS of `mexport --version` (median of 3): its start-up, libtorch loaded.

The table gives both figures and their ratio mexport/torch; the project's goal is a ratio
of at most 1.5 with validation on. It measures, it does not assert. A run that fails, is
killed or passes --timeout is printed as failed with its exit code and the first line of
its stderr, and the script goes on with the next one.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, ".."))
MODELS_DIR = os.path.join(REPO, "tests", "models")
BERT_CONFIG = os.path.join(REPO, "configs", "bert.yaml")
sys.path.insert(0, HERE)
from common import MEASURE_WRAPPER, PYTHON, machine  # noqa: E402

GOAL = 1.5  # mexport's peak (validating) over PyTorch's forward peak, both above their baselines


def image_input(*shape):
    return [{"name": "x", "shape": list(shape), "dtype": "float32"}]


def bert_inputs():
    with open(BERT_CONFIG) as f:
        return yaml.safe_load(f)["inputs"]


# name -> (how the model is made, its inputs as config input specs)
MODELS = {
    "resnet18_1024": ("resnet18", image_input(1, 3, 1024, 1024)),
    "resnet18_224": ("resnet18", image_input(1, 3, 224, 224)),
    "bert_tiny": ("fixture", None),  # configs/bert.yaml's inputs
    "loop_conv": ("scripted", image_input(1, 16, 256, 256)),
}


# --- models -----------------------------------------------------------------------

def loop_conv_model():
    """A scripted module whose number of steps depends on the input's values."""
    import torch
    import torch.nn as nn

    class ConvBlock(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)

        def forward(self, x):
            # No BatchNorm, as when mexport refused a scripted one: the figures stay
            # comparable from run to run.
            return torch.relu(self.conv(x))

    class LoopConv(nn.Module):
        def __init__(self, channels=16):
            super().__init__()
            self.block = ConvBlock(channels)
            self.head = nn.Conv2d(channels, channels, 1)

        def forward(self, x):
            steps = 0
            while bool(x.abs().mean() > 0.02) and steps < 8:
                x = self.block(x) * 0.5
                steps += 1
            return self.head(x)

    return LoopConv()


def make_model(name, models_dir):
    """The TorchScript file of `name` (made, seeded) and its input specs."""
    sys.path.insert(0, MODELS_DIR)
    import torch
    import make_models as mm
    kind, specs = MODELS[name]
    if kind == "fixture":
        fixture = os.path.join(MODELS_DIR, "bert_tiny.pt")
        path = fixture if mm.up_to_date(fixture) else mm.make("bert_tiny", models_dir)
        return path, bert_inputs()
    path = os.path.join(models_dir, name + ".pt")
    torch.manual_seed(0)
    if kind == "scripted":
        module = torch.jit.script(loop_conv_model().eval())
    else:
        model, _ = mm.build_vision(kind)
        with torch.no_grad():
            module = torch.jit.trace(model, torch.randn(specs[0]["shape"]), check_trace=False)
    module.save(path + ".tmp")
    os.replace(path + ".tmp", path)
    return path, specs


# --- measuring --------------------------------------------------------------------

# The PyTorch side. argv[1] = JSON job: model, inputs (config specs), seed.
# Prints JSON: baseline and peak (KiB), weight bytes, threads, steps.
TORCH_FORWARD = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")

def status():
    with open("/proc/self/status") as f:
        return {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in f)
                if k in ("VmRSS", "VmHWM")}

import torch
try:  # the peak RSS from here on only, not the import's own transient peak
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    reset = True
except OSError:
    reset = False
baseline = status()["VmRSS"]
job = json.loads(sys.argv[1])
model = torch.jit.load(job["model"], map_location="cpu").eval()
torch.manual_seed(job["seed"])
inputs = []
for s in job["inputs"]:
    dtype = getattr(torch, s["dtype"])
    if "fill" in s:
        inputs.append(torch.full(s["shape"], s["fill"], dtype=dtype))
    elif "range" in s:
        inputs.append(torch.randint(s["range"][0], s["range"][1], s["shape"], dtype=dtype))
    else:
        inputs.append(torch.randn(s["shape"]).to(dtype))
with torch.no_grad():
    out = model(*inputs)
peak = status()["VmHWM"]
tensors = list(model.parameters()) + list(model.buffers())
weights = sum(t.numel() * t.element_size() for t in tensors)
print(json.dumps({"baseline_kib": baseline, "peak_kib": peak, "weight_bytes": weights,
                  "threads": torch.get_num_threads(), "hwm_reset": reset}))
"""


def run(cmd, timeout):
    """Runs cmd once in a fresh wrapper process (common.MEASURE_WRAPPER: wait4,
    so that the benchmark's own pages are not counted). Returns a dict: exit_code,
    maxrss_kib and wall (when it finished), stdout, stderr, and `error`, a line
    saying why it failed (None when it did not)."""
    with tempfile.TemporaryDirectory() as scratch:
        figures = os.path.join(scratch, "run.json")
        # A session of its own, so that a timeout can end the wrapper and the command.
        proc = subprocess.Popen([PYTHON, "-S", "-c", MEASURE_WRAPPER, figures] + list(cmd),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            return {"exit_code": None, "stdout": stdout, "stderr": stderr,
                    "error": f"timed out after {timeout:g} s"}
        result = {"exit_code": proc.returncode}
        if os.path.exists(figures):
            with open(figures) as f:
                result = json.load(f)
    result.update(stdout=stdout, stderr=stderr, error=None)
    code = result["exit_code"]
    if proc.returncode != 0 or code != 0:
        first = next((line.strip() for line in stderr.splitlines() if line.strip()),
                     next((line.strip() for line in stdout.splitlines() if line.strip()),
                          "(no output)"))
        how = f"exit code {code}"
        if code is not None and code < 0:
            how += f" ({signal.Signals(-code).name})"
        result["error"] = f"{how}: {first}"
    return result


def mib(kib_or_bytes, unit="kib"):
    return kib_or_bytes / 1024 if unit == "kib" else kib_or_bytes / 2**20


def mexport_command(mexport, model, specs, output, name):
    if name == "bert_tiny":  # the config's ranges and fills; the command line has neither
        return [mexport, "export", "--config", BERT_CONFIG, "--model", model, "--output", output,
                "--strategy", "htp", "--quiet"]
    cmd = [mexport, "export", model, output]
    for s in specs:
        cmd += ["--input", f"{s['name']}:{'x'.join(str(d) for d in s['shape'])}:{s['dtype']}"]
    return cmd + ["--strategy", "htp", "--quiet"]


def remove_outputs(output):
    stem = output[:-len(".onnx")]
    for path in (output, output + ".data", stem + "_htp_metadata.json",
                 stem + "_htp_export_report.txt"):
        if os.path.exists(path):
            os.remove(path)


def describe_inputs(specs):
    shapes = ["x".join(str(d) for d in s["shape"]) for s in specs]
    dtypes = {s["dtype"] for s in specs}
    if len(set(shapes)) == 1 and len(dtypes) == 1:
        return (f"{len(specs)} x " if len(specs) > 1 else "") + f"{shapes[0]} {dtypes.pop()}"
    return ", ".join(f"{sh} {s['dtype']}" for sh, s in zip(shapes, specs))


# --- main -------------------------------------------------------------------------

def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "-"


def cell(value, width, spec=".0f"):
    return f"{format(value, spec) if value is not None else 'FAILED':>{width}}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mexport", required=True, help="path to the mexport binary")
    ap.add_argument("--models", default=",".join(MODELS),
                    help=f"comma-separated rows to run (default: all of {', '.join(MODELS)})")
    ap.add_argument("--work", help="scratch directory (default: a new temporary one)")
    ap.add_argument("--timeout", type=float, default=1800,
                    help="seconds before a run is killed and printed as failed (default 1800)")
    ap.add_argument("--keep", action="store_true", help="keep the models and ONNX files")
    args = ap.parse_args()
    names = [n for n in args.models.split(",") if n]
    unknown = [n for n in names if n not in MODELS]
    if unknown or not names:
        ap.error(f"unknown model(s): {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    mexport = os.path.abspath(args.mexport)
    if not os.access(mexport, os.X_OK):
        sys.exit(f"bench: mexport binary not found or not executable: {mexport}")
    work = os.path.abspath(args.work) if args.work else tempfile.mkdtemp(prefix="mexport-memory-")
    models_dir, out_dir = os.path.join(work, "models"), os.path.join(work, "out")
    os.makedirs(models_dir, exist_ok=True)
    os.makedirs(out_dir, exist_ok=True)

    try:
        m = machine()
        print(f"machine: {m['cpus']} CPUs, {m['cpu']}, {m['ram_gb']} GB RAM, {m['system']}",
              flush=True)
        starts = [run([mexport, "--version"], args.timeout) for _ in range(3)]
        bad = next((s["error"] for s in starts if s["error"]), None)
        if bad:
            sys.exit(f"bench: mexport --version failed: {bad}")
        mexport_base = statistics.median(s["maxrss_kib"] for s in starts)
        print(f"mexport --version: peak RSS {mib(mexport_base):.0f} MiB (median of 3)", flush=True)

        rows = []
        for name in names:
            model, specs = make_model(name, models_dir)
            row = {"model": name, "inputs": describe_inputs(specs), "path": model}
            job = {"model": model, "inputs": specs, "seed": 0}
            torch_run = run([PYTHON, "-c", TORCH_FORWARD, json.dumps(job)], args.timeout)
            if torch_run["error"]:
                row["torch_error"] = torch_run["error"]
            else:
                t = json.loads(torch_run["stdout"].strip().splitlines()[-1])
                row.update(torch=mib(t["peak_kib"] - t["baseline_kib"]),
                           torch_baseline=mib(t["baseline_kib"]), torch_peak=mib(t["peak_kib"]),
                           weights=mib(t["weight_bytes"], "bytes"), threads=t["threads"],
                           hwm_reset=t["hwm_reset"])
            print(f"  {name}: torch forward "
                  + (row["torch_error"] if "torch_error" in row else
                     f"{row['torch']:.0f} MiB above its baseline of {row['torch_baseline']:.0f}"),
                  flush=True)
            output = os.path.join(out_dir, name + ".onnx")
            for mode, extra in (("validate", []), ("no_validate", ["--no-validate"])):
                remove_outputs(output)
                r = run(mexport_command(mexport, model, specs, output, name) + extra, args.timeout)
                if r["error"]:
                    row[mode + "_error"] = r["error"]
                    line = f"FAILED, {r['error']}"
                else:
                    row[mode] = mib(r["maxrss_kib"] - mexport_base)
                    row[mode + "_peak"] = mib(r["maxrss_kib"])
                    line = (f"{row[mode]:.0f} MiB above its baseline "
                            f"(peak {row[mode + '_peak']:.0f}), {r['wall']:.1f} s")
                print(f"  {name}: mexport {mode.replace('_', '-')}: {line}", flush=True)
            if not args.keep:
                remove_outputs(output)
            rows.append(row)

        threads = sorted({row["threads"] for row in rows if "threads" in row})
        print(f"\npeak RSS above each process's own baseline, MiB; torch: a fresh python3, forward "
              f"under no_grad ({', '.join(map(str, threads)) or '?'} intra-op thread(s), "
              f"libtorch's default); mexport: export --strategy htp --quiet")
        print(f"{'model':<14} {'input':<22} {'weights':>8} {'torch peak':>10} {'mexport':>8} "
              f"{'mx/torch':>8} {'no-validate':>11} {'nv/torch':>8}")
        for row in rows:
            torch_peak = row.get("torch")
            print(f"{row['model']:<14} {row['inputs']:<22} {cell(row.get('weights'), 8, '.2f')} "
                  f"{cell(torch_peak, 10)} {cell(row.get('validate'), 8)} "
                  f"{ratio(row.get('validate'), torch_peak):>8} {cell(row.get('no_validate'), 11)} "
                  f"{ratio(row.get('no_validate'), torch_peak):>8}")
        baselines = [row["torch_baseline"] for row in rows if "torch_baseline" in row]
        if baselines:
            low, high = round(min(baselines)), round(max(baselines))
            span = f"{low}" if low == high else f"{low}-{high}"
            print(f"baselines: python3 after `import torch` {span} MiB; "
                  f"mexport --version {mib(mexport_base):.0f} MiB")
        if any(not row.get("hwm_reset", True) for row in rows):
            print("note: /proc/self/clear_refs could not reset the torch child's peak RSS; its "
                  "figure may include the import's own peak")
        print(f"goal: mx/torch <= {GOAL} with validation on (printed, not asserted)")
        for row in rows:
            for key, what in (("torch_error", "torch forward"), ("validate_error", "mexport"),
                              ("no_validate_error", "mexport --no-validate")):
                if key in row:
                    print(f"{row['model']}: {what} failed: {row[key]}")
    finally:
        if args.keep:
            print(f"files kept in {work}")
        elif args.work:  # only what this script made: the directory may hold more
            shutil.rmtree(models_dir, ignore_errors=True)
            shutil.rmtree(out_dir, ignore_errors=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
