"""What every recipe shares: the registry, per-example seeds, clip cutting.

A recipe turns a validated spec into rows. Row ``i`` depends only on ``(spec, i)``: its
generator is seeded from ``(spec.seed, i)`` (or, for recipes whose examples come in
groups such as a listener's staircase, from ``(spec.seed, group)`` with the group fixed
by ``i`` alone), so the rows are the same whatever the number of workers or the shard
size.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from pamflow.corpus.sources import BadSource, Sources
from pamflow.datasets.spec import BaseSpec, SpecError, parse_spec
from pamflow.seeding import example_seed
from pamflow.storage.schema import Column, Schema

_RECIPES: dict[str, Recipe[Any]] = {}
T = TypeVar("T")


def example_id(recipe: str, spec_seed: int, index: int) -> str:
    return f"{recipe}-s{spec_seed}-{index:09d}"


def cut_clip(
    sources: Sources, source_id: str, sample_rate: int, num_samples: int, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """A clip of ``num_samples`` from ``source_id`` at a random offset (zero-padded if the
    recording is shorter); returns ``(clip, offset_seconds)``."""
    audio = sources.load(source_id, sample_rate)
    span = audio.size - num_samples
    start = int(rng.integers(0, span + 1)) if span > 0 else 0
    clip = audio[start : start + num_samples]
    if clip.size < num_samples:
        clip = np.pad(clip, (0, num_samples - clip.size))
    return np.array(clip, dtype=np.float32), start / sample_rate


def clip_at(
    sources: Sources, source_id: str, sample_rate: int, num_samples: int, offset_s: float
) -> np.ndarray:
    """The clip :func:`cut_clip` returned, rebuilt from its recorded offset."""
    audio = sources.load(source_id, sample_rate)
    start = int(round(offset_s * sample_rate))
    clip = audio[start : start + num_samples]
    return np.pad(clip, (0, num_samples - clip.size)).astype(np.float32)


def made_together(spec: BaseSpec, tasks: Sequence[Callable[[], T]]) -> Iterator[T]:
    """What ``tasks`` make (rows, or groups of rows), in order: one after another as they
    are asked for, or, where the spec's Griffin-Lim rows are batched on this worker
    (:attr:`~pamflow.datasets.spec.PerturbedSpec.batched_griffin_lim`), all at once in
    lockstep (:mod:`pamflow.perturbations.lockstep`), their new Griffin-Lim params recording
    the torch engine."""
    engine = getattr(spec, "batched_griffin_lim", None)
    if engine is None:
        yield from (task() for task in tasks)
        return
    from pamflow.perturbations.griffin_lim import sample_engine
    from pamflow.perturbations.lockstep import lockstep

    with sample_engine(engine):
        made = lockstep(tasks)
    yield from made


def long_enough(sources: Sources, kind: str, seconds: float) -> list[str]:
    """Ids of ``kind`` at least ``seconds`` long (all of them if none is)."""
    ids = sources.ids(kind)
    ok = [i for i in ids if float(sources.entry(i)["duration_s"]) >= seconds]
    return ok or ids


#: the spec model of a recipe
S = TypeVar("S", bound=BaseSpec)


class Recipe(ABC, Generic[S]):
    """One kind of dataset. Subclasses set ``name``, ``Spec``, ``needs`` and write
    :meth:`columns` and :meth:`generate` (or :meth:`make_example`)."""

    name: ClassVar[str]
    Spec: type[S]
    #: recording kinds the recipe reads -> the spec field that asks for them
    needs: ClassVar[dict[str, str]] = {"speech": "manifests"}
    #: the columns holding audio
    audio_columns: ClassVar[tuple[str, ...]]
    description: ClassVar[str] = ""
    #: the labels a row carries; the first is the one reports spread their examples over
    label_columns: ClassVar[tuple[str, ...]] = ()
    #: categorical columns `pamflow inspect` and the report count (label balance...)
    count_columns: ClassVar[tuple[str, ...]] = ()
    #: numeric columns worth a histogram -> the axis title the report gives them
    histogram_columns: ClassVar[dict[str, str]] = {}
    #: rows sharing a value of this column stay on one side of a held-out split
    split_key: ClassVar[str] = "example_id"
    #: the audio columns a metric is evaluated on (reference first); empty: none
    evaluated_on: ClassVar[tuple[str, ...]] = ()
    #: spec fields that make a small, fast build (tests, smoke runs), beside the counts
    tiny_spec: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            _RECIPES[cls.name] = cls()

    # -- spec ----------------------------------------------------------------------------
    def parse(self, data: dict[str, Any] | None = None, **overrides: Any) -> S:
        return parse_spec(self.Spec, data, **overrides)

    def validate(self, spec: S) -> Sources:
        """Check the spec against its sources (before any work starts); return them."""
        sources = spec.sources()
        self.check_served(spec, sources)
        return sources

    def check_served(self, spec: S, sources: Sources) -> None:
        """Fail with :class:`SpecError` unless ``sources`` can serve ``spec`` (the kinds in
        :attr:`needs`, long enough; then :meth:`check`). Also run when recordings are set
        aside during a build."""
        spec.check_sources(sources, self.needs)
        self.check(spec, sources)

    def check(self, spec: S, sources: Sources) -> None:
        """Recipe-specific checks against the sources; raise :class:`SpecError`."""
        return None

    # -- rows ----------------------------------------------------------------------------
    @abstractmethod
    def columns(self, spec: S) -> list[tuple[str, str, bool]]:
        """Recipe columns as ``(name, kind, nullable)``; kinds are those of
        :mod:`pamflow.storage` ("audio", "string", "int64", "float64", "bool", "json",
        "list<string>"). ``index``, ``example_id``, ``seed`` and ``params`` come on top."""

    def group_rows(self, spec: S) -> int:
        """Rows made together (a JND sequence); work units of a build hold whole groups."""
        return 1

    def group_costs(self, spec: S, sources: Sources) -> list[float] | None:
        """Each group's estimated cost in plain rows, in order (builds cut their work units
        by it), or None: every row costs the same."""
        return None

    def generate(
        self, spec: S, sources: Sources, start: int, stop: int
    ) -> Iterator[dict[str, Any]]:
        """Rows ``start .. stop-1``; by default one :meth:`make_example` per index."""

        def made(i: int) -> dict[str, Any]:
            seed = example_seed(spec.seed, i)

            def make(s: Sources) -> dict[str, Any]:
                return self.make_example(spec, s, i, np.random.default_rng(seed))

            row = self.redrawn(spec, sources, make)
            row.setdefault("seed", seed)
            return row

        rows = made_together(spec, [partial(made, i) for i in range(start, stop)])
        for i, row in zip(range(start, stop), rows, strict=True):
            yield self.finish(spec, i, row)

    def redrawn(self, spec: S, sources: Sources, make: Callable[[Sources], T]) -> T:
        """``make(sources)``, made again from the other recordings each time it meets one
        that is unusable (:class:`~pamflow.corpus.sources.BadSource`: changed since
        indexing, unreadable, too short, silent). ``make`` is one row, or one group of
        rows drawn together (a staircase), from its own seed: what it gives depends only on
        the spec and the files, never on the shard size or the worker count. What is left
        must still serve the spec, or :class:`SpecError` says what was set aside."""
        usable, met = sources, []
        while True:
            try:
                return make(usable)
            except BadSource as e:
                met.append(e.source_id)
                usable = sources.without(met)
                try:
                    self.check_served(spec, usable)
                except SpecError as err:
                    raise SpecError(
                        f"{err} (after setting aside unusable recordings: {', '.join(met)})"
                    ) from err

    def make_example(
        self, spec: S, sources: Sources, index: int, rng: np.random.Generator
    ) -> dict[str, Any]:
        raise NotImplementedError(f"{self.name} writes generate() instead")

    def finish(self, spec: S, index: int, row: dict[str, Any]) -> dict[str, Any]:
        row["index"] = index
        row["example_id"] = example_id(self.name, spec.seed, index)
        return row

    def schema(self, spec: S) -> Schema:
        """The storage schema of the recipe's own columns for ``spec``."""
        return Schema([Column(n, k, nullable) for n, k, nullable in self.columns(spec)])

    # -- replay --------------------------------------------------------------------------
    def replay(
        self, row: dict[str, Any], spec: S, sources: Sources | None = None
    ) -> dict[str, np.ndarray]:
        """Rebuild a built row's audio columns from its params alone (``sources``: the
        spec's by default): ``{column: float32 audio}``, equal bit for bit to what the build
        generated (stored float32 WAV decodes to it exactly)."""
        out = self.rebuild(row, spec, spec.sources() if sources is None else sources)
        if isinstance(out, dict):
            return out
        arrays = out if isinstance(out, tuple) else (out,)
        return dict(zip(self.audio_columns, arrays, strict=True))

    def rebuild(self, row: dict[str, Any], spec: S, sources: Sources) -> Any:
        """The recipe's replay: its audio from ``row["params"]`` (an array, a tuple in
        :attr:`audio_columns` order, or a dict by column)."""
        raise NotImplementedError(f"{self.name} does not replay its rows")

    def summary(self, table: Any) -> dict[str, Any]:
        """Figures for the build artifact and `pamflow inspect` (label balance...)."""
        return {}


def get_recipe(name: str) -> Recipe[Any]:
    """The registered recipe ``name`` (importing :mod:`pamflow.datasets`, as any import of
    this module does first, registers them all)."""
    try:
        return _RECIPES[name]
    except KeyError:
        raise SpecError(f"unknown recipe {name!r}; known: {', '.join(sorted(_RECIPES))}") from None


def recipe_names() -> list[str]:
    return sorted(_RECIPES)
