"""The triplet recipe (CDPAM section 3.2, DPAM 2AFC): a reference and two perturbed versions
A and B, labelled with which of them is closer to the reference.

Each row starts like a JND question: a speech clip, mildly degraded along a random axis at
``U(0, reference_strength)``, is the reference; A and B are the reference perturbed by two
chains (:class:`pamflow.perturbations.Chain`). ``mode`` picks the chains:

- ``along``: one random axis (at most one family per category, DPAM section 3.1). As in
  the published triplet set, the path along it is cut into ``path_points`` points (64)
  evenly spaced over the strength range, and A and B are two different points picked at
  random (which one is the stronger is random too). At strength ``rho`` family ``k`` runs
  at ``rho * weight_k``, so every dimension moves the same way: the stronger chain is
  "more" than the weaker one on every family. Both chains share the axis's noise
  recordings, offsets and seeds; only the strengths differ. (The published paths started
  at a random point per dimension; here they start at ``low * weights``.)
- ``across``: two axes on disjoint sets of categories (A might be noise + MP3, B reverb),
  each at a strength drawn uniformly in the range. Needs families of two categories.

Labels (``labels``): ``simulated`` asks ``n_voters`` listeners of a simulated panel
(:class:`pamflow.datasets.listener.ListenerPanel`) "is A or B closer to the reference?".
Listener ``j`` measures ``d_a = perceptual_distance(reference, a)`` and ``d_b`` likewise
(dB, pooled with ``listener_pool_power``) and answers B (1) with probability
:func:`p_b_closer` ``= lapse/2 + (1 - lapse) * Phi((d_a - d_b) / slope)``, by comparing
a recorded uniform draw ``u_j`` with it (``u_j < p``). ``label`` is the majority (0: A
closer, 1: B closer; null on a tie), ``agreement`` the majority's share of the votes,
``votes`` their number. ``none`` leaves the labels null, for a human test.

:func:`import_triplet_list` turns a published triplet list (``ref``, ``s1``, ``s2``,
``label``) into a dataset of this recipe, with the generic import helpers
:func:`pamflow.datasets.importers.load_aligned` and :func:`pamflow.datasets.importers.write_rows`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator
from scipy.special import ndtr

from pamflow.audio import AudioError
from pamflow.corpus.sources import Sources
from pamflow.datasets.base import Recipe, clip_at, cut_clip, long_enough
from pamflow.datasets.importers import LabelsError, load_aligned, write_rows
from pamflow.datasets.listener import SimulatedListener, perceptual_distance
from pamflow.datasets.spec import ListenerSpec
from pamflow.perturbations import Axis, Chain, get, sample_axis

_PANEL_KEY = 0x7219
_LISTENER_FIELDS = ("threshold", "slope", "lapse", "seed")
#: tries at drawing axis A with a category left over for axis B (``across``)
_ACROSS_TRIES = 32


class TripletSpec(ListenerSpec):
    mode: Literal["along", "across"] = Field(
        "along", description="along: A and B on one axis; across: on axes of different categories"
    )
    path_points: int = Field(
        64, ge=2, le=10000, description="along: points on the path that A and B are picked from"
    )
    n_voters: int = Field(9, ge=1, le=1000, description="simulated listeners asked per triplet")

    @model_validator(mode="after")
    def _mode_fits(self) -> TripletSpec:
        if self.mode == "along" and not self.strength.low < self.strength.high:
            raise ValueError(
                f"strength: along needs low < high to place two different points, "
                f"got low={self.strength.low}, high={self.strength.high}"
            )
        if self.mode == "across" and len({get(f).category for f in self.families}) < 2:
            raise ValueError(
                f"families: across needs families of at least two categories, got {self.families}"
            )
        return self


def panel(spec: TripletSpec) -> tuple[SimulatedListener, ...]:
    """The simulated panel of a triplet dataset (fixed by the spec alone)."""
    return spec.panel(_PANEL_KEY)


def p_b_closer(listener: SimulatedListener | dict[str, Any], d_a: float, d_b: float) -> float:
    """Probability that ``listener`` (or its recorded dict, extra keys ignored) answers
    "B is closer" to a triplet whose A and B lie ``d_a`` and ``d_b`` dB from the reference."""
    if isinstance(listener, dict):
        listener = SimulatedListener.from_dict({k: listener[k] for k in _LISTENER_FIELDS})
    z = (d_a - d_b) / listener.slope
    return float(listener.lapse / 2 + (1 - listener.lapse) * ndtr(z))


def majority(votes: list[int]) -> tuple[int | None, float]:
    """Majority label of 0/1 votes (None on a tie) and the share of votes agreeing with it."""
    share_b = float(np.mean(votes))
    if share_b == 0.5:
        return None, 0.5
    return int(share_b > 0.5), max(share_b, 1.0 - share_b)


def _across_axes(rng: np.random.Generator, families: list[str]) -> tuple[Axis, Axis]:
    """Axis A, then axis B on the categories A left free."""
    cats = {f: get(f).category for f in families}
    for _ in range(_ACROSS_TRIES):
        axis_a = sample_axis(rng, families)
        if len({cats[f] for f in axis_a.families}) < len(set(cats.values())):
            break
    else:  # vanishingly rare: A switched every category on each time; keep its first family
        axis_a = Axis(axis_a.families[:1], (1.0,), axis_a.seed)
    used = {cats[f] for f in axis_a.families}
    return axis_a, sample_axis(rng, [f for f in families if cats[f] not in used])


class TripletRecipe(Recipe[TripletSpec]):
    name = "triplet"
    Spec = TripletSpec
    needs = {"speech": "manifests"}
    audio_columns = ("reference", "a", "b")
    label_columns = ("label",)
    count_columns = ("label", "label_source")
    histogram_columns = {
        "strength_a": "strength ρ of A",
        "strength_b": "strength ρ of B",
    }
    split_key = "source_id"
    tiny_spec = {"families": ["white_noise", "eq", "mulaw"], "n_voters": 3}
    evaluated_on = ("reference", "a", "b")
    description = "2AFC triplets: reference, A, B and which of A/B is closer to the reference"

    def columns(self, spec: TripletSpec | None) -> list[tuple[str, str, bool]]:
        return [
            ("reference", "audio", False),
            ("a", "audio", False),
            ("b", "audio", False),
            ("strength_a", "float64", True),  # null for imported triplets
            ("strength_b", "float64", True),
            ("axis_a", "list<string>", False),
            ("axis_b", "list<string>", False),
            ("label", "int64", True),  # 0: A closer, 1: B closer
            ("label_source", "string", True),
            ("agreement", "float64", True),
            ("votes", "int64", True),
            ("distance_a", "float64", True),  # the simulated listeners' distances, dB
            ("distance_b", "float64", True),
            ("source_id", "string", False),
            ("mode", "string", True),
        ]

    def make_example(
        self, spec: TripletSpec, sources: Sources, index: int, rng: np.random.Generator
    ) -> dict[str, Any]:
        sr = spec.sample_rate
        speech = long_enough(sources, "speech", spec.clip_seconds)
        source_id = speech[int(rng.integers(len(speech)))]
        clean, offset = cut_clip(sources, source_id, sr, spec.clip_samples, rng)
        ref_chain = sample_axis(rng, spec.families).chain(
            float(rng.uniform(0.0, spec.reference_strength)), sources
        )
        reference = ref_chain.apply(clean, sr, sources)
        lo, hi = spec.strength.low, spec.strength.high
        extra: dict[str, Any] = {}
        if spec.mode == "along":
            axis_a = axis_b = sample_axis(rng, spec.families)
            points = np.linspace(lo, hi, spec.path_points)
            i_a, i_b = (int(k) for k in rng.choice(spec.path_points, size=2, replace=False))
            rho_a, rho_b = float(points[i_a]), float(points[i_b])
            extra["path"] = {"points": spec.path_points, "index_a": i_a, "index_b": i_b}
        else:
            axis_a, axis_b = _across_axes(rng, spec.families)
            rho_a, rho_b = float(rng.uniform(lo, hi)), float(rng.uniform(lo, hi))
        chain_a, chain_b = axis_a.chain(rho_a, sources), axis_b.chain(rho_b, sources)
        a, b = chain_a.apply(reference, sr, sources), chain_b.apply(reference, sr, sources)
        row: dict[str, Any] = {
            "label": None,
            "label_source": None,
            "agreement": None,
            "votes": None,
            "distance_a": None,
            "distance_b": None,
        }
        if spec.labels == "simulated":
            pool = spec.listener_pool_power
            d_a = perceptual_distance(reference, a, sr, pool_power=pool)
            d_b = perceptual_distance(reference, b, sr, pool_power=pool)
            members = panel(spec)
            picks = rng.choice(
                spec.listeners, size=spec.n_voters, replace=spec.n_voters > spec.listeners
            )
            draws = rng.random(spec.n_voters)
            voters = []
            for k, u in zip(picks, draws, strict=True):
                lst = members[int(k)]
                vote = int(u < p_b_closer(lst, d_a, d_b))
                voters.append({"listener": int(k), **lst.to_dict(), "u": float(u), "vote": vote})
            label, agreement = majority([v["vote"] for v in voters])
            row.update(
                label=label,
                label_source="simulated",
                agreement=agreement,
                votes=spec.n_voters,
                distance_a=d_a,
                distance_b=d_b,
            )
            extra["voters"] = voters
        row.update(
            {
                "reference": reference,
                "a": a,
                "b": b,
                "strength_a": rho_a,
                "strength_b": rho_b,
                "axis_a": list(axis_a.families),
                "axis_b": list(axis_b.families),
                "source_id": source_id,
                "mode": spec.mode,
                "params": {
                    "clip": {"source_id": source_id, "offset_s": offset},
                    "reference_chain": ref_chain.to_list(),
                    "axis_a": axis_a.to_dict(),
                    "axis_b": axis_b.to_dict(),
                    "chain_a": chain_a.to_list(),
                    "chain_b": chain_b.to_list(),
                    **extra,
                },
            }
        )
        return row

    def summary(self, table: Any) -> dict[str, Any]:
        labels = [v for v in table.column("label").to_pylist() if v is not None]
        agreement = [v for v in table.column("agreement").to_pylist() if v is not None]
        modes = table.column("mode").to_pylist()
        out: dict[str, Any] = {
            "rows": table.num_rows,
            "labelled": len(labels),
            "a_closer": labels.count(0),
            "b_closer": labels.count(1),
            "modes": {m: modes.count(m) for m in sorted({str(m) for m in modes})},
        }
        if agreement:
            out["mean_agreement"] = float(np.mean(agreement))
            out["share_agreement_70"] = float(np.mean(np.asarray(agreement) >= 0.7))
        # along: how often the weaker point on the path was judged closer
        consistent = [
            lab == int(sb < sa)
            for lab, sa, sb, m in zip(
                table.column("label").to_pylist(),
                table.column("strength_a").to_pylist(),
                table.column("strength_b").to_pylist(),
                modes,
                strict=True,
            )
            if m == "along" and lab is not None and sa is not None and sb is not None
        ]
        if consistent:
            out["along_weaker_closer"] = float(np.mean(consistent))
        return out

    def rebuild(self, row: dict[str, Any], spec: TripletSpec, sources: Sources) -> Any:
        return replay(row, spec, sources)


def replay(
    row: dict[str, Any], spec: TripletSpec, sources: Sources | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rebuild ``(reference, a, b)`` of a built row from its params alone."""
    srcs = spec.sources() if sources is None else sources
    p = row["params"] if isinstance(row["params"], dict) else json.loads(row["params"])
    sr = spec.sample_rate
    clean = clip_at(srcs, p["clip"]["source_id"], sr, spec.clip_samples, p["clip"]["offset_s"])
    reference = Chain.from_list(p["reference_chain"]).apply(clean, sr, srcs)
    a = Chain.from_list(p["chain_a"]).apply(reference, sr, srcs)
    b = Chain.from_list(p["chain_b"]).apply(reference, sr, srcs)
    return reference, a, b


# -- importing a published triplet list ---------------------------------------------------

_LIST_FIELDS = ("ref", "s1", "s2", "label", "votes", "agreement")


def read_triplet_list(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a triplet list: tab-separated ``ref``, ``s1``, ``s2``, ``label`` (0: s1
    closer, 1: s2 closer), then optionally ``votes`` (count) and ``agreement`` (the
    majority's share, 0.5..1). A first line naming the columns (``ref s1 s2 label ...``)
    is a header and may order them otherwise. Blank lines are skipped."""
    rows: list[dict[str, Any]] = []
    order: list[str] = list(_LIST_FIELDS)
    with open(path) as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.rstrip("\n").split("\t")]
            if not rows and line_no == 1 and {"ref", "label"} <= {p.lower() for p in parts}:
                order = [p.lower() for p in parts]
                missing = {"ref", "s1", "s2", "label"} - set(order)
                if missing:
                    raise LabelsError(f"{path}:1: header lacks column(s) {sorted(missing)}")
                continue
            rec = dict(zip(order, parts, strict=False))
            if not all(rec.get(k) for k in ("ref", "s1", "s2", "label")):
                raise LabelsError(
                    f"{path}:{line_no}: expected ref<TAB>s1<TAB>s2<TAB>label, got {line.strip()!r}"
                )
            try:
                label = int(float(rec["label"]))
                votes = int(rec["votes"]) if rec.get("votes") else None
                agreement = float(rec["agreement"]) if rec.get("agreement") else None
            except ValueError as e:
                raise LabelsError(f"{path}:{line_no}: not a number: {e}") from None
            if label not in (0, 1) or label != float(rec["label"]):
                raise LabelsError(f"{path}:{line_no}: label {rec['label']!r} is not 0 or 1")
            if votes is not None and votes < 1:
                raise LabelsError(f"{path}:{line_no}: votes {votes} is not a count >= 1")
            if agreement is not None and not 0.5 <= agreement <= 1.0:
                raise LabelsError(f"{path}:{line_no}: agreement {agreement} is not in [0.5, 1]")
            rows.append(
                {
                    "line": line_no,
                    "ref": rec["ref"],
                    "s1": rec["s1"],
                    "s2": rec["s2"],
                    "label": label,
                    "votes": votes,
                    "agreement": agreement,
                }
            )
    return rows


def import_triplet_list(
    list_path: str,
    out: str,
    *,
    audio_root: str | None = None,
    sample_rate: int = 22050,
    shard_size: int = 500,
) -> dict[str, Any]:
    """A triplet dataset (``label_source = "triplet-list"``) from a published list (see
    :func:`read_triplet_list`); paths are relative to ``audio_root`` (default: the list's
    folder). Triplets whose audio cannot be read are quarantined (line, files and reason
    in ``dataset.json``) and the import goes on. ``agreement``/``votes`` are null where
    the list has no such column."""
    entries = read_triplet_list(list_path)
    root = Path(audio_root) if audio_root else Path(list_path).parent
    quarantine: list[dict[str, str]] = []
    rows: list[dict[str, Any]] = []
    for e in entries:
        try:
            ref, a, b = load_aligned([str(root / e[k]) for k in ("ref", "s1", "s2")], sample_rate)
        except AudioError as err:
            quarantine.append(
                {
                    "line": str(e["line"]),
                    "files": f"{e['ref']}, {e['s1']}, {e['s2']}",
                    "reason": str(err),
                }
            )
            continue
        rows.append(
            {
                "index": len(rows),
                "example_id": f"triplet-{e['line']:07d}",
                "seed": 0,
                "params": json.dumps(
                    {"ref": e["ref"], "s1": e["s1"], "s2": e["s2"], "line": e["line"]}
                ),
                "reference": ref,
                "a": a,
                "b": b,
                "strength_a": None,
                "strength_b": None,
                "axis_a": [],
                "axis_b": [],
                "label": e["label"],
                "label_source": "triplet-list",
                "agreement": e["agreement"],
                "votes": e["votes"],
                "distance_a": None,
                "distance_b": None,
                "source_id": e["ref"],
                "mode": None,
            }
        )
    spec = {"imported_from": str(list_path), "sample_rate": sample_rate}
    write_rows(
        out,
        "triplet",
        rows,
        sample_rate=sample_rate,
        spec=spec,
        shard_size=shard_size,
        quarantine=quarantine,
    )
    return {"recipe": "triplet", "path": out, "rows": len(rows), "quarantined": len(quarantine)}
