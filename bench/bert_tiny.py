#!/usr/bin/python3
"""Whole-process export time of BERT-tiny: mexport vs torch.onnx.export.

    /usr/bin/python3 bench/bert_tiny.py --mexport build/mexport [--repeat 3]

Times (median of --repeat runs, after --warmup untimed runs of each):
  mexport  `mexport export --config <temp cfg> --strategy htp --no-validate`
  peer     a fresh /usr/bin/python3 process that imports torch, torch.jit.load()s
           the same bert_tiny.pt and torch.onnx.export()s it (opset 17) with the
           same inputs, names and dynamic axes as configs/bert.yaml
Both are measured as whole processes (start-up, model load, export, write) and
the ratio peer/mexport is printed: above 1 means mexport is faster.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
from common import PYTHON, onnx_node_count, peer_command, timed  # noqa: E402


def measure(cmd, what, repeat, warmup):
    for _ in range(warmup):
        timed(cmd, what)
    return [timed(cmd, what)[0] for _ in range(repeat)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mexport", required=True, help="path to the mexport binary")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each (median; default 3)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs of each first (default 1)")
    ap.add_argument("--config", default=os.path.join(REPO, "configs", "bert.yaml"))
    ap.add_argument("--models", default=os.path.join(REPO, "tests", "models"),
                    help="directory of bert_tiny.pt (made if missing)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")

    mexport = os.path.abspath(args.mexport)
    if not os.access(mexport, os.X_OK):
        sys.exit(f"bench: mexport binary not found or not executable: {mexport}")
    model = os.path.join(os.path.abspath(args.models), "bert_tiny.pt")
    if not os.path.exists(model):
        subprocess.run([PYTHON, os.path.join(REPO, "tests", "models", "make_models.py"),
                        "--out", os.path.dirname(model), "--only", "bert_tiny"], check=True)

    import yaml
    with open(args.config) as f:
        text = f.read()
    cfg = yaml.safe_load(text)

    work = tempfile.mkdtemp(prefix="mexport-bench-")
    try:
        out_mexport = os.path.join(work, "mexport", "bert.onnx")
        out_peer = os.path.join(work, "peer", "bert.onnx")
        os.makedirs(os.path.dirname(out_peer))
        os.makedirs(os.path.dirname(out_mexport))
        # The config with absolute paths (paths in a config are relative to it).
        text = re.sub(r"(?m)^(\s+path:\s*)\S+\.pt[ \t]*$",
                      lambda m: m.group(1) + json.dumps(model), text, count=1)
        text = re.sub(r"(?m)^(\s+output:\s*)\S+\.onnx[ \t]*$",
                      lambda m: m.group(1) + json.dumps(out_mexport), text, count=1)
        cfg_path = os.path.join(work, "bert.yaml")
        with open(cfg_path, "w") as f:
            f.write(text)

        mexport_cmd = [mexport, "export", "--config", cfg_path, "--strategy", "htp",
                       "--no-validate"]
        peer_cmd = peer_command(model, out_peer, cfg)

        t_mexport = measure(mexport_cmd, "mexport", args.repeat, args.warmup)
        t_peer = measure(peer_cmd, "torch.onnx.export", args.repeat, args.warmup)
        m_med, p_med = statistics.median(t_mexport), statistics.median(t_peer)

        def runs(ts):
            return ", ".join(f"{t:.2f}" for t in ts)

        n_m, n_p = onnx_node_count(out_mexport), onnx_node_count(out_peer)
        print(f"bert_tiny ({model}), whole process, median of {args.repeat} "
              f"(+{args.warmup} warm-up)")
        print(f"  mexport export --strategy htp --no-validate : {m_med:7.3f} s"
              f"   runs [{runs(t_mexport)}]" + (f"   {n_m} nodes" if n_m is not None else ""))
        print(f"  python torch.onnx.export (opset 17)         : {p_med:7.3f} s"
              f"   runs [{runs(t_peer)}]" + (f"   {n_p} nodes" if n_p is not None else ""))
        print(f"  ratio peer/mexport: {p_med / m_med:.2f}x")
    finally:
        if args.keep:
            print(f"  scratch kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
