#!/usr/bin/python3
"""What --with-graphml costs: whole-process `mexport export` with and without it.

    /usr/bin/python3 bench/graphml_overhead.py --mexport build/mexport [--repeat 5] [--layers 12]

Models:
  bert_tiny   tests/models/bert_tiny.pt (made if missing), configs/bert.yaml
  bert_deep   the same BertModel with --layers encoder layers (default 12, over
              1,000 ONNX nodes), built here with torch.manual_seed(0) and traced
Each export runs `mexport export --config <temp cfg> --strategy htp --no-validate`
with and without --with-graphml, alternately, --warmup times untimed then
--repeat times; the medians and the overhead are printed, the overhead both of
the whole process and of the export work (whole process less the start-up that
`mexport --version` pays, mostly loading libtorch), in wall time and in CPU time
(user + system; steadier when other work shares the machine). Sizes of the
GraphML and its sidecar, and the time of `mexport graphml-to-onnx` back, are
printed too.
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

PYTHON = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, ".."))
MAKE_MODELS = os.path.join(REPO, "tests", "models", "make_models.py")
sys.path.insert(0, HERE)
from common import onnx_node_count, timed  # noqa: E402


def alternate(commands, repeat, warmup):
    """Runs each (name, cmd) in turn, round after round; returns
    name -> (wall times, cpu times)."""
    times = {name: ([], []) for name, _ in commands}
    for round_ in range(warmup + repeat):
        for name, cmd in commands:
            wall, cpu = timed(cmd, name)
            if round_ >= warmup:
                times[name][0].append(wall)
                times[name][1].append(cpu)
    return times


def build_deep_bert(path, layers):
    """BertModel of make_models.py with `layers` encoder layers, seeded, traced."""
    sys.path.insert(0, os.path.dirname(MAKE_MODELS))
    import torch
    import make_models as mm
    torch.manual_seed(0)
    model = mm.BertModel(dict(mm.BERT_CONFIG, num_hidden_layers=layers)).eval()
    with torch.no_grad():
        traced = torch.jit.trace(model, mm.bert_example_inputs(), check_trace=False)
    traced.save(path)


def config_for(model, output, work, name):
    with open(os.path.join(REPO, "configs", "bert.yaml")) as f:
        text = f.read()
    text = re.sub(r"(?m)^(\s+path:\s*)\S+\.pt[ \t]*$", lambda m: m.group(1) + json.dumps(model), text,
                  count=1)
    text = re.sub(r"(?m)^(\s+output:\s*)\S+\.onnx[ \t]*$", lambda m: m.group(1) + json.dumps(output), text,
                  count=1)
    path = os.path.join(work, name + ".yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mexport", required=True, help="path to the mexport binary")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of each (median; default 5)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs of each first (default 1)")
    ap.add_argument("--layers", type=int, default=12, help="encoder layers of bert_deep (default 12)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    mexport = os.path.abspath(args.mexport)
    if not os.access(mexport, os.X_OK):
        sys.exit(f"bench: mexport binary not found or not executable: {mexport}")

    work = tempfile.mkdtemp(prefix="mexport-graphml-bench-")
    try:
        tiny = os.path.join(REPO, "tests", "models", "bert_tiny.pt")
        if not os.path.exists(tiny):
            subprocess.run([PYTHON, MAKE_MODELS, "--out", os.path.dirname(tiny), "--only", "bert_tiny"],
                           check=True)
        deep = os.path.join(work, "bert_deep.pt")
        build_deep_bert(deep, args.layers)

        startup = alternate([("start-up", [mexport, "--version"])], args.repeat, 1)["start-up"]
        startup_wall, startup_cpu = statistics.median(startup[0]), statistics.median(startup[1])
        print(f"graphml overhead, whole process, median of {args.repeat} (+{args.warmup} warm-up), "
              f"alternating runs; start-up (mexport --version) {startup_wall:.3f} s wall, "
              f"{startup_cpu:.3f} s CPU")
        for name, model in (("bert_tiny", tiny), (f"bert_deep ({args.layers} layers)", deep)):
            stem = name.split()[0]
            out = os.path.join(work, stem, stem + ".onnx")
            cfg = config_for(model, out, work, stem)
            base = [mexport, "export", "--config", cfg, "--strategy", "htp", "--no-validate", "--quiet"]
            times = alternate([("without", base), ("with", base + ["--with-graphml"])], args.repeat,
                              args.warmup)
            graphml = os.path.join(work, stem, stem + "_hierarchical_graph.graphml")
            sidecar = os.path.join(work, stem, stem + "_hierarchical_graph.onnxdata")
            back = os.path.join(work, stem, "roundtrip.onnx")
            t_back = alternate([("graphml-to-onnx", [mexport, "graphml-to-onnx", graphml, back])],
                               args.repeat, 0)
            print(f"{name}: {onnx_node_count(out)} ONNX nodes, "
                  f"GraphML {os.path.getsize(graphml) / 1e6:.2f} MB, "
                  f"sidecar {os.path.getsize(sidecar) / 1e6:.2f} MB")
            for label, i, startup_s in (("wall", 0, startup_wall), ("CPU ", 1, startup_cpu)):
                without = statistics.median(times["without"][i])
                with_ = statistics.median(times["with"][i])
                print(f"  {label} without {without:6.3f} s, with --with-graphml {with_:6.3f} s: overhead "
                      f"{100 * (with_ - without) / without:+.1f}% of the whole process, "
                      f"{100 * (with_ - without) / max(without - startup_s, 1e-9):+.1f}% of the export work "
                      f"(less start-up)")
                print(f"       runs without [{', '.join(f'{t:.3f}' for t in times['without'][i])}]"
                      f"  with [{', '.join(f'{t:.3f}' for t in times['with'][i])}]")
            print(f"  graphml-to-onnx back: {statistics.median(t_back['graphml-to-onnx'][0]):.3f} s wall, "
                  f"{statistics.median(t_back['graphml-to-onnx'][1]):.3f} s CPU")
    finally:
        if args.keep:
            print(f"scratch kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
