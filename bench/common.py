"""Helpers shared by the benchmark scripts: measuring a whole process, the
peer exporter (torch.onnx.export in a fresh Python) and counting the nodes of
an ONNX file."""

import collections
import json
import os
import platform
import subprocess
import sys
import tempfile

PYTHON = "/usr/bin/python3"

# One finished process: wall and CPU seconds (user + system; the steadier
# figure on a busy machine), peak resident set size in MB, and its stdout.
Run = collections.namedtuple("Run", "wall cpu peak_rss_mb stdout")

# The peer: a fresh interpreter that imports torch, torch.jit.load()s the model
# and torch.onnx.export()s it (opset 17) with the config's inputs, names and
# dynamic axes. argv[1] = JSON job: model, output, inputs (config specs),
# outputs (names), seed.
PEER_EXPORT = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")
import torch
job = json.loads(sys.argv[1])
torch.manual_seed(job["seed"])
model = torch.jit.load(job["model"]).eval()
inputs = []
for s in job["inputs"]:
    dtype = getattr(torch, s["dtype"])
    if "fill" in s:
        t = torch.full(s["shape"], s["fill"], dtype=dtype)
    elif "range" in s:
        t = torch.randint(s["range"][0], s["range"][1], s["shape"], dtype=dtype)
    else:
        t = torch.randn(s["shape"]).to(dtype)
    inputs.append(t)
dynamic_axes = {s["name"]: {int(k): v for k, v in s.get("dynamic", {}).items()}
                for s in job["inputs"] if s.get("dynamic")}
torch.onnx.export(model, tuple(inputs), job["output"], opset_version=17,
                  input_names=[s["name"] for s in job["inputs"]],
                  output_names=job["outputs"], dynamic_axes=dynamic_axes)
"""


def peer_command(model, output, config):
    """The peer's command line for `model` with the inputs and output names
    of `config` (a parsed mexport config)."""
    job = {"model": model, "output": output, "inputs": config["inputs"],
           "outputs": config.get("outputs", []), "seed": config.get("seed", 0)}
    return [PYTHON, "-c", PEER_EXPORT, json.dumps(job)]


# Runs argv[2:] and writes its wall and CPU seconds, peak RSS (KiB) and exit
# code as JSON to argv[1]. A fresh, small process: the peak RSS of a child
# forked from the benchmark itself would count the benchmark's own pages,
# since the kernel's maximum includes the moments between fork and exec.
MEASURE_WRAPPER = r"""
import json, os, sys, time
t0 = time.perf_counter()
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - t0
with open(sys.argv[1], "w") as f:
    json.dump({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "maxrss_kib": usage.ru_maxrss,
               "exit_code": os.waitstatus_to_exitcode(status)}, f)
"""


def measure(cmd, what):
    """Runs cmd once in a fresh wrapper process and returns its Run; exits
    with the command's last line if it fails."""
    with tempfile.TemporaryDirectory() as scratch:
        figures = os.path.join(scratch, "run.json")
        result = subprocess.run([PYTHON, "-S", "-c", MEASURE_WRAPPER, figures] + list(cmd),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True)
        run = {"exit_code": result.returncode}
        if os.path.exists(figures):
            with open(figures) as f:
                run = json.load(f)
    if result.returncode != 0 or run["exit_code"] != 0:
        tail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:] or ["(no output)"]
        sys.exit(f"bench: {what} failed with exit code {run['exit_code']}: {tail[0]}")
    return Run(run["wall"], run["cpu"], run["maxrss_kib"] / 1024, result.stdout)


def timed(cmd, what):
    """Wall seconds and CPU seconds (user + system) of one run of cmd."""
    run = measure(cmd, what)
    return run.wall, run.cpu


def onnx_node_count(path):
    try:
        import onnx
        return len(onnx.load(path, load_external_data=False).graph.node)
    except Exception:
        return None


def machine():
    """The machine a benchmark ran on: CPUs, CPU model, RAM, system."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    return {"cpus": os.cpu_count(), "cpu": cpu, "ram_gb": round(mem_kb / 1024 ** 2, 1),
            "system": platform.platform()}
