"""Recordings: indexing folders into manifests, the sources recipes draw from, the demo corpus.

- :mod:`~pamflow.corpus.index`: :func:`index_corpus` (one bad file is quarantined with a
  reason, never stops the index), :func:`write_index`.
- :mod:`~pamflow.corpus.sources`: :class:`Sources`, recordings of a manifest loaded on demand.
- :mod:`~pamflow.corpus.demo`: the embedded demo corpus (``Sources.demo()``).
"""

from pamflow.corpus.demo import ensure_demo_corpus
from pamflow.corpus.demo.corpus import make_demo_corpus
from pamflow.corpus.index import (
    MANIFEST_NAME,
    MANIFEST_SCHEMA,
    QUARANTINE_SCHEMA,
    IndexResult,
    index_corpus,
    inspect_audio,
    quarantine_path,
    write_index,
)
from pamflow.corpus.sources import Sources, SourcesError, default_sources

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_SCHEMA",
    "QUARANTINE_SCHEMA",
    "IndexResult",
    "Sources",
    "SourcesError",
    "default_sources",
    "ensure_demo_corpus",
    "index_corpus",
    "inspect_audio",
    "make_demo_corpus",
    "quarantine_path",
    "write_index",
]
