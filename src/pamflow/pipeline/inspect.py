"""`pamflow inspect`: what a dataset holds, its checksums, and (with --report) an HTML page."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from pamflow import storage
from pamflow.datasets import get_recipe


def text_histogram(
    values: list[float], bins: int = 10, width: int = 40, range_: tuple[float, float] | None = None
) -> list[str]:
    """A histogram as lines of text: ``[lo, hi)  count  ####``."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return ["(no values)"]
    counts, edges = np.histogram(v, bins=bins, range=range_)
    top = max(int(counts.max()), 1)
    return [
        f"{edges[i]:8.2f} .. {edges[i + 1]:8.2f}  {c:6d}  {'#' * int(round(width * c / top))}"
        for i, c in enumerate(counts)
    ]


def describe(path: str, *, verify: bool = True) -> dict[str, Any]:
    from pamflow.pipeline.build import summarize

    ds = storage.Dataset.open(path)
    info: dict[str, Any] = {
        "summary": summarize(path),
        "bytes": sum(s.bytes for s in ds.shards),
        "spec": ds.spec,
        "audio_columns": list(ds.audio_columns),
        "sample_rate": ds.sample_rate,
    }
    if verify:
        info["problems"] = ds.verify().problems
    table = ds.to_table()  # every column but the audio
    recipe = get_recipe(ds.recipe)  # what to chart is the recipe's to say
    info["histograms"] = {
        c: table.column(c).to_pylist() for c in recipe.histogram_columns if c in table.column_names
    }
    info["label_columns"] = list(recipe.label_columns)
    for c in recipe.count_columns:
        if c in table.column_names:
            vals = table.column(c).to_pylist()
            info.setdefault("counts", {})[c] = {
                str(k): vals.count(k) for k in sorted(set(vals), key=str)
            }
    return info


def inspect_dataset(
    path: str, *, console: Console, report: str | None = None, verify: bool = True
) -> int:
    info = describe(path, verify=verify)
    s = info["summary"]
    t = Table(title=f"{s['recipe']} dataset: {path}")
    t.add_column("field")
    t.add_column("value", justify="right")
    t.add_row("rows", str(s["rows"]))
    t.add_row("shards", str(s["shards"]))
    t.add_row("size", f"{info['bytes'] / 1e6:.1f} MB")
    t.add_row("sample rate", f"{info['sample_rate']} Hz")
    t.add_row("audio columns", ", ".join(info["audio_columns"]))
    for k, v in s.items():
        if k not in ("recipe", "path", "rows", "shards") and not isinstance(v, dict):
            t.add_row(k, f"{v:.3f}" if isinstance(v, float) else str(v))
    console.print(t)
    console.print("spec: " + ", ".join(f"{k}={v}" for k, v in sorted(info["spec"].items())))
    for col, counts in info.get("counts", {}).items():
        console.print(f"[bold]{col}[/]: " + ", ".join(f"{k}: {n}" for k, n in counts.items()))
    for col, values in info["histograms"].items():
        console.print(f"[bold]{col}[/]")
        for line in text_histogram(values):
            console.print("  " + line, markup=False)
    problems = info.get("problems")
    if problems is not None:
        if problems:
            console.print("[red]checksum problems:[/]")
            for p in problems:
                console.print(f"  {p}", markup=False)
        else:
            console.print("[green]all shard checksums verified[/]")
    if report:
        from pamflow.pipeline.report import write_report

        write_report(path, report, info)
        console.print(f"report written to {report}")
    return 1 if problems else 0
