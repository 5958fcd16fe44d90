#!/usr/bin/python3
"""A model just over 2 GB of weights: exported with external data, run in ONNX Runtime.

    /usr/bin/python3 bench/large_model.py --mexport build/mexport [--work DIR] [--keep]

Builds (torch.manual_seed(0)) and traces a stack of four float32 Linear layers,
8192 -> 16384 -> 8192 -> 16384 -> 8192 with ReLU between them: 536,920,064
parameters, 2,147,680,256 bytes, past protobuf's limit of 2,147,483,647 bytes
for one file. Then, each as a whole process with its wall time and peak RSS:

  - `mexport export` with the default config (numeric validation on, no
    --external-data): the weights must go to `large.onnx.data` by themselves;
  - onnx's checker from the path with the full check (shape inference),
    Debian's onnx 1.12;
  - `mexport validate` (the checker), `mexport validate --against` (the
    weights read back from the data file and run against PyTorch) and
    `mexport analyze` on the written file;
  - ONNX Runtime (onnxruntime-node, tests/e2e/ort_run.js) on the file, its
    output compared with PyTorch's on the same seeded input.

Prints the file sizes, the export's stage timings (from its metadata) and the
figures above. Needs about 10 GB of RAM and 7 GB of disk in the work directory
(a fresh temporary directory by default); its multi-GB files are removed at
the end unless --keep.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, ".."))
ORT_RUN = os.path.join(REPO, "tests", "e2e", "ort_run.js")
sys.path.insert(0, HERE)
from common import PYTHON, measure  # noqa: E402

WIDTHS = [8192, 16384, 8192, 16384, 8192]
PROTOBUF_LIMIT = 2**31 - 1

# onnx's checker from the path with the full check, as
# check_model(path, full_check=True) but with the inferred model written to
# argv[2] instead of over the file; argv[1] = the file.
CHECK_ONNX = ("import sys, onnx; onnx.checker.check_model(sys.argv[1]); "
              "onnx.shape_inference.infer_shapes_path(sys.argv[1], sys.argv[2], check_type=True, "
              "strict_mode=True)")


# Builds, traces and saves the model in a process of its own, so that this one
# stays small: a child's peak RSS as wait4 reports it includes what its parent
# held when it forked. argv[1] = the work directory, argv[2:] the widths. The
# directory gets large.pt, the input as x.npy (for mexport) and x.bin (for
# ONNX Runtime), and PyTorch's output as expected.npy.
BUILD_MODEL = r"""
import os, sys
import numpy as np
import torch
work, widths = sys.argv[1], [int(w) for w in sys.argv[2:]]
torch.manual_seed(0)
layers = []
for i, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
    layers += [torch.nn.Linear(n_in, n_out)] + ([torch.nn.ReLU()] if i < len(widths) - 2 else [])
model = torch.nn.Sequential(*layers).eval()
x = torch.randn(1, widths[0])
with torch.no_grad():
    traced = torch.jit.trace(model, (x,))
    expected = traced(x).numpy()
traced.save(os.path.join(work, "large.pt"))
np.save(os.path.join(work, "x.npy"), x.numpy())
x.numpy().tofile(os.path.join(work, "x.bin"))
np.save(os.path.join(work, "expected.npy"), expected)
print(sum(p.numel() * p.element_size() for p in model.parameters()))
"""


def size_text(nbytes):
    return f"{nbytes / 1e9:.3f} GB" if nbytes >= 1e8 else f"{nbytes / 1e3:.1f} kB"


def report(name, run, extra=""):
    print(f"  {name:<44} {run.wall:7.1f} s wall, {run.cpu:7.1f} s CPU, "
          f"peak RSS {run.peak_rss_mb / 1024:5.2f} GB{extra}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mexport", required=True, help="path to the mexport binary")
    ap.add_argument("--work", help="scratch directory (default: a new temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    args = ap.parse_args()
    mexport = os.path.abspath(args.mexport)
    if not os.access(mexport, os.X_OK):
        sys.exit(f"bench: mexport binary not found or not executable: {mexport}")
    work = os.path.abspath(args.work) if args.work else tempfile.mkdtemp(prefix="mexport-large-")
    os.makedirs(work, exist_ok=True)
    try:
        built = measure([PYTHON, "-c", BUILD_MODEL, work] + [str(w) for w in WIDTHS],
                        "building the model")
        weight_bytes = int(built.stdout.split()[-1])
        pt = os.path.join(work, "large.pt")
        expected = np.load(os.path.join(work, "expected.npy"))
        print(f"large model: Linear {' -> '.join(map(str, WIDTHS))} (ReLU between), "
              f"{weight_bytes:,} bytes of float32 weights "
              f"({'over' if weight_bytes > PROTOBUF_LIMIT else 'UNDER'} protobuf's limit of "
              f"{PROTOBUF_LIMIT:,}); built, traced and saved in {built.wall:.1f} s, "
              f"{size_text(os.path.getsize(pt))} .pt")
        startup = measure([mexport, "--version"], "mexport --version")

        onnx_path = os.path.join(work, "out", "large.onnx")
        cfg = os.path.join(work, "large.yaml")
        with open(cfg, "w") as f:
            f.write(f"model: {{path: {json.dumps(pt)}, name: large}}\n"
                    f"inputs:\n  - {{name: x, file: {json.dumps(os.path.join(work, 'x.npy'))}}}\n"
                    f"outputs: [y]\nexport: {{output: {json.dumps(onnx_path)}, strategy: htp}}\n")
        export = measure([mexport, "export", "--config", cfg], "mexport export")
        data_path = onnx_path + ".data"
        if not os.path.isfile(data_path):
            sys.exit("bench: the export wrote no external data file")
        print(f"  written: {size_text(os.path.getsize(onnx_path))} {os.path.basename(onnx_path)} + "
              f"{size_text(os.path.getsize(data_path))} {os.path.basename(data_path)}")
        report("mexport export (validation on)", export)
        with open(os.path.join(work, "out", "large_htp_metadata.json")) as f:
            timings = json.load(f)["timings"]
        # The metadata is written before the files are, so writing is what
        # the whole process took beyond its start-up and the stages.
        print("    stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()
                                         if isinstance(v, (int, float))) +
              f"; start-up (mexport --version) {startup.wall:.1f} s; writing and exit about "
              f"{export.wall - startup.wall - timings['total']:.1f} s")
        for line in export.stdout.splitlines():
            if "validated" in line:
                print("   " + line)

        report("onnx.checker (path, full_check)",
               measure([PYTHON, "-c", CHECK_ONNX, onnx_path, os.path.join(work, "inferred.onnx")],
                       "onnx checker"))
        report("mexport validate", measure([mexport, "validate", onnx_path], "mexport validate"))
        report("mexport validate --against (reads the data)",
               measure([mexport, "validate", onnx_path, "--against", pt, "--config", cfg],
                       "mexport validate --against"))
        analyze = measure([mexport, "analyze", onnx_path], "mexport analyze")
        report("mexport analyze", analyze)
        for line in analyze.stdout.splitlines():
            if "external data" in line:
                print("   " + line)

        in_dir, out_dir = os.path.join(work, "ort-in"), os.path.join(work, "ort-out")
        os.makedirs(in_dir, exist_ok=True)
        shutil.move(os.path.join(work, "x.bin"), os.path.join(in_dir, "x.bin"))
        with open(os.path.join(in_dir, "inputs.json"), "w") as f:
            json.dump([{"name": "x", "dtype": "float32", "shape": [1, WIDTHS[0]],
                        "file": "x.bin"}], f)
        node = shutil.which("node") or "node"
        ort = measure([node, ORT_RUN, onnx_path, in_dir, out_dir], "ONNX Runtime")
        got = np.fromfile(os.path.join(out_dir, "y.bin"), dtype="<f4").reshape(expected.shape)
        diff = float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64))))
        close = np.allclose(got, expected, atol=1e-4, rtol=1e-3)
        report("ONNX Runtime (load + run)", ort,
               f"; max abs diff from PyTorch {diff:.2g} ({'ok' if close else 'DIFFERS'})")
        return 0 if close else 1
    finally:
        if args.keep:
            print(f"files kept in {work}")
        elif args.work:  # only what this script made: the directory may hold more
            for name in ("large.pt", "x.npy", "x.bin", "expected.npy", "large.yaml",
                         "inferred.onnx"):
                if os.path.exists(os.path.join(work, name)):
                    os.remove(os.path.join(work, name))
            for name in ("out", "ort-in", "ort-out"):
                shutil.rmtree(os.path.join(work, name), ignore_errors=True)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
