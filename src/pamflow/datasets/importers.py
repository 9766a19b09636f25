"""Human labels: import listening-test judgments into a new version of a dataset, and
import the published DPAM JND lists as a dataset.

Importing never touches the source dataset: the labelled copy is a new dataset folder whose
``dataset.json`` records where it came from.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pamflow import storage
from pamflow.audio import AudioError, load


class LabelsError(ValueError):
    """A judgments file or list that cannot be imported; the message names file and line."""


_ANSWERS = {
    "1": 1,
    "0": 0,
    "different": 1,
    "same": 0,
    "diff": 1,
    "d": 1,
    "s": 0,
    "true": 1,
    "false": 0,
    "yes": 1,
    "no": 0,
}


#: the longest field a judgments CSV may hold (csv's default limit is 128 KiB)
MAX_FIELD = 4096


def read_judgments(path: str | Path) -> dict[str, list[tuple[str, int]]]:
    """``example_id -> [(listener, answer), ...]`` from a CSV with a header naming
    ``example_id``, ``listener`` and ``answer`` (1/0, different/same...).

    UTF-8 text, with or without a byte-order mark. One vote per (example, listener): a
    listener who answered the same example again replaces their earlier answer (the last
    one counts). Empty ids, ids holding control characters and fields longer than
    :data:`MAX_FIELD` characters are refused, naming the line.
    """
    votes: dict[str, dict[str, int]] = defaultdict(dict)
    line = 1
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = {"example_id", "listener", "answer"} - set(reader.fieldnames or [])
            if missing:
                raise LabelsError(
                    f"{path}: missing column(s) {sorted(missing)}; found {reader.fieldnames}"
                )
            for line, rec in enumerate(reader, start=2):
                eid = _field(rec, "example_id", path, line)
                listener = _field(rec, "listener", path, line)
                ans = _ANSWERS.get(_field(rec, "answer", path, line).lower())
                if ans is None:
                    raise LabelsError(
                        f"{path}:{line}: answer {rec['answer']!r} is not 1/0/different/same"
                    )
                votes[eid].pop(listener, None)  # re-answered: the last answer counts
                votes[eid][listener] = ans
    except UnicodeDecodeError as e:
        raise LabelsError(
            f"{path}: not UTF-8 text (byte {e.start}: {e.reason}); save the CSV as UTF-8"
        ) from e
    except csv.Error as e:
        raise LabelsError(f"{path}:{line + 1}: not a readable CSV row: {e}") from e
    return {eid: list(by.items()) for eid, by in votes.items()}


def _field(rec: dict[str, Any], name: str, path: str | Path, line: int) -> str:
    value = rec.get(name)
    text = "" if value is None else str(value).strip()
    if not text:
        raise LabelsError(f"{path}:{line}: empty {name}")
    if len(text) > MAX_FIELD:
        raise LabelsError(
            f"{path}:{line}: {name} is {len(text)} characters long (at most {MAX_FIELD})"
        )
    if any(ord(c) < 32 for c in text):
        raise LabelsError(f"{path}:{line}: {name} {text[:40]!r} holds control characters")
    return text


def aggregate(votes: list[tuple[str, int]]) -> tuple[int | None, float, int]:
    """Majority label (None on a tie), agreement share with it, and vote count."""
    answers = np.array([a for _, a in votes], dtype=float)
    share = float(answers.mean())
    if share == 0.5:
        return None, 0.5, len(answers)
    label = int(share > 0.5)
    return label, share if label == 1 else 1.0 - share, len(answers)


def import_judgments(dataset: str, judgments: str, out: str) -> dict[str, Any]:
    """Write ``out``: ``dataset`` with ``label`` from the human votes (majority),
    ``label_source = "human"``, ``votes`` and ``agreement`` columns. Rows without a vote keep
    their previous label. Unknown example ids are an error (listing a few)."""
    votes = read_judgments(judgments)
    ds = storage.Dataset.open(dataset)
    known = set(ds.to_table(columns=["example_id"]).column("example_id").to_pylist())
    unknown = sorted(set(votes) - known)
    if unknown:
        raise LabelsError(
            f"{judgments}: {len(unknown)} example_id(s) not in {dataset}, e.g. {unknown[:3]}"
        )
    agg = {eid: aggregate(v) for eid, v in votes.items()}

    def update(table: pa.Table) -> pa.Table:
        ids = table.column("example_id").to_pylist()
        old_label = (
            table.column("label").to_pylist()
            if "label" in table.column_names
            else [None] * len(ids)
        )
        old_src = (
            table.column("label_source").to_pylist()
            if "label_source" in table.column_names
            else [None] * len(ids)
        )
        label: list[int | None] = []
        source: list[str | None] = []
        nvotes: list[int | None] = []
        agreement: list[float | None] = []
        for eid, ol, os_ in zip(ids, old_label, old_src, strict=True):
            if eid in agg:
                lab, agr, n = agg[eid]
                label.append(lab)
                source.append("human")
                nvotes.append(n)
                agreement.append(agr)
            else:
                label.append(ol)
                source.append(os_)
                nvotes.append(None)
                agreement.append(None)
        for name, values, typ in (
            ("label", label, pa.int64()),
            ("label_source", source, pa.string()),
            ("votes", nvotes, pa.int64()),
            ("agreement", agreement, pa.float64()),
        ):
            arr = pa.array(values, type=typ)
            if name in table.column_names:
                table = table.set_column(table.column_names.index(name), name, arr)
            else:
                table = table.append_column(name, arr)
        return table

    storage.derive_dataset(dataset, out, update, note=f"human labels imported from {judgments}")
    labelled = sum(1 for v in agg.values() if v[0] is not None)
    return {
        "recipe": ds.recipe,
        "path": out,
        "rows": ds.num_rows,
        "examples_voted": len(agg),
        "labelled": labelled,
        "ties": len(agg) - labelled,
        "votes": sum(len(v) for v in votes.values()),
    }


def load_aligned(paths: list[str], sample_rate: int) -> list[np.ndarray]:
    """Load recordings that belong together (a pair, a triplet) at ``sample_rate``, cut to
    the shortest and scaled together below full scale (resampling can overshoot it).
    Raises :class:`AudioError` naming the file that is unreadable, empty or silent."""
    clips = []
    for p in paths:
        x, _ = load(p, sample_rate)
        if x.size == 0:
            raise AudioError(f"{p}: no samples")
        if not np.any(x):
            raise AudioError(f"{p}: silent (every sample is zero)")
        clips.append(x)
    n = min(x.size for x in clips)
    clips = [x[:n] for x in clips]
    peak = max(float(np.max(np.abs(x))) for x in clips)
    return [x / peak if peak > 1.0 else x for x in clips]


def write_rows(
    out: str,
    recipe_name: str,
    rows: list[dict[str, Any]],
    *,
    sample_rate: int,
    spec: dict[str, Any],
    shard_size: int = 500,
    quarantine: list[dict[str, str]] | None = None,
    extra_columns: tuple[storage.Column, ...] = (),
) -> int:
    """Write rows that carry every column of ``recipe_name`` (``params`` as JSON text) and
    the ``extra_columns`` as shards of ``shard_size`` rows, then ``dataset.json`` with the
    quarantine list; returns the number of shards (an empty import still gets one empty
    shard)."""
    from pamflow.datasets.base import get_recipe

    schema = get_recipe(recipe_name).schema(None)  # imported rows: columns need no spec
    if extra_columns:
        schema = storage.Schema([*schema.columns, *extra_columns])
    starts = range(0, max(len(rows), 1), shard_size)
    for s, start in enumerate(starts):
        part = rows[start : start + shard_size]
        info = storage.write_shard(out, s, part, schema, sample_rate=sample_rate)
        if info.rows != len(part):  # never finalize a dataset that lost rows
            raise storage.StorageError(
                f"{out}: shard {s} holds {info.rows} of its {len(part)} imported rows"
            )
    storage.finalize_dataset(
        out,
        recipe=recipe_name,
        spec=spec,
        seed=0,
        num_shards=len(starts),
        extra={"quarantine": list(quarantine or [])},
    )
    return len(starts)


def read_dpam_list(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a published DPAM JND list: tab-separated ``ref_path``, ``test_path``,
    ``label`` (0 same, 1 different), optionally a 4th column with the noise type (leading
    spaces stripped)."""
    rows = []
    with open(path) as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.rstrip("\n").split("\t")]
            if len(parts) < 3:
                raise LabelsError(
                    f"{path}:{line_no}: expected ref_path<TAB>test_path<TAB>label, got {line.strip()!r}"
                )
            try:
                label = int(float(parts[2]))
            except ValueError:
                raise LabelsError(f"{path}:{line_no}: label {parts[2]!r} is not 0 or 1") from None
            if label not in (0, 1):
                raise LabelsError(f"{path}:{line_no}: label {label} is not 0 or 1")
            rows.append(
                {
                    "line": line_no,
                    "ref_path": parts[0],
                    "test_path": parts[1],
                    "label": label,
                    "noise_type": parts[3] if len(parts) > 3 and parts[3] else None,
                }
            )
    return rows


def import_dpam_list(
    list_path: str,
    out: str,
    *,
    audio_root: str | None = None,
    sample_rate: int = 22050,
    shard_size: int = 500,
) -> dict[str, Any]:
    """A JND dataset (recipe ``jnd``, ``label_source = "dpam-list"``) from a DPAM list.
    Pairs whose audio cannot be read are quarantined (listed in ``dataset.json`` with the
    reason) and the import goes on."""

    entries = read_dpam_list(list_path)
    root = Path(audio_root) if audio_root else Path(list_path).parent
    quarantine: list[dict[str, str]] = []
    rows: list[dict[str, Any]] = []
    for e in entries:
        try:
            ref, test = load_aligned(
                [str(root / e["ref_path"]), str(root / e["test_path"])], sample_rate
            )
        except AudioError as err:
            quarantine.append({"line": str(e["line"]), "reason": str(err)})
            continue
        i = len(rows)
        rows.append(
            {
                "index": i,
                "example_id": f"dpam-{e['line']:07d}",
                "seed": 0,
                "params": json.dumps(
                    {
                        "ref_path": e["ref_path"],
                        "test_path": e["test_path"],
                        "noise_type": e["noise_type"],
                    }
                ),
                "reference": ref,
                "perturbed": test,
                "strength": None,
                "axis": [e["noise_type"]] if e["noise_type"] else [],
                "label": e["label"],
                "label_source": "dpam-list",
                "listener": None,
                "distance": None,
                "source_id": e["ref_path"],
                "sequence": i,
                "query": 0,
            }
        )
    write_rows(
        out,
        "jnd",
        rows,
        sample_rate=sample_rate,
        shard_size=shard_size,
        spec={"imported_from": str(list_path), "sample_rate": sample_rate},
        quarantine=quarantine,
    )
    return {"recipe": "jnd", "path": out, "rows": len(rows), "quarantined": len(quarantine)}
