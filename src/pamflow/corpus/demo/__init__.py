"""The embedded demo corpus: made offline, deterministically, in the user's cache folder.

- :mod:`~pamflow.corpus.demo.corpus`: :func:`make_demo_corpus` writes and indexes it.
- :mod:`~pamflow.corpus.demo.speech`: espeak-ng speech (Harvard sentences, 8 speakers).
- :mod:`~pamflow.corpus.demo.synth`: noises, music, instruments, room impulse responses.

:func:`ensure_demo_corpus` returns its folder (``$PAMFLOW_DEMO_CORPUS``, or under
``$PAMFLOW_CACHE`` / ``~/.cache/pamflow``), making it first if needed; safe across processes.
"""

from __future__ import annotations

import os
from pathlib import Path

#: the version of the demo corpus recipe; bump when its content changes
DEMO_CORPUS_VERSION = "1"


def cache_dir() -> Path:
    return Path(os.environ.get("PAMFLOW_CACHE", Path.home() / ".cache" / "pamflow"))


def demo_corpus_dir(seed: int = 0) -> Path:
    """Where the demo corpus of ``seed`` lives (``$PAMFLOW_DEMO_CORPUS`` overrides)."""
    env = os.environ.get("PAMFLOW_DEMO_CORPUS")
    if env:
        return Path(env)
    return cache_dir() / f"demo-corpus-v{DEMO_CORPUS_VERSION}-seed{seed}"


def ensure_demo_corpus(seed: int = 0) -> Path:
    """The demo corpus folder, made first if it is not there (safe across processes)."""
    from filelock import FileLock

    from pamflow.corpus.demo.corpus import make_demo_corpus
    from pamflow.corpus.index import MANIFEST_NAME

    root = demo_corpus_dir(seed)
    if (root / MANIFEST_NAME).exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root) + ".lock"):
        if not (root / MANIFEST_NAME).exists():
            make_demo_corpus(root, seed=seed)
    return root


__all__ = ["DEMO_CORPUS_VERSION", "cache_dir", "demo_corpus_dir", "ensure_demo_corpus"]
