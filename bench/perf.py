#!/usr/bin/python3
"""mexport against torch.onnx.export from BERT-tiny to BERT-base size: time, memory, floor, scale.

    /usr/bin/python3 bench/perf.py --mexport build/mexport [--models NAME,...] [--validation off,on]
                                   [--repeat N] [--peer-deep] [--no-peer] [--peer-from JSON]
                                   [--work DIR] [--json FILE]

Models (seeded, traced, cached in --work and rebuilt when their entry below or
tests/models/make_models.py changes):
  bert_tiny     the fixture BertModel of make_models.py (hidden 128, 2 layers, sequence 16)
  bert_base     the same BertModel at BERT-base size (hidden 768, 12 layers, 12 heads,
                vocab 30522, sequence 128; 440 MB of weights)
  resnet50      torchvision resnet50, BatchNorm statistics randomised, 1x3x224x224
  bert_deep48   deep and narrow: hidden 64, 2 heads, intermediate 256, 48 layers, sequence 16
  bert_deep192  the same with 192 layers; its peer takes about 15 minutes, so it runs
                only with --peer-deep

Each row is one whole process (median of --repeat runs): `mexport export --strategy htp`
with numeric validation off (--no-validate) and, with `--validation off,on`, on; and the
peer, a fresh /usr/bin/python3 that imports torch, torch.jit.load()s the same file and
torch.onnx.export()s it (opset 17) with the same inputs, names and dynamic axes (the peer
never validates, so its figures are the same in both tables). Peak RSS is each process's
own maximum resident set (wait4, in a small wrapper process). Before each run the
previous run's ONNX file is removed and the disk synced, so every run writes a new file
with nothing else to flush, as the floor's write does. Then:

  floor   what no exporter can avoid: process start (median of `mexport --version`),
          torch::jit::load of the file (timed around the call in a fresh Python process,
          median of 3) and writing the ONNX bytes (the same bytes written to a new file
          in --work in 1 MiB writes and fsync'd, as mexport does; median of 3 after a
          warm-up, so a lower bound). mexport's own work (validation off) is its wall time
          less its process start, its own `load` stage and its own write (the time mexport
          spends in write, fsync, close and rename, printed in its summary; the median over
          runs of wall less write, less the median start and load). It is printed as a
          share of the floor, next to the part of it its stage timings see (prepare,
          shapes run, tag, lower, check: total less load)
  scale   for the deep models: time per ONNX node (wall and CPU, less the process start:
          `mexport --version`, `python3 -c "import torch"`) for both exporters, each with
          its own node count, and how that grows from 48 to 192 layers

--peer-from reuses the peer's figures of an earlier --json (the 192-layer one takes long).

Run it on an idle machine: the load average is printed at the start and the end.
"""

import argparse
import ctypes
import json
import os
import re
import statistics
import sys
import tempfile
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, ".."))
MODELS_DIR = os.path.join(REPO, "tests", "models")
sys.path.insert(0, HERE)
from common import PYTHON, machine, measure, onnx_node_count, peer_command  # noqa: E402

BERT_BASE = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072)
BERT_DEEP = dict(hidden_size=64, num_attention_heads=2, intermediate_size=256)

# How mexport writes a file (framework/src/atomic_files.cpp), for the floor's write.
WRITE_PIECE = 1 << 20
WRITEBACK_EVERY = 8 << 20
SYNC_FILE_RANGE_WRITE = 2
LIBC = ctypes.CDLL(None, use_errno=True)

# name -> (base config in configs/, BertModel overrides or a torchvision name, sequence length)
MODELS = {
    "bert_tiny": ("bert.yaml", {}, 16),
    "bert_base": ("bert.yaml", BERT_BASE, 128),
    "resnet50": ("resnet18.yaml", "resnet50", None),
    "bert_deep48": ("bert.yaml", dict(BERT_DEEP, num_hidden_layers=48), 16),
    "bert_deep192": ("bert.yaml", dict(BERT_DEEP, num_hidden_layers=192), 16),
}
DEEP = ("bert_deep48", "bert_deep192")
SLOW_PEER = "bert_deep192"


# --- models and configs -----------------------------------------------------------

def build_model(name, path):
    """Builds, traces and saves model `name` (seeded); returns its weight bytes."""
    sys.path.insert(0, MODELS_DIR)
    import torch
    import make_models as mm
    _, spec, seq = MODELS[name]
    torch.manual_seed(0)
    if isinstance(spec, str):
        model, example = mm.build_vision(spec)
    else:
        config = dict(mm.BERT_CONFIG, **spec)
        model = mm.BertModel(config).eval()
        example = mm.bert_example_inputs(seq=seq, vocab=config["vocab_size"])
    with torch.no_grad():
        traced = torch.jit.trace(model, example, check_trace=False)
    traced.save(path + ".tmp")
    os.replace(path + ".tmp", path)
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def ensure_model(name, work):
    """The cached .pt of `name` and its weight bytes; rebuilt when its entry in
    MODELS or tests/models/make_models.py changed."""
    path = os.path.join(work, "models", name + ".pt")
    info_path = path[:-3] + ".json"
    spec = repr(MODELS[name])
    make_models = os.path.join(MODELS_DIR, "make_models.py")
    if (os.path.exists(path) and os.path.exists(info_path)
            and os.path.getmtime(info_path) > os.path.getmtime(make_models)):
        with open(info_path) as f:
            info = json.load(f)
        if info.get("spec") == spec:
            return path, info["weight_bytes"]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    print(f"bench: building {name} ...", flush=True)
    weight_bytes = build_model(name, path)
    with open(info_path, "w") as f:
        json.dump({"spec": spec, "weight_bytes": weight_bytes}, f)
    return path, weight_bytes


def write_config(name, model_path, work):
    """A config for `name`: its base config in configs/ with this model, its
    sizes and absolute paths. Returns (config path, parsed config, ONNX path)."""
    base, spec, seq = MODELS[name]
    with open(os.path.join(REPO, "configs", base)) as f:
        config = yaml.safe_load(f)
    out_dir = os.path.join(work, "out", name)
    os.makedirs(out_dir, exist_ok=True)
    output = os.path.join(out_dir, name + ".onnx")
    config["model"] = {"path": model_path, "name": name}
    config["export"]["output"] = output
    if seq is not None:  # a BertModel: the fixture's config, at this sequence length and vocabulary
        for input_spec in config["inputs"]:
            input_spec["shape"] = [1, seq]
            if "range" in input_spec and "vocab_size" in spec:
                input_spec["range"] = [0, spec["vocab_size"]]
    path = os.path.join(work, "configs", name + ".yaml")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return path, config, output


# --- measuring --------------------------------------------------------------------

# mexport's last summary line: what its emitters wrote, and how long that took.
MEXPORT_WRITE = re.compile(r"([0-9.]+) [kM]B written and synced to disk in ([0-9.]+) s")


def median_run(cmd, what, repeat, output=None):
    """Medians of wall, CPU and peak RSS over `repeat` runs, and every wall time;
    for mexport also of its own write time (`write`, from its summary). Each
    run writes `output` (and a data file beside it) anew: an earlier run's file
    is removed and the disk synced first, so no run pays for freeing or
    flushing another's."""
    runs = []
    for _ in range(repeat):
        if output is not None:
            for path in (output, output + ".data"):
                if os.path.exists(path):
                    os.remove(path)
            os.sync()
        runs.append(measure(cmd, what))
    result = {"wall": statistics.median(r.wall for r in runs),
              "cpu": statistics.median(r.cpu for r in runs),
              "peak_rss_mb": statistics.median(r.peak_rss_mb for r in runs),
              "walls": [r.wall for r in runs]}
    writes = [float(m.group(2)) for m in (MEXPORT_WRITE.search(r.stdout) for r in runs) if m]
    if len(writes) == len(runs):
        # The write is the noisiest part of a run: it is taken out run by run.
        result.update(write=statistics.median(writes), writes=writes,
                      wall_less_write=statistics.median(r.wall - w for r, w in zip(runs, writes)))
    return result


def write_seconds(source, directory, repeat):
    """Median time to write the bytes of `source` to a new file and fsync it,
    as mexport writes its outputs (1 MiB per write(), writeback started every
    8 MiB), after one untimed run. The file is removed after each run, so later
    runs reuse its page cache pages: a lower bound."""
    with open(source, "rb") as f:
        data = memoryview(f.read())
    target = os.path.join(directory, "write-floor.bin")
    times = []
    for _ in range(repeat + 1):
        os.sync()
        t0 = time.perf_counter()
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        synced = 0
        for offset in range(0, len(data), WRITE_PIECE):
            os.write(fd, data[offset:offset + WRITE_PIECE])
            end = min(offset + WRITE_PIECE, len(data))
            if end - synced >= WRITEBACK_EVERY:
                LIBC.sync_file_range(fd, ctypes.c_int64(synced), ctypes.c_int64(end - synced),
                                     SYNC_FILE_RANGE_WRITE)
                synced = end
        os.fsync(fd)
        os.close(fd)
        times.append(time.perf_counter() - t0)
        os.remove(target)
    return statistics.median(times[1:])


JIT_LOAD_TIMER = """
import sys, time, torch
t0 = time.perf_counter()
torch.jit.load(sys.argv[1], map_location="cpu")
print(time.perf_counter() - t0)
"""


def jit_load_seconds(model_path, repeat):
    """Median time of torch.jit.load alone (libtorch's C++ loader behind a thin
    Python call), each in a fresh process with the file in the page cache."""
    times = []
    for _ in range(repeat):
        run = measure([PYTHON, "-c", JIT_LOAD_TIMER, model_path], f"torch.jit.load {model_path}")
        times.append(float(run.stdout.split()[-1]))
    return statistics.median(times)


def metadata_of(onnx_path):
    with open(onnx_path[:-len(".onnx")] + "_htp_metadata.json") as f:
        return json.load(f)


def load_average():
    return [round(x, 2) for x in os.getloadavg()]


# --- printing ---------------------------------------------------------------------

def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "-"


def fmt(value, spec):
    return format(value, spec) if value is not None else "-"


def print_table(rows, mode):
    flag = "--no-validate" if mode == "off" else "(validating)"
    print(f"\nnumeric validation {mode}: mexport export --strategy htp {flag} vs torch.onnx.export "
          f"(opset 17); whole processes, wall and CPU (user + system) seconds")
    print(f"{'model':<13} {'weights MB':>10} {'nodes mx':>8} {'nodes peer':>10} {'mexport s':>9} "
          f"{'peer s':>8} {'speed-up':>8} {'mx cpu s':>8} {'peer cpu s':>10} {'mexport MB':>10} "
          f"{'peer MB':>8} {'RSS peer/mx':>11}")
    for row in rows:
        mx, peer = row["mexport"][mode], row.get("peer")
        print(f"{row['model']:<13} {row['weights_mb']:>10.1f} {mx['nodes']:>8} "
              f"{fmt(peer and peer['nodes'], '>10')} {mx['wall']:>9.2f} "
              f"{fmt(peer and peer['wall'], '>8.2f')} "
              f"{ratio(peer and peer['wall'], mx['wall']):>8} "
              f"{mx['cpu']:>8.2f} {fmt(peer and peer['cpu'], '>10.2f')} "
              f"{mx['peak_rss_mb']:>10.0f} {fmt(peer and peer['peak_rss_mb'], '>8.0f')} "
              f"{ratio(peer and peer['peak_rss_mb'], mx['peak_rss_mb']):>11}")


def print_floor(rows):
    print("\nfloor (validation off): process start + torch::jit::load + writing the ONNX bytes "
          "(fsync'd, lower bound); own = mexport's wall time less its start, load and write")
    print(f"{'model':<13} {'start s':>7} {'jit load s':>10} {'write s':>7} {'floor s':>7} "
          f"{'mexport s':>9} {'mx load s':>9} {'mx write s':>10} {'own s':>6} {'own/floor':>9} "
          f"{'stages s':>8}   stages (metadata, s)")
    for row in rows:
        f = row["floor"]
        stages = " ".join(f"{k} {v:.3f}" for k, v in row["mexport"]["off"]["timings"].items())
        print(f"{row['model']:<13} {f['start']:>7.2f} {f['jit_load']:>10.2f} {f['write']:>7.2f} "
              f"{f['floor']:>7.2f} {row['mexport']['off']['wall']:>9.2f} {f['mexport_load']:>9.2f} "
              f"{f['mexport_write']:>10.2f} {f['own']:>6.2f} "
              f"{100 * f['own'] / f['floor']:>8.0f}% {f['own_stages']:>8.2f}   {stages}")


def print_scale(rows, starts):
    deep = [row for row in rows if row["model"] in DEEP]
    if not deep:
        return
    print(f"\nscale: time per ONNX node, validation off, less each exporter's process start "
          f"(mexport --version {starts['mexport']['wall']:.2f} s wall / "
          f"{starts['mexport']['cpu']:.2f} s CPU, python3 -c 'import torch' "
          f"{starts['peer']['wall']:.2f} / {starts['peer']['cpu']:.2f} s)")
    print(f"{'model':<13} {'nodes mx':>8} {'mx wall us':>10} {'mx cpu us':>9} {'nodes peer':>10} "
          f"{'peer wall us':>12} {'peer cpu us':>11} {'wall peer/mx':>12} {'cpu peer/mx':>11}")
    for row in deep:
        s = row["scale"]
        print(f"{row['model']:<13} {s['nodes']:>8} {s['mexport']['wall']:>10.1f} "
              f"{s['mexport']['cpu']:>9.1f} {fmt(s['peer_nodes'], '>10')} "
              f"{fmt(s['peer'] and s['peer']['wall'], '>12.0f')} "
              f"{fmt(s['peer'] and s['peer']['cpu'], '>11.0f')} "
              f"{ratio(s['peer'] and s['peer']['wall'], s['mexport']['wall']):>12} "
              f"{ratio(s['peer'] and s['peer']['cpu'], s['mexport']['cpu']):>11}")
    if len(deep) == 2:
        a, b = deep[0]["scale"], deep[1]["scale"]
        for clock in ("wall", "cpu"):
            line = (f"per-node {clock} time, 192 over 48 layers: mexport "
                    f"{ratio(b['mexport'][clock], a['mexport'][clock])}")
            if a["peer"] and b["peer"]:
                line += f", peer {ratio(b['peer'][clock], a['peer'][clock])}"
            print(line)


def per_node(run, start, nodes):
    """Microseconds per node of a run, wall and CPU, less the process start."""
    return {clock: 1e6 * (run[clock] - start[clock]) / nodes for clock in ("wall", "cpu")}


# --- main -------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mexport", required=True, help="path to the mexport binary")
    ap.add_argument("--models", default=",".join(MODELS),
                    help=f"comma-separated rows to run (default: all of {', '.join(MODELS)})")
    ap.add_argument("--validation", default="off,on",
                    help="mexport runs: off, on or off,on (default off,on)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each, median (default 1)")
    ap.add_argument("--peer-deep", action="store_true",
                    help=f"also run the peer on {SLOW_PEER} (about 15 minutes)")
    ap.add_argument("--no-peer", action="store_true", help="run mexport only")
    ap.add_argument("--peer-from", metavar="JSON",
                    help="take the peer's figures from an earlier --json where it has the model "
                         "(the peer's results do not change with mexport)")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "mexport-perf"),
                    help="cache of models, configs and outputs (default: %(default)s)")
    ap.add_argument("--json", help="also write every figure to this JSON file")
    args = ap.parse_args()
    names = [n for n in args.models.split(",") if n]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        ap.error(f"unknown model(s): {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    modes = [m for m in args.validation.split(",") if m]
    if "off" not in modes or any(m not in ("off", "on") for m in modes):
        ap.error("--validation must be off or off,on (the floor is measured with validation off)")
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    mexport = os.path.abspath(args.mexport)
    if not os.access(mexport, os.X_OK):
        sys.exit(f"bench: mexport binary not found or not executable: {mexport}")
    work = os.path.abspath(args.work)

    report = {"machine": machine(), "load_average_start": load_average(), "repeat": args.repeat}
    prepared = []
    for name in names:
        model_path, weight_bytes = ensure_model(name, work)
        prepared.append((name, model_path, weight_bytes) + write_config(name, model_path, work))

    m = report["machine"]
    print(f"machine: {m['cpus']} CPUs, {m['cpu']}, {m['ram_gb']} GB RAM; load average "
          f"{report['load_average_start']}; median of {args.repeat} run(s)")
    starts = {"mexport": median_run([mexport, "--version"], "mexport --version", args.repeat),
              "peer": median_run([PYTHON, "-c", "import torch"], "import torch", args.repeat)}
    report["starts"] = starts
    startup = starts["mexport"]["wall"]
    earlier_peers = {}
    if args.peer_from:
        with open(args.peer_from) as f:
            earlier_peers = {row["model"]: row["peer"] for row in json.load(f)["rows"]
                             if row.get("peer")}

    rows = []
    for name, model_path, weight_bytes, config_path, config, output in prepared:
        row = {"model": name, "weights_mb": weight_bytes / 1e6, "mexport": {}}
        base = [mexport, "export", "--config", config_path, "--strategy", "htp"]
        for mode in modes:
            cmd = base + (["--no-validate"] if mode == "off" else [])
            run = median_run(cmd, f"mexport export {name}", args.repeat, output)
            meta = metadata_of(output)
            run.update(nodes=meta["coverage"]["total"], timings=meta["timings"])
            row["mexport"][mode] = run
            print(f"  {name}: mexport validation {mode}: {run['wall']:.2f} s, "
                  f"{run['peak_rss_mb']:.0f} MB", flush=True)
        if name in earlier_peers:
            row["peer"] = dict(earlier_peers[name], reused_from=args.peer_from)
        elif not args.no_peer and (name != SLOW_PEER or args.peer_deep):
            peer_output = output[:-len(".onnx")] + "_peer.onnx"
            run = median_run(peer_command(model_path, peer_output, config),
                             f"torch.onnx.export {name}", args.repeat, peer_output)
            run["nodes"] = onnx_node_count(peer_output)
            row["peer"] = run
            print(f"  {name}: peer: {run['wall']:.2f} s, {run['peak_rss_mb']:.0f} MB", flush=True)
        off = row["mexport"]["off"]
        jit_load = jit_load_seconds(model_path, 3)
        write = write_seconds(output, os.path.dirname(output), 3)
        floor = startup + jit_load + write
        mexport_load, mexport_write = off["timings"]["load"], off["write"]
        row["floor"] = {"start": startup, "jit_load": jit_load, "write": write, "floor": floor,
                        "mexport_load": mexport_load, "mexport_write": mexport_write,
                        "own": off["wall_less_write"] - startup - mexport_load,
                        "own_stages": off["timings"]["total"] - mexport_load,
                        "onnx_bytes": os.path.getsize(output)}
        peer = row.get("peer")
        row["scale"] = {"nodes": off["nodes"],
                        "mexport": per_node(off, starts["mexport"], off["nodes"]),
                        "peer_nodes": peer and peer["nodes"],
                        "peer": peer and per_node(peer, starts["peer"], peer["nodes"])}
        rows.append(row)

    for mode in modes:
        print_table(rows, mode)
    print_floor(rows)
    print_scale(rows, starts)
    for row in rows:
        if row.get("peer", {}).get("reused_from"):
            print(f"{row['model']}: the peer's figures are from {row['peer']['reused_from']}")
    report["load_average_end"] = load_average()
    report["rows"] = rows
    print(f"\nload average at the end: {report['load_average_end']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
