"""What only a GPU can show, in one run of a few minutes: ``make gpu-check``.

1. Griffin-Lim: clips/s of the batched PyTorch engine on the GPU at several batch sizes,
   against the NumPy engine on one CPU core in the same run (500 iterations, and the JND
   recipe's mix of counts), and how far the GPU's output is from the CPU's (log-spectral
   distance, dB, same clip and seed).
2. Training: examples/s of DPAM, each CDPAM stage and NORESQA at full size with AMP,
   reading shards through the real loader (``pamflow.models.training``), the GPU's
   utilisation sampled through NVML while each trains, and peak GPU memory; then DPAM with
   0 to 12 loader workers, to show how many it takes to keep the GPU busy.

Writes a markdown table (``--out``) and prints it. With no CUDA device it prints
"no device" and exits 0; ``--device cpu --quick`` runs every code path on the CPU at toy
sizes (the test suite does that). The datasets are read from ``--data``
(``DIR/{jnd,contrastive,triplet,nmr}``), built there first if missing.

    python benchmarks/gpu.py [--data out/gpu-data] [--out out/gpu-check.md]
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import json
import os
import pstats
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

#: the training process's profile, when asked for (``--profile``): the first run's only
PROFILED: list[str] = []
RECIPES = ("jnd", "contrastive", "triplet", "nmr")
#: (model, stage) rows of the training table
RUNS = (("dpam", "dpam"), ("cdpam", "contrastive"), ("cdpam", "jnd"), ("cdpam", "triplet"),
        ("noresqa", "noresqa"))  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="out/gpu-data", help="datasets folder (built if missing)")
    ap.add_argument("--out", default="out/gpu-check.md", help="markdown table written here")
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (code paths only)")
    ap.add_argument("--quick", action="store_true", help="toy sizes: checks the code paths")
    ap.add_argument("--rows", type=int, default=64, help="rows per dataset when building")
    ap.add_argument(
        "--sections", default="griffin_lim,ceilings,training", help="comma-separated subset"
    )
    ap.add_argument("--runs", default="", help="training runs, e.g. dpam/dpam (default: all)")
    ap.add_argument("--profile", action="store_true", help="profile the first training run")
    ap.add_argument("--budget-s", type=float, default=270.0, help="start no run after this")
    args = ap.parse_args()

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no device: torch.cuda.is_available() is False; nothing measured")
        return 0
    t0 = time.perf_counter()
    lines = [f"# pamflow GPU check ({describe(args.device)})", ""]
    sections = set(args.sections.split(","))
    if "griffin_lim" in sections:
        try:
            lines += griffin_lim_section(args)
        except Exception as e:  # the training rows are still worth having
            lines += ["## Griffin-Lim", "", f"failed: {type(e).__name__}: {e}", ""]
    data = ensure_data(Path(args.data), args.rows, args.quick)
    if "ceilings" in sections:
        lines += ceilings_section(args, data)
    if "training" in sections:
        lines += training_section(args, data, deadline=t0 + args.budget_s)
    lines += [f"\n```\n{p}\n```" for p in PROFILED]
    lines += ["", f"Whole check: {time.perf_counter() - t0:.0f} s."]
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    return 0


def describe(device: str) -> str:
    import torch

    if device == "cuda":
        p = torch.cuda.get_device_properties(0)
        gpu = f"{p.name}, {p.total_memory / 2**30:.0f} GiB"
    else:
        gpu = "CPU only: code paths, no GPU figures"
    return f"{gpu}; torch {torch.__version__}; {os.cpu_count()} CPU cores"


# -- Griffin-Lim -----------------------------------------------------------------------


def griffin_lim_section(args: argparse.Namespace) -> list[str]:
    from pamflow import perturbations
    from pamflow.audio.griffin_lim import griffin_lim, griffin_lim_batch, magnitude
    from pamflow.measures import log_spectral_distance
    from pamflow.testing import speech_like

    sr, seconds, n_fft = 16000, 2.5, 512
    hop = n_fft // 4
    full = 5 if args.quick else 500
    sizes = (1, 4) if args.quick else (1, 32, 128, 512)
    length = int(seconds * sr)
    clips = [speech_like(seconds=seconds, sample_rate=sr, seed=s)[:length] for s in range(8)]
    mags = [magnitude(c, n_fft, hop) for c in clips]

    def batch(n: int, counts: list[int]) -> float:
        rngs = [np.random.default_rng(i) for i in range(n)]
        t = time.perf_counter()
        griffin_lim_batch(
            [mags[i % 8] for i in range(n)],
            counts,
            rngs,
            length=length,
            hop=hop,
            device=args.device,
        )
        return time.perf_counter() - t

    # CPU: the NumPy engine, one clip at a time, one core
    griffin_lim(mags[0], 2, np.random.default_rng(0), length=length, hop=hop)  # compile once
    reps = 2 if args.quick else 3
    t = time.perf_counter()
    for i in range(reps):
        griffin_lim(mags[i], full, np.random.default_rng(i), length=length, hop=hop)
    cpu_rate = reps / (time.perf_counter() - t)
    fam = perturbations.get("griffin_lim")
    draw = np.random.default_rng(0)
    mix = [fam.sample(draw, float(draw.uniform(0, 100))).iterations for _ in range(64)]
    t = time.perf_counter()
    for i, it in enumerate(mix[:16]):
        griffin_lim(mags[i % 8], it, np.random.default_rng(i), length=length, hop=hop)
    cpu_mix = 16 / (time.perf_counter() - t)

    batch(4, [3] * 4)  # warm-up: CUDA context, cuFFT plans
    rows = [
        "## Griffin-Lim, 2.5 s clips at 16 kHz",
        "",
        f"CPU: NumPy engine, one clip at a time on one core: {cpu_rate:.2f} clips/s at "
        f"{full} iterations, {cpu_mix:.1f} clips/s on the JND mix of counts "
        f"(mean {np.mean(mix):.0f} iterations).",
        "",
        "| batch | iterations | clips/s | x one CPU core | x real time |",
        "|---:|---|---:|---:|---:|",
    ]
    for n in sizes:
        rate = n / batch(n, [full] * n)
        rows.append(f"| {n} | {full} | {rate:.1f} | {rate / cpu_rate:.0f} | {rate * seconds:.0f} |")
    n = sizes[-1]
    counts = [mix[i % len(mix)] for i in range(n)]
    rate = n / batch(n, counts)
    rows.append(f"| {n} | JND mix | {rate:.1f} | {rate / cpu_mix:.0f} | {rate * seconds:.0f} |")
    # agreement: the same clip and seed through both engines
    lsd, to_input = [], []
    for it in (22, full):
        gpu = griffin_lim_batch(
            mags[:4], [it] * 4, [np.random.default_rng(i) for i in range(4)],
            length=length, hop=hop, device=args.device,
        )  # fmt: skip
        for i in range(4):
            cpu = griffin_lim(mags[i], it, np.random.default_rng(i), length=length, hop=hop)
            lsd.append(log_spectral_distance(cpu, gpu[i], sr))
            to_input.append(log_spectral_distance(clips[i], cpu, sr))
    rows += [
        "",
        f"GPU against CPU output (same clips and seeds, 22 and {full} iterations): "
        f"log-spectral distance max {max(lsd):.3f} dB, mean {np.mean(lsd):.3f} dB "
        f"(for scale: CPU output against the input clip, mean {np.mean(to_input):.2f} dB).",
        "",
    ]
    return rows + griffin_lim_shard(args)


def griffin_lim_shard(args: argparse.Namespace) -> list[str]:
    """A shard of JND rows that all draw Griffin-Lim (families: griffin_lim alone), made
    three ways in one run: the NumPy engine one row at a time (a CPU worker's default), the
    torch engine on ``args.device`` one row at a time, and the same engine with the
    shard's sequences in lockstep (one batch a step); the last two must give the same rows."""
    from pamflow.datasets import get_recipe
    from pamflow.perturbations.griffin_lim import sample_engine

    engine = f"torch-{args.device}"
    recipe = get_recipe("jnd")
    fields = {"families": ["griffin_lim"], "seed": 1, "queries_per_sequence": 10,
              "num_examples": 100, "clip_seconds": 2.5}  # fmt: skip
    if args.quick:
        fields.update(num_examples=6, queries_per_sequence=3, clip_seconds=0.5)
    batches: list[int] = []

    def shard(how: str) -> tuple[float, list[dict[str, Any]]]:
        spec = recipe.parse(
            {**fields, "griffin_lim_engine": "numpy" if how != "lockstep" else engine}
        )
        t = time.perf_counter()
        if how == "numpy":
            rows = list(recipe.generate(spec, spec.sources(), 0, spec.num_examples))
        elif how == "one":
            with sample_engine(engine):
                rows = list(recipe.generate(spec, spec.sources(), 0, spec.num_examples))
        else:
            from pamflow.perturbations import lockstep

            original = lockstep.lockstep

            def counted(tasks, on_batch=None):  # the batch sizes, for the table
                return original(tasks, on_batch=batches.append)

            lockstep.lockstep = counted
            try:
                rows = list(recipe.generate(spec, spec.sources(), 0, spec.num_examples))
            finally:
                lockstep.lockstep = original
        return time.perf_counter() - t, rows

    from pamflow.audio.griffin_lim import griffin_lim, magnitude

    x = np.zeros(4000, np.float32)
    griffin_lim(magnitude(x, 512, 128), 2, np.random.default_rng(0), length=x.size, hop=128)
    shard("one")  # warm-up: numba's compile, torch, the CUDA context, the sources' audio
    t_np, _ = shard("numpy")
    t_one, one = shard("one")
    t_lock, together = shard("lockstep")
    same = all(
        np.array_equal(a["perturbed"], b["perturbed"])
        and np.array_equal(a["reference"], b["reference"])
        and json.dumps(a["params"], sort_keys=True) == json.dumps(b["params"], sort_keys=True)
        for a, b in zip(one, together, strict=True)
    )
    n = len(together)
    return [
        f"### A JND shard of Griffin-Lim rows ({n} rows, {fields['clip_seconds']} s clips, "
        f"{fields['queries_per_sequence']} questions a sequence)",
        "",
        "| how | engine | s | rows/s | x NumPy one at a time |",
        "|---|---|---:|---:|---:|",
        f"| one row at a time | numpy | {t_np:.2f} | {n / t_np:.1f} | 1.00 |",
        f"| one row at a time | {engine} | {t_one:.2f} | {n / t_one:.1f} | {t_np / t_one:.2f} |",
        f"| sequences in lockstep | {engine} | {t_lock:.2f} | {n / t_lock:.1f} | "
        f"{t_np / t_lock:.2f} |",
        "",
        f"Lockstep: {len(batches)} batches of {min(batches, default=0)} to "
        f"{max(batches, default=0)} clips; {t_one / t_lock:.2f}x one row at a time on the "
        f"same engine; rows identical to one row at a time: {'yes' if same else 'NO'}.",
        "",
    ]


# -- training ----------------------------------------------------------------------------


def ensure_data(
    root: Path, rows: int, quick: bool, recipes: tuple[str, ...] = RECIPES
) -> dict[str, str]:
    """The datasets of ``recipes`` under ``root``, built with ``pamflow build --local`` if
    missing."""
    from pamflow.storage import Dataset

    out = {}
    for recipe in recipes:
        path = root / recipe
        try:
            Dataset.open(str(path))
        except Exception:
            from pamflow.pipeline.build import build_local

            spec: dict[str, Any] = {"num_examples": 16 if quick else rows, "shard_size": 32}
            if quick:
                spec["clip_seconds"] = 1.0
            print(f"building {recipe} into {path} ...", flush=True)
            build_local(recipe, spec, str(path))
        out[recipe] = str(path)
    return out


class Utilisation:
    """Samples the GPU's utilisation (NVML, percent of time a kernel ran) every 0.1 s."""

    def __init__(self, device: str) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._handle: Any = None
        if device == "cuda":
            try:
                import pynvml

                pynvml.nvmlInit()
                self._handle = pynvml.nvmlDeviceGetHandleByIndex(0)
                self._nvml = pynvml
            except Exception as e:  # no NVML: the column says so
                print(f"GPU utilisation not sampled: {e}")
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            if self._handle is not None:
                self.samples.append(self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu)

    def __enter__(self) -> Utilisation:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def steady(self) -> str:
        """Mean over the second half of the run (start-up and first batches left out)."""
        if not self.samples:
            return "n/a"
        half = self.samples[len(self.samples) // 2 :]
        return f"{statistics.fmean(half):.0f}"


def train_once(
    args: argparse.Namespace, data: dict[str, str], model: str, stage_name: str, workers: int,
    steps: int, out: Path, init: str | None, values: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One training run of ``steps`` steps through ``stage.run`` (the real loader); ``values``
    sets config fields (benchmarks/train.py: batch size, clip length, checkpointing)."""
    import torch

    from pamflow.models import registry

    entry = registry.get(model)
    stage = entry.stage(stage_name)
    overrides: dict[str, Any] = dict(
        device=args.device, amp=True, num_workers=workers, eval_fraction=0.0, epochs=10_000,
        max_steps=steps, log_every=max(1, steps // 8), checkpoint_every=10**9,
    )  # fmt: skip
    cfg = registry.train_config(model, {"tiny": args.quick}, **overrides)
    if stage_name == "contrastive":  # no source twice in a batch: the demo corpus has few
        cfg = dataclasses.replace(cfg, batch_size=min(cfg.batch_size, 8))
    cfg = dataclasses.replace(cfg, **(values or {}))
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    run_dir = out / f"{model}-{stage_name}-{workers}"
    t = time.perf_counter()
    profile = cProfile.Profile() if args.profile and not PROFILED else None
    with Utilisation(args.device) as util:
        if profile is not None:
            profile.enable()
        stage.run([data[stage.recipe]], run_dir, cfg, init, False)
        if profile is not None:
            profile.disable()
            buf = io.StringIO()
            pstats.Stats(profile, stream=buf).sort_stats("tottime").print_stats(25)
            PROFILED.append(f"{model}/{stage_name}, {workers} loader workers:\n{buf.getvalue()}")
    wall = time.perf_counter() - t
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rates = [r["examples_per_s"] for r in records if r["split"] == "train"][1:]  # warm-up out
    peak = torch.cuda.max_memory_allocated() / 2**30 if args.device == "cuda" else float("nan")
    return {
        "rate": statistics.median(rates) if rates else float("nan"),
        "util": util.steady(),
        "peak": peak,
        "wall": wall,
        "batch": cfg.batch_size,
        "clip": cfg.clip_seconds,
        "params": sum(p.numel() for p in entry.architecture(cfg.model).parameters()) / 1e6,
        "model": str(run_dir / "model.pt"),
    }


def ceilings_section(args: argparse.Namespace, data: dict[str, str]) -> list[str]:
    """DPAM's two ceilings, apart: the loader alone (batches moved to the device, no model)
    by worker count, and the training step alone (one batch on the device, repeated)."""
    import torch

    from pamflow.models import registry
    from pamflow.models.training.data import BatchCollate, open_rows, to_device
    from pamflow.models.training.dpam import JND_TASK, jnd_step
    from pamflow.models.training.loop import Batches, Context, batch_loader

    cfg = registry.train_config("dpam", {"tiny": args.quick}, device=args.device)
    sr = cfg.model.sample_rate
    rows_ = open_rows(
        [data["jnd"]], audio=JND_TASK.audio, columns=JND_TASK.columns, sample_rate=sr,
        keep=JND_TASK.keep,
    )  # fmt: skip
    n = 6 if args.quick else 120
    per = cfg.batch_size
    keys = [
        [(int(j), k) for j in np.random.default_rng(k).choice(len(rows_), per)] for k in range(n)
    ]
    collate = BatchCollate(round(cfg.clip_seconds * sr), JND_TASK.audio, "random")
    device = torch.device(args.device)
    out = [
        "## DPAM's ceilings: the loader alone and the step alone",
        "",
        "| what | loader workers | examples/s | GPU util % |",
        "|---|---:|---:|---:|",
    ]
    for w in (0, 2) if args.quick else (0, 4, 8, 12):
        loader = batch_loader(
            rows_, Batches(keys), collate, dataclasses.replace(cfg, num_workers=w)
        )
        it = iter(loader)
        to_device(next(it), device)  # workers started, first batch in
        t = time.perf_counter()
        count = 0
        for batch in it:
            batch = to_device(batch, device)
            count += len(batch["label"])
        if args.device == "cuda":
            torch.cuda.synchronize()
        out.append(f"| loader only | {w} | {count / (time.perf_counter() - t):.0f} | |")
        print(out[-1], flush=True)
        del it, loader
    model = registry.build_model("dpam", dataclasses.asdict(cfg.model)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scaler = torch.amp.GradScaler("cuda", enabled=args.device == "cuda")
    batch = to_device(collate([rows_[k] for k in keys[0]]), device)
    ctx = Context(cfg, sr, torch.Generator().manual_seed(0))
    steps = 3 if args.quick else 150

    def train_step() -> None:  # what fit does for one batch, minus the loader
        with torch.autocast(device.type, dtype=torch.float16, enabled=args.device == "cuda"):
            loss, _ = jnd_step(model, batch, ctx)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def sync() -> None:
        if args.device == "cuda":
            torch.cuda.synchronize()

    with Utilisation(args.device) as util:
        for i in range(steps + 10):
            if i == 10:  # warm-up done
                sync()
                t = time.perf_counter()
            train_step()
        sync()
    rate = steps * per / (time.perf_counter() - t)
    out.append(f"| training step only (one batch, repeated) | | {rate:.0f} | {util.steady()} |")
    print(out[-1], flush=True)
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device == "cuda" else [])
        with profile(activities=acts) as prof:
            for _ in range(10):
                train_step()
            sync()
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20)
        PROFILED.append(f"DPAM step only, 10 steps (torch.profiler):\n{table}")
    return [*out, ""]


def training_section(args: argparse.Namespace, data: dict[str, str], deadline: float) -> list[str]:
    import tempfile

    from pamflow.models import registry

    cores = os.cpu_count() or 2
    workers = 2 if args.quick else min(8, max(1, cores - 2))
    steps = 4 if args.quick else 200
    rows = [
        "## Training at full size, AMP (float16 autocast), reading shards through the loader",
        "",
        f"{steps} steps a run; examples/s is the median of the logged windows after the "
        "first; GPU utilisation is NVML's, averaged over the run's second half.",
        "",
        "| model | stage | params (M) | batch x clip | loader workers | examples/s "
        "| GPU util % | peak GPU memory (GiB) | wall s |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    sweep = [w for w in ((0, 2) if args.quick else (0, 4)) if w != workers]
    with tempfile.TemporaryDirectory() as tmp:
        chosen = [tuple(r.split("/")) for r in args.runs.split(",") if r] or list(RUNS)
        plan = [(m, s, workers) for m, s in chosen] + [
            ("dpam", "dpam", w) for w in sweep if not args.runs
        ]
        last: dict[str, str] = {}  # a model's stage starts from its previous stage's model
        for model, stage, w in plan:
            if time.perf_counter() > deadline:
                rows.append(f"| {model} | {stage} | | | {w} | skipped: past --budget-s | | | |")
                continue
            try:
                first = stage == registry.get(model).stages[0].name
                init = None if first else last.get(model)
                r = train_once(args, data, model, stage, w, steps, Path(tmp), init)
                last[model] = r["model"]
            except Exception as e:  # one failing model still leaves the others' rows
                rows.append(
                    f"| {model} | {stage} | | | {w} | failed: {type(e).__name__}: {e} | | | |"
                )
                continue
            rows.append(
                f"| {model} | {stage} | {r['params']:.3g} | {r['batch']} x {r['clip']} s | {w} "
                f"| {r['rate']:.0f} | {r['util']} | {r['peak']:.2f} | {r['wall']:.0f} |"
            )
            print(rows[-1], flush=True)
    return rows


if __name__ == "__main__":
    sys.exit(main())
