"""Helpers shared by the benchmark scripts: timing a whole process and
counting the nodes of an ONNX file."""

import resource
import subprocess
import sys
import time


def timed(cmd, what):
    """Wall seconds and CPU seconds (user + system) of one run of cmd; exits
    with the command's last line if it fails. CPU time is the steadier figure
    on a busy machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                       text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        tail = (r.stderr.strip() or r.stdout.strip()).splitlines()[-1:] or ["(no output)"]
        sys.exit(f"bench: {what} failed with exit code {r.returncode}: {tail[0]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def onnx_node_count(path):
    try:
        import onnx
        return len(onnx.load(path, load_external_data=False).graph.node)
    except Exception:
        return None
