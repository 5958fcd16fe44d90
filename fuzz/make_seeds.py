#!/usr/bin/python3
"""Gathers the seed corpora of the fuzzers from the test fixtures.

    /usr/bin/python3 fuzz/make_seeds.py --build BUILD --out SEEDS [--max-bytes N]

BUILD is a main build (BUILD/mexport, fixture models in BUILD/tests/models,
made here by tests/models/make_models.py when missing). Writes

  SEEDS/config/    configs/*.yaml, the YAML of the config unit tests, the
                   configs written below, and those the e2e tests left in
                   BUILD/tests/work
  SEEDS/onnx/      ONNX files of `mexport export`, GraphML emitter on, on the
                   control_flow fixture model in several modes and of
                   torch.onnx.export of BERT-tiny, plus the small ONNX files
                   the e2e tests left in BUILD/tests/work
  SEEDS/graphml/   the GraphML files of the mexport exports (parameters in a
                   sidecar, embedded, none)
  SEEDS/sidecar/   their parameter sidecars: the GraphML fuzzer reads its
                   input as if it sat here, so seeds pass the sidecar checks

Weights are cut to their first 16 values in the ONNX seeds (the structure
stays the export's) and files over --max-bytes (default 32 KiB, the fuzzers'
-max_len in scripts/fuzz.sh) are left out: libFuzzer runs and mutates each
input whole, so large inputs slow every run.
"""

import argparse
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys

import onnx
from onnx import numpy_helper

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"
KEPT_WEIGHT_VALUES = 16


def run(cmd):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"make_seeds: {' '.join(map(str, cmd))} failed with exit code {r.returncode}:\n"
                 f"{r.stderr.strip() or r.stdout.strip()}")


def yaml_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Corpus:
    """One seed directory; files named by content hash, so duplicates merge."""

    def __init__(self, root, name, max_bytes):
        self.dir = os.path.join(root, name)
        self.max_bytes = max_bytes
        os.makedirs(self.dir, exist_ok=True)
        self.skipped = 0

    def add_bytes(self, data, label):
        """Adds a seed unless it is too large; returns whether it was added."""
        if len(data) > self.max_bytes:
            print(f"make_seeds: {label}: {len(data)} bytes, over {self.max_bytes}: left out")
            self.skipped += 1
            return False
        digest = hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(self.dir, digest), "wb") as f:
            f.write(data)
        return True

    def add_file(self, path):
        with open(path, "rb") as f:
            return self.add_bytes(f.read(), path)


def cut_weights(onnx_path):
    """The model's bytes with every initializer cut to its first values."""
    model = onnx.load(onnx_path)
    for init in model.graph.initializer:
        values = numpy_helper.to_array(init)
        if values.size > KEPT_WEIGHT_VALUES:
            init.CopyFrom(numpy_helper.from_array(values.reshape(-1)[:KEPT_WEIGHT_VALUES].copy(),
                                                  init.name))
    return model.SerializeToString()


def control_flow_config(model_path, output_path, graphml_parameters, extra_export=""):
    return (f"model:\n  path: {yaml_str(model_path)}\n  name: cf\n"
            f"inputs:\n  - name: x\n    shape: [2, 8]\n    dtype: float32\n"
            f"    dynamic: {{0: batch}}\n"
            f"export:\n  output: {yaml_str(output_path)}\n  strategy: htp\n{extra_export}"
            f"emitters: {{onnx: {{}}, metadata: {{}}, graphml: {{parameters: {graphml_parameters}}}}}\n"
            f"seed: 3\n")


def export_with_config(mexport, work, name, text, *flags):
    """Writes WORK/NAME/config.yaml and exports with it; returns (config, onnx path)."""
    out_dir = os.path.join(work, name)
    os.makedirs(out_dir, exist_ok=True)
    config = os.path.join(out_dir, "config.yaml")
    with open(config, "w") as f:
        f.write(text)
    run([mexport, "export", "--config", config, *flags])
    return config


def torch_onnx_export(model_path, output_path):
    """torch.onnx.export (opset 17) of BERT-tiny at the inputs of configs/bert.yaml."""
    import warnings
    import torch
    import yaml
    warnings.filterwarnings("ignore")  # torch.onnx's notes on the traced model
    with open(os.path.join(REPO, "configs", "bert.yaml")) as f:
        cfg = yaml.safe_load(f)
    inputs = tuple(torch.full(s["shape"], s.get("fill", 1), dtype=getattr(torch, s["dtype"]))
                   for s in cfg["inputs"])
    torch.onnx.export(torch.jit.load(model_path).eval(), inputs, output_path, opset_version=17,
                      input_names=[s["name"] for s in cfg["inputs"]],
                      output_names=cfg["outputs"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", required=True, help="main build directory (with mexport)")
    ap.add_argument("--out", required=True, help="seed directory to (re)write")
    ap.add_argument("--max-bytes", type=int, default=32 * 1024,
                    help="largest seed kept (default 32768)")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    mexport = os.path.join(build, "mexport")
    if not os.access(mexport, os.X_OK):
        sys.exit(f"make_seeds: {mexport} not found; build mexport first (scripts/build.sh)")
    models = os.path.join(build, "tests", "models")
    run([PYTHON, os.path.join(REPO, "tests", "models", "make_models.py"), "--out", models,
         "--only", "control_flow", "bert_tiny"])
    cf_model = os.path.join(models, "control_flow.pt")
    bert_model = os.path.join(models, "bert_tiny.pt")

    out = os.path.abspath(args.out)
    shutil.rmtree(out, ignore_errors=True)
    work = os.path.join(out, "work")  # exports; not a corpus
    configs, onnx_seeds, graphml_seeds = (Corpus(out, n, args.max_bytes)
                                           for n in ("config", "onnx", "graphml"))
    sidecar_dir = os.path.join(out, "sidecar")
    os.makedirs(sidecar_dir)

    # Exports of control_flow (If branches, tiny weights) in each GraphML
    # parameter mode and hierarchy mode. BERT-tiny's are over any sensible
    # -max_len (106 KB of ONNX with weights cut, 500 KB of GraphML); its
    # torch.onnx export (23 KB cut) brings the scopes of another tool.
    cf_exports = [
        ("cf_sidecar", "sidecar", "", []),
        ("cf_embedded", "embedded", "  tag_style: path\n", []),
        ("cf_none", "none", "  hierarchy: attributes\n", []),
        ("cf_clean", "sidecar", "", ["--clean-onnx"]),
    ]
    written_configs = []
    for name, parameters, extra, flags in cf_exports:
        onnx_path = os.path.join(work, name, name + ".onnx")
        written_configs.append(export_with_config(
            mexport, work, name, control_flow_config(cf_model, onnx_path, parameters, extra),
            *flags))
    torch_onnx = os.path.join(work, "torch_onnx", "bert.onnx")
    os.makedirs(os.path.dirname(torch_onnx))
    torch_onnx_export(bert_model, torch_onnx)

    for path in sorted(glob.glob(os.path.join(work, "*", "*.onnx"))):
        onnx_seeds.add_bytes(cut_weights(path), path)
    for path in sorted(glob.glob(os.path.join(work, "*", "*.graphml"))):
        sidecar = path[:-len(".graphml")] + ".onnxdata"
        if graphml_seeds.add_file(path) and os.path.exists(sidecar):
            shutil.copy(sidecar, sidecar_dir)

    for path in sorted(glob.glob(os.path.join(REPO, "configs", "*.yaml"))) + written_configs:
        configs.add_file(path)
    with open(os.path.join(REPO, "tests", "unit", "config_test.cpp")) as f:
        for text in re.findall(r'R"\((.*?)\)"', f.read(), re.S):
            configs.add_bytes(text.encode(), "tests/unit/config_test.cpp")

    # What the e2e tests left behind, when they have run in this build: regular
    # files only (test_bad_inputs.py leaves FIFOs named .onnx, whose open()
    # would wait forever), and silently only the small ONNX ones.
    def e2e_files(pattern):
        paths = glob.glob(os.path.join(build, "tests", "work", "**", pattern), recursive=True)
        return [p for p in sorted(paths) if os.path.isfile(p)]

    for path in e2e_files("*.yaml"):
        configs.add_file(path)
    for path in e2e_files("*.onnx"):
        if os.path.getsize(path) <= args.max_bytes:
            onnx_seeds.add_file(path)

    for corpus in (configs, onnx_seeds, graphml_seeds):
        print(f"make_seeds: {corpus.dir}: {len(os.listdir(corpus.dir))} seeds "
              f"({corpus.skipped} over {args.max_bytes} bytes left out)")


if __name__ == "__main__":
    main()
