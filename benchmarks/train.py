"""Training throughput and peak memory of every model stage at full size, on the CPU (and on
CUDA when present): ``benchmarks/train.py``.

Each (model, stage) trains for ``--steps`` steps from real shards through the real loader
(``stage.run``, as ``pamflow train`` does; benchmarks/gpu.py's ``train_once``) in a process
of its own, so that one run's peak does not hide another's: peak resident memory
(``ru_maxrss``) on the CPU, ``torch.cuda.max_memory_allocated`` on CUDA. Examples/s is the
median of the steps after the first (the first pays for warm-up; CDPAM's runs take one step
by default, tens of seconds on a CPU, whose warm-up hardly counts). A later stage starts from
a freshly initialised checkpoint of its model (throughput does not depend on the weights).

CPU batch sizes are small by default so that the whole table takes a few minutes on two
cores: full-size CDPAM costs about 0.7 s of two cores per second of audio through its
encoder's forward pass alone. ``--batch``/``--clip-seconds`` set every run's; CDPAM's
``checkpointing`` (auto, on, off) is ``--checkpointing``.

    python benchmarks/train.py [--data out/gpu-data] [--steps N] [--runs cdpam/contrastive]
        [--batch 16] [--checkpointing off] [--out out/train.md]

The datasets the runs read are in ``--data`` (built there first if missing, as
benchmarks/gpu.py builds them: ``DIR/{jnd,contrastive,triplet,nmr}``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gpu  # benchmarks/gpu.py: the datasets, the runs and one training run are shared

#: CPU batch sizes of the default table (clips of each config's own length, 2.5 s)
CPU_BATCH = {"dpam": 16, "contrastive": 2, "jnd": 2, "triplet": 2, "noresqa": 8}
#: steps a run of the default table: one of CDPAM (tens of seconds on a CPU, so its first
#: step's warm-up hardly counts), two of the others (the second one measured)
STEPS = {"dpam": 2, "cdpam": 1, "noresqa": 2}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="out/gpu-data", help="datasets folder (built if missing)")
    ap.add_argument("--out", default="out/train.md", help="markdown table written here")
    ap.add_argument("--devices", default="", help="comma-separated (default: cpu, and cuda)")
    ap.add_argument("--runs", default="", help="model/stage, comma-separated (default: all)")
    ap.add_argument("--steps", type=int, help="steps a run (default: 2, CDPAM's 1)")
    ap.add_argument("--batch", type=int, help="batch size of every run (default: per run)")
    ap.add_argument("--clip-seconds", type=float, help="crop length of every run")
    ap.add_argument("--checkpointing", help="CDPAM's activation checkpointing: auto, on, off")
    ap.add_argument("--rows", type=int, default=64, help="rows per dataset when building")
    ap.add_argument("--quick", action="store_true", help="tiny models: checks the code paths")
    ap.add_argument("--timeout-s", type=float, default=900.0, help="per run")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))), flush=True)
        return 0

    import torch

    devices = args.devices.split(",") if args.devices else ["cpu"]
    if not args.devices and torch.cuda.is_available():
        devices.append("cuda")
    from pamflow.models import registry

    chosen = [tuple(r.split("/")) for r in args.runs.split(",") if r] or list(gpu.RUNS)
    recipes = tuple(dict.fromkeys(registry.get(m).stage(s).recipe for m, s in chosen))
    data = gpu.ensure_data(Path(args.data), args.rows, args.quick, recipes)
    t0 = time.perf_counter()
    lines = [
        f"# pamflow training at {'toy' if args.quick else 'full'} size: {describe(devices)}",
        "",
        "examples/s: the median of the steps after the first (of the only step when one); "
        "peak memory: the training process's peak RSS on the CPU, "
        "torch.cuda.max_memory_allocated on CUDA.",
        "",
        "| device | model | stage | batch | clip s | checkpointing | examples/s | s/step "
        "| peak memory (GiB) |",
        "|---|---|---|---:|---:|---|---:|---:|---:|",
    ]
    for device in devices:
        for model, stage in chosen:
            job = {
                "device": device, "model": model, "stage": stage,
                "steps": args.steps or STEPS[model],
                "data": data, "quick": args.quick, "values": values(args, device, model, stage),
            }  # fmt: skip
            lines.append(run_child(job, args.timeout_s))
            print(lines[-1], flush=True)
    lines += ["", f"Whole run: {time.perf_counter() - t0:.0f} s."]
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    return 0


def describe(devices: list[str]) -> str:
    import torch

    parts = [f"{os.cpu_count()} CPU cores, torch {torch.__version__}"]
    if "cuda" in devices:
        p = torch.cuda.get_device_properties(0)
        parts.append(f"{p.name} ({p.total_memory / 2**30:.0f} GiB)")
    return "; ".join(parts)


def values(args: argparse.Namespace, device: str, model: str, stage: str) -> dict[str, Any]:
    """The config fields a run sets beyond gpu.train_once's."""
    out: dict[str, Any] = {}
    if args.batch:
        out["batch_size"] = args.batch
    elif device == "cpu" and not args.quick:
        out["batch_size"] = CPU_BATCH[stage]
    if args.clip_seconds:
        out["clip_seconds"] = args.clip_seconds
    if args.checkpointing and model == "cdpam":
        out["checkpointing"] = args.checkpointing
    return out


def run_child(job: dict[str, Any], timeout_s: float) -> str:
    """One run in a process of its own; its table row (or why it has none)."""
    head = f"| {job['device']} | {job['model']} | {job['stage']} |"
    cmd = [sys.executable, __file__, "--child", json.dumps(job)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return f"{head} | | | failed: over {timeout_s:.0f} s | | |"
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"{head} | | | failed: {why} | | |"
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    return (
        f"{head} {r['batch']} | {r['clip']:g} | {r['checkpointing']} | {r['rate']:.3g} "
        f"| {r['batch'] / r['rate']:.1f} | {r['peak_gib']:.2f} |"
    )


def child(job: dict[str, Any]) -> dict[str, Any]:
    """One run, in this (fresh) process: gpu.train_once, then this process's peak memory."""
    import torch

    from pamflow.models import registry
    from pamflow.models.checkpoint import load_checkpoint

    device, model, stage = job["device"], job["model"], job["stage"]
    entry = registry.get(model)
    args = argparse.Namespace(device=device, quick=job["quick"], profile=False)
    with tempfile.TemporaryDirectory(prefix="pamflow-train-bench-") as tmp:
        init = None
        if stage != entry.stages[0].name:  # a later stage: a fresh model of the same config
            cfg = registry.train_config(model, {"tiny": job["quick"]})
            torch.manual_seed(0)
            init = str(registry.save_model(Path(tmp) / "init.pt", entry.architecture(cfg.model)))
        r = gpu.train_once(
            args, job["data"], model, stage, 0, job["steps"], Path(tmp), init, job["values"]
        )
        meta = load_checkpoint(r["model"])["extra"]["meta"]
        records = Path(r["model"]).with_name("metrics.jsonl").read_text().splitlines()
    if job["steps"] == 1:  # no step after the first: the first one's rate
        r["rate"] = json.loads(records[0])["examples_per_s"]
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    used = {True: "on", False: "off", None: "n/a"}[meta.get("checkpointing")]
    return {"rate": r["rate"], "batch": r["batch"], "clip": r["clip"], "peak_gib": peak,
            "checkpointing": used, "wall": r["wall"]}  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
