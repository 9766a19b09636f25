"""What every ``pamflow`` subcommand shares: the consoles (results on stdout, progress and
errors on stderr), the registry :data:`COMMANDS` filled by :func:`command`, and the check
that a folder holds a finished dataset (one line saying what it holds instead)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from rich.console import Console

console = Console(stderr=False)
err = Console(stderr=True, soft_wrap=True)  # an error stays on one line

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(
    name: str,
) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def deco(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn

    return deco


def check_dataset(path: str) -> None:
    """One line, before reading, for a path that holds no finished dataset: nothing there,
    a file, or a folder without dataset.json (an unfinished build there, or none)."""
    import json

    from pamflow.pipeline.build import BUILD_FILE
    from pamflow.storage import list_shards
    from pamflow.storage.dataset import DATASET_JSON
    from pamflow.storage.files import abandoned_tmp, is_tmp_name, join, resolve
    from pamflow.storage.shards import SHARDS_DIR

    fs, root = resolve(path)
    if not fs.exists(root):
        raise FileNotFoundError(f"{path}: no such dataset folder")
    if not fs.isdir(root):
        raise ValueError(f"{path} is a file, not a dataset folder")
    if fs.exists(join(root, DATASET_JSON)):
        return
    missing = f"{path}/{DATASET_JSON}: not found"
    marker = join(root, BUILD_FILE)
    if not fs.exists(marker):
        raise FileNotFoundError(f"{missing}: {path} holds no pamflow dataset, and no build")
    from pamflow.datasets import get_recipe
    from pamflow.pipeline.build import plan_shards

    try:
        with fs.open(marker, "r") as f:
            claim = json.load(f)
        recipe = str(claim["recipe"])
        total = str(len(plan_shards(get_recipe(recipe).parse(claim["spec"]))))
    except Exception:  # a damaged claim: still an unfinished build
        recipe, total = "pamflow", "?"
    written = f"{len(list_shards(path))} of {total} shards written"
    shards_dir = join(root, SHARDS_DIR)
    names = fs.ls(shards_dir, detail=False) if fs.exists(shards_dir) else []
    tmp = [n.rstrip("/").rpartition("/")[2] for n in names]
    if any(is_tmp_name(n) and not abandoned_tmp(n) for n in tmp):
        raise FileNotFoundError(
            f"{missing}: a {recipe} build is in progress there ({written} so far); "
            "inspect it when the build has finished"
        )
    raise FileNotFoundError(
        f"{missing}: the {recipe} build there is unfinished ({written}): still "
        "running, or stopped; run the same `pamflow build` command to finish it"
    )
