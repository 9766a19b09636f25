"""Render ``docs/formats.md``: the files the ``pamflow`` command reads besides datasets,
specs and training configs, and the rule for paths on a cluster.

``python -m pamflow.cli.formats > docs/formats.md`` regenerates the page; a test fails when
the page and the code disagree. What the code holds as data is read from it (the answers a
judgments CSV may give and its field limit, the columns of a triplet list, the columns an
import writes, defaults, where each reader lives); the rest is text here, next to it, so the
page stays one generated file. It lives in the CLI package because it describes readers of
several layers (datasets, models, flows), which only this layer may import.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Mapping
from typing import Any

COMMAND = "python -m pamflow.cli.formats > docs/formats.md"

#: what an import of a DPAM list writes in each column of a ``jnd`` row
DPAM_ROW = {
    "index": "the row's position",
    "example_id": "`dpam-` and the list's line number in 7 digits (`dpam-0000012`)",
    "seed": "0",
    "params": "JSON: `ref_path`, `test_path`, `noise_type`",
    "reference": "the audio of `ref_path`",
    "perturbed": "the audio of `test_path`",
    "strength": "null",
    "axis": "`[noise type]`, or `[]` without one",
    "label": "the list's label",
    "label_source": "`dpam-list`",
    "listener": "null",
    "distance": "null",
    "source_id": "`ref_path` (the held-out split keeps a reference's pairs together)",
    "sequence": "the row's position",
    "query": "0",
}
#: what an import of a triplet list writes in each column of a ``triplet`` row
TRIPLET_ROW = {
    "index": "the row's position",
    "example_id": "`triplet-` and the list's line number in 7 digits",
    "seed": "0",
    "params": "JSON: `ref`, `s1`, `s2`, `line`",
    "reference": "the audio of `ref`",
    "a": "the audio of `s1`",
    "b": "the audio of `s2`",
    "strength_a": "null",
    "strength_b": "null",
    "axis_a": "`[]`",
    "axis_b": "`[]`",
    "label": "the list's label (0: A closer, 1: B closer)",
    "label_source": "`triplet-list`",
    "agreement": "the list's agreement, or null",
    "votes": "the list's votes, or null",
    "distance_a": "null",
    "distance_b": "null",
    "source_id": "`ref`",
    "mode": "null",
}


def _where(fn: Callable[..., Any]) -> str:
    return f"`{fn.__module__.replace('.', '/')}.py` `{fn.__name__}`"


def _default(fn: Callable[..., Any], name: str) -> Any:
    return inspect.signature(fn).parameters[name].default


def _columns_table(recipe: str, values: Mapping[str, str]) -> str:
    from pamflow.datasets import get_recipe

    out = ["| column | type | value |\n|---|---|---|\n"]
    for col in get_recipe(recipe).schema(None).columns:
        out.append(f"| `{col.name}` | `{col.kind}` | {values[col.name]} |\n")
    return "".join(out)


def _index() -> str:
    from pamflow.datasets.importers import read_dpam_list, read_judgments
    from pamflow.datasets.triplet import read_triplet_list
    from pamflow.models.evaluate import mos_metrics

    return f"""\
# Input formats

Generated from the code by `python -m pamflow.cli.formats`; do not edit by hand.

The files pamflow reads besides its own datasets, specs ([specs.md](specs.md)) and
training configs ([training.md](training.md)), and the rule every path of a cluster run
follows. The importers read the whole file before they write anything, and refuse a bad
one with one line naming the file (and the line at fault, when one is).

| file | read by | code |
|---|---|---|
| [judgments CSV](#judgments-csv) | `pamflow labels import DATASET JUDGMENTS --out NEW` | {_where(read_judgments)} |
| [MOS CSV](#mos-csv) | `pamflow eval CHECKPOINT --mos MOS.csv` | {_where(mos_metrics)} |
| [DPAM JND list](#dpam-jnd-list) | `pamflow labels import-dpam LIST --out NEW` | {_where(read_dpam_list)} |
| [triplet list](#triplet-list) | `import_triplet_list(LIST, NEW)` (Python only) | {_where(read_triplet_list)} |
"""


def _judgments() -> str:
    from pamflow.datasets.base import example_id
    from pamflow.datasets.importers import _ANSWERS, MAX_FIELD

    words = {label: [w for w, v in _ANSWERS.items() if v == label] for label in (1, 0)}
    answers = "".join(
        f"| {label} ({meaning}) | {', '.join(f'`{w}`' for w in words[label])} |\n"
        for label, meaning in ((1, "different"), (0, "same"))
    )
    eid = example_id("jnd", 0, 12)
    return f"""
## Judgments CSV

`pamflow labels import DATASET JUDGMENTS --out NEW` writes `NEW`: `DATASET` with the
listeners' majority as its `label`. `DATASET` is left as it is; `NEW` must be a new or
empty folder, and its `dataset.json` records where it came from (`derived_from`: the
source's path and shard checksums, and the note `human labels imported from JUDGMENTS`).

The file is UTF-8 text (a byte-order mark is allowed), comma-separated, with a header row
naming the three columns below exactly (lower case, no spaces around the names). Their
order is free and other columns are ignored. Each field is trimmed of surrounding spaces.

| column | holds |
|---|---|
| `example_id` | the `example_id` of a row of `DATASET`: `RECIPE-sSEED-INDEX`, e.g. `{eid}` is row 12 of a jnd dataset of seed 0 |
| `listener` | any name or id of the listener |
| `answer` | one of the answers below, in any case |

| label | answers |
|---|---|
{answers}
One vote per (example, listener): a listener who answers an example again replaces their
earlier answer (the last row counts). Each example with votes gets

- `label`: the majority answer; null on a tie (as many 1s as 0s);
- `label_source`: `human`;
- `votes`: how many listeners answered it;
- `agreement`: the majority's share of them (0.5 on a tie).

Rows without votes keep their `label` and `label_source` and get null `votes` and
`agreement`; a column the dataset lacks is added. The command prints the rows, the examples
voted on, how many got a label, the ties and the votes.

Refused, before anything is written, naming the file and, for a bad row, the row (the
header is row 1; blank lines are skipped and not counted):

- a header without `example_id`, `listener` or `answer`;
- an empty field (also what a row with fewer fields than the header has);
- a field longer than {MAX_FIELD} characters;
- a field holding control characters (a tab, a NUL...);
- an answer that is not in the table above;
- text that is not UTF-8, or a row Python's `csv` module cannot read;
- `example_id`s that `DATASET` does not have (the count and the first three).

```csv
example_id,listener,answer
{example_id("jnd", 0, 0)},alice,different
{example_id("jnd", 0, 0)},bob,same
{example_id("jnd", 0, 1)},alice,1
```
"""


def _mos() -> str:
    return """
## MOS CSV

`pamflow eval CHECKPOINT --mos MOS.csv` (with or without `--data`) scores a model against
mean opinion scores. The result `mos` holds `n` (the pairs), and `spearman` and `pearson`:
the correlations of the *negated* distance `-model.distance(test, reference)` with the MOS,
so that higher is better for every metric.

- Comma-separated UTF-8 text (a byte-order mark is allowed).
- Each row: reference path, test path, MOS (a number): the first three fields; further
  fields are ignored. Rows that are empty or hold only spaces are skipped.
- The header is optional: when the first row's third field is not a number, that row is a
  header and skipped.
- Paths are trimmed; a relative path is taken from the CSV's folder, an absolute one as it
  is (local files: a URL is not read here).
- The audio can be any format pamflow decodes (libsndfile, else ffmpeg); it is mixed to
  mono and resampled to the model's sample rate, and the two files of a row are cut to the
  shorter one.
- A row with fewer than three fields (the header included), a MOS that is not a number
  and a file without rows are refused in one line naming the file and the line (physical
  lines, from 1). An audio file that cannot be read stops the evaluation too, naming it.

```csv
reference,test,mos
clean/p232_001.wav,enhanced/p232_001.wav,3.8
clean/p232_001.wav,noisy/p232_001.wav,1.9
```
"""


def _dpam() -> str:
    from pamflow.cli.parser import build_parser
    from pamflow.datasets.importers import import_dpam_list

    args = build_parser().parse_args(["labels", "import-dpam", "LIST", "--out", "NEW"])
    shard = _default(import_dpam_list, "shard_size")
    return f"""
## DPAM JND list

`pamflow labels import-dpam LIST --out NEW [--audio-root DIR] [--sample-rate HZ]` makes a
`jnd` dataset (shards of {shard} rows) from a published DPAM list such as its
`dataset_combined.txt`, or any list of that form.

- Text, one pair a line, tab-separated: `ref_path`, `test_path`, `label`, and optionally a
  fourth field, the noise type. Fields are trimmed (the published list has leading
  spaces), fields after the fourth ignored, blank lines skipped. No header (a header line
  is refused: its label is not a number).
- `label`: a number, truncated to an integer that must be 0 (same) or 1 (different), so
  `1.0` is 1.
- Paths are taken from `--audio-root` (default: the list's folder); an absolute path is
  used as it is. They are local files.
- Each pair is loaded at `--sample-rate` (default {args.sample_rate} Hz, DPAM's rate), mono,
  cut to the shorter file, and both scaled by one factor to full scale when resampling
  pushes a peak above it.
- A pair whose audio cannot be read, or is empty or silent, is quarantined:
  `dataset.json` lists its line and the reason, and the import goes on.
- Refused, naming the file and the line: a line of fewer than three fields; a label that is
  not a number, or not 0 or 1.

What each row holds:

{_columns_table("jnd", DPAM_ROW)}"""


def _triplet() -> str:
    from pamflow.datasets.triplet import _LIST_FIELDS, import_triplet_list

    fields = ", ".join(f"`{f}`" for f in _LIST_FIELDS)
    rate = _default(import_triplet_list, "sample_rate")
    shard = _default(import_triplet_list, "shard_size")
    return f"""
## Triplet list

`pamflow.datasets.triplet.import_triplet_list(LIST, NEW, audio_root=None, sample_rate={rate})`
(no command yet) makes a `triplet` dataset (shards of {shard} rows) from a published list of
2AFC judgments.

- Text, one triplet a line, tab-separated, in the order
  {fields}: the last two are optional. Fields are trimmed, blank lines skipped.
- A first line naming the columns (it holds `ref` and `label`, in any case) is a header:
  it may order them otherwise and must name `ref`, `s1`, `s2` and `label`; fields under
  other names are ignored.
- `label`: 0 when `s1` is closer to `ref`, 1 when `s2` is; exactly 0 or 1 as a number
  (`1.0` is 1). `votes`: a whole count, at least 1. `agreement`: the majority's share of
  the votes, from 0.5 to 1. An empty or absent `votes` or `agreement` is null.
- Paths are taken from `audio_root` (default: the list's folder), as for the DPAM list;
  the three files of a triplet are loaded at `sample_rate`, cut to the shortest and scaled
  together in the same way. A triplet whose audio cannot be read is quarantined (its
  line, files and the reason in `dataset.json`).
- Refused, naming the file and the line: an empty `ref`, `s1`, `s2` or `label`; a field
  that is not a number where one is due; a label, count or share out of its range; a
  header without one of the four columns.

What each row holds:

{_columns_table("triplet", TRIPLET_ROW)}"""


def _paths() -> str:
    from pamflow.flows import settings

    path_settings = ", ".join(
        f"`{s.env}` ({s.meaning})" for s in settings.ALL if s.env.endswith("_DIR")
    )
    return f"""
## Paths on a cluster

A build or a training hands its tasks paths, never data: each worker opens the paths
itself, on its own machine. So every path a cluster run uses follows one rule: **it names
the same storage on every machine.**

- Use a shared filesystem mounted at the same place everywhere, or an fsspec URL every
  worker can reach (`s3://...`, `gs://...`, with its fsspec package installed wherever
  pamflow runs).
- Local paths are made absolute against the working folder of the command before any
  task is submitted or event emitted: `pamflow build --out data/x` builds into
  `$PWD/data/x` on every worker. A URL (anything holding `://`) is kept as it is. This
  holds for `pamflow build --out` and `pamflow train --data` and `--out` (which also
  expand `~`), the dataset path of the event that triggers retraining, and the
  `manifests` of a spec (a relative manifest path is taken from the current folder and
  stored absolute).
- The recordings a manifest lists must be visible to the workers too: `pamflow index`
  writes absolute local paths or URLs (a manifest written with relative paths, from the
  Python API, resolves them against its own folder).
- A cluster build (`--cluster`, or a deployment with `on_cluster: true`) first asks a
  worker whether it sees the build marker (`build.json`) that the flow has just written in
  the output folder, and stops before any shard is made when it does not ("the cluster's
  workers cannot see the output folder"). A folder only this machine has fails that check, and so does a `memory://` URL: that filesystem is the memory of one
  process, for tests and the Python API within one process, and is gone when the process
  exits.
- A training has no such check: its datasets and run folder must be visible to the
  workers that train (the GPU workers) and to the process running the flow, which reads
  each dataset's `dataset.json` to group them by recipe.
- The settings that hold paths, {path_settings}, are read where the flow runs, and follow
  the same rule.
"""


def render() -> str:
    return "".join([_index(), _judgments(), _mos(), _dpam(), _triplet(), _paths()])


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write(render())
