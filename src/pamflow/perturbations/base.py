"""Perturbation families: the contract every family follows, and the registry.

A family is a class with a ``name``, a ``category`` and a frozen :class:`Params` dataclass
(``params_type``; ``Family[P]`` is generic over it).
It draws params with :meth:`Family.sample` from an explicit ``numpy.random.Generator``
and a strength ``rho`` in [0, 100], and applies them with :meth:`Family.apply`, a pure
function of ``(audio, sample_rate, params)`` (plus the recordings in ``sources`` for
families that need them). All randomness, noise samples included, is drawn at sample
time or recorded in params (as an integer ``seed`` the apply step feeds to its own
generator), so ``(params, seed)`` replays an output bit for bit.

Families register themselves by subclassing :class:`Family` with a ``name``.
"""

from __future__ import annotations

import dataclasses
import json
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Self, TypeVar

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from pamflow.corpus.sources import Sources

Category = Literal["additive", "reverb", "compression", "eq", "misc", "augment"]
CATEGORIES: tuple[str, ...] = ("additive", "reverb", "compression", "eq", "misc", "augment")
#: categories an axis draws from by default (DPAM section 3.1); "augment" holds the CDPAM
#: delay/gain augmentations, used only when asked for.
AXIS_CATEGORIES: tuple[str, ...] = ("additive", "reverb", "compression", "eq", "misc")

_REGISTRY: dict[str, Family[Any]] = {}


class PerturbationError(ValueError):
    """Bad input to a perturbation: wrong strength, params of another family, bad audio."""


@dataclasses.dataclass(frozen=True)
class Params:
    """Base class of every family's params: frozen, JSON-serialisable, picklable."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise PerturbationError(f"{cls.__qualname__}: unknown field(s) {sorted(unknown)}")
        values = {}
        for f in dataclasses.fields(cls):
            if f.name in data:
                v = data[f.name]
                # JSON turns tuples into lists; params hold tuples so they stay hashable
                values[f.name] = tuple(v) if isinstance(v, list) else v
        return cls(**values)


def exp_map(rho: float, mild: float, strong: float) -> float:
    """Exponential strength mapping: ``mild * (strong / mild) ** (rho / 100)``."""
    return float(mild * (strong / mild) ** (rho / 100.0))


def lin_map(rho: float, mild: float, strong: float) -> float:
    """Linear strength mapping: ``mild + (strong - mild) * rho / 100``."""
    return float(mild + (strong - mild) * rho / 100.0)


def inverse_exp_map(value: float, mild: float, strong: float) -> float:
    """The strength at which :func:`exp_map` gives ``value`` (clipped to [0, 100])."""
    rho = 100.0 * np.log(value / mild) / np.log(strong / mild)
    return float(np.clip(rho, 0.0, 100.0))


def check_strength(strength: float) -> float:
    s = float(strength)
    if not np.isfinite(s) or s < 0.0 or s > 100.0:
        raise PerturbationError(f"strength must be in [0, 100], got {strength!r}")
    return s


#: the params dataclass of a family
P = TypeVar("P", bound="Params")


class Family(ABC, Generic[P]):
    """One perturbation family. Subclasses set the class attributes and two methods.

    Class attributes document the strength mapping (used by ``docs/perturbations.md``):
    ``parameter`` (what rho controls), ``unit``, ``mild`` (value at rho = 0), ``strong``
    (value at rho = 100) and ``mapping`` ("exponential", "linear", ...).
    """

    name: ClassVar[str]
    category: ClassVar[str]
    #: the family's frozen params dataclass (a :class:`Params` subclass)
    params_type: type[P]
    parameter: ClassVar[str] = ""
    unit: ClassVar[str] = ""
    mild: ClassVar[float] = 0.0
    strong: ClassVar[float] = 0.0
    mapping: ClassVar[str] = "linear"
    #: True for families that read recordings (corpus noise, RIRs) through ``sources``
    needs_sources: ClassVar[bool] = False
    #: True where the output may saturate at full scale by design (clipping)
    clips: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if name is None:
            return
        if cls.category not in CATEGORIES:
            raise TypeError(f"{cls.__name__}: unknown category {cls.category!r}")
        if name in _REGISTRY:
            raise TypeError(f"perturbation {name!r} registered twice")
        _REGISTRY[name] = cls()

    # -- what subclasses write --------------------------------------------------------
    @abstractmethod
    def _sample(self, rng: np.random.Generator, strength: float, sources: Sources | None) -> P:
        """Draw params at ``strength`` (already checked to lie in [0, 100])."""

    @abstractmethod
    def _apply(
        self, audio: np.ndarray, sample_rate: int, params: P, sources: Sources | None
    ) -> np.ndarray:
        """Apply params to mono float audio; return an array of the same length."""

    # -- the public, checked entry points -------------------------------------------
    def value(self, strength: float) -> float:
        """The physical parameter at ``strength`` (in ``unit``), per the documented mapping."""
        s = check_strength(strength)
        if self.mapping == "exponential":
            return exp_map(s, self.mild, self.strong)
        return lin_map(s, self.mild, self.strong)

    def cost(self, strength: float) -> float:
        """About what one call on a clip costs at ``strength``, in plain rows of a build
        (a row's drawing, listener and writing): what builds cut their work units by.
        Most families cost a small part of a row: 0."""
        return 0.0

    def sample(
        self,
        rng: np.random.Generator,
        strength: float,
        sources: Sources | None = None,
    ) -> P:
        if not isinstance(rng, np.random.Generator):
            raise PerturbationError(
                f"{self.name}: sample() needs a numpy.random.Generator, got {type(rng).__name__}"
            )
        return self._sample(rng, check_strength(strength), self._sources(sources))

    def apply(
        self,
        audio: np.ndarray,
        sample_rate: int,
        params: Params,
        sources: Sources | None = None,
        *,
        full_scale: bool = True,
    ) -> np.ndarray:
        """``params`` applied to mono float ``audio``: float32, same length. The output is
        scaled down as a whole where it would exceed full scale; ``full_scale=False`` leaves
        its level as the family made it (for callers that scale a pair together, like the
        codec recipe)."""
        if not isinstance(params, self.params_type):
            raise PerturbationError(
                f"{self.name}: expected {self.params_type.__qualname__}, got {type(params).__qualname__}"
            )
        x, peak = _checked(audio, sample_rate, self.name)
        if x.size == 0:
            return x.copy()
        y = np.asarray(self._apply(x, int(sample_rate), params, self._sources(sources)))
        if y.shape != x.shape:
            raise AssertionError(f"{self.name} changed the length: {x.shape} -> {y.shape}")
        bound = self._peak_bound(params, peak)
        if bound is not None and bound <= 1.0:  # finite and within full scale, unlooked at
            out = y.astype(np.float32, copy=False)
            return out.copy() if np.may_share_memory(out, x) or not out.flags.writeable else out
        # max and min propagate NaN and show an inf: one pass checks and measures the peak
        hi, lo = float(y.max()), float(y.min())
        if not (np.isfinite(hi) and np.isfinite(lo)):
            y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)
            hi, lo = float(y.max()), float(y.min())
        out = _fit(y, max(hi, -lo), self.clips) if full_scale else y.astype(np.float32)
        # the caller owns the output: never hand back (a view of) the input or the sources
        return out.copy() if np.may_share_memory(out, x) or not out.flags.writeable else out

    def _peak_bound(self, params: P, input_peak: float) -> float | None:
        """An upper bound of the output's largest magnitude, known from the input's alone
        (the input's own where samples are only moved, kept or zeroed), or None. Where it
        is at most 1 the output is known to be finite and within full scale, and
        :meth:`apply` skips its pass over it."""
        return None

    def _sources(self, sources: Sources | None) -> Sources | None:
        """``sources``, or a clear error where this family reads recordings and got none
        (the demo corpus is never made behind the caller's back)."""
        if sources is None and self.needs_sources:
            raise PerturbationError(
                f"{self.name} draws from recordings: pass sources=Sources.demo() (the embedded "
                "demo corpus, pamflow.corpus.Sources) or Sources.from_manifest(MANIFEST)"
            )
        return sources

    def params_from_dict(self, data: dict[str, Any]) -> P:
        return self.params_type.from_dict(data)

    def __repr__(self) -> str:
        return f"<perturbation {self.name} ({self.category})>"

    def __reduce__(self) -> tuple[Any, ...]:
        # registry instances pickle by name, so Dask ships them cheaply and they stay unique
        return (get, (self.name,))


def check_audio(audio: np.ndarray, sample_rate: int, where: str) -> np.ndarray:
    """Mono float32 view of ``audio``; a clear error for what no family can process."""
    return _checked(audio, sample_rate, where)[0]


def _checked(audio: np.ndarray, sample_rate: int, where: str) -> tuple[np.ndarray, float]:
    """:func:`check_audio`, and the input's largest magnitude (0 when empty)."""
    x = np.asarray(audio)
    if x.ndim != 1:
        raise PerturbationError(f"{where}: expected mono audio of shape (n,), got {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise PerturbationError(f"{where}: expected float audio in [-1, 1], got {x.dtype}")
    if not (1000 <= int(sample_rate) <= 384000):
        raise PerturbationError(f"{where}: sample rate {sample_rate} Hz is out of range")
    x32 = x.astype(np.float32, copy=False)
    if not x.size:
        return x32, 0.0
    if x32 is not x and not np.all(np.isfinite(x)):
        raise PerturbationError(f"{where}: input holds NaN or inf")
    hi, lo = float(x32.max()), float(x32.min())  # they propagate NaN and show an inf
    if x32 is x and not (np.isfinite(hi) and np.isfinite(lo)):
        raise PerturbationError(f"{where}: input holds NaN or inf")
    return x32, max(hi, -lo)


def fit_full_scale(y: np.ndarray, *, allow_clip: bool = False) -> np.ndarray:
    """float32 output within [-1, 1]: scaled down as a whole when it would overshoot.

    Scaling (rather than clipping) keeps the ratio the family controls (SNR, DRR...) exact.
    """
    return _fit(y, max(float(y.max()), -float(y.min())) if y.size else 0.0, allow_clip)


def _fit(y: np.ndarray, peak: float, allow_clip: bool) -> np.ndarray:
    """:func:`fit_full_scale` of ``y``, whose largest magnitude is ``peak``."""
    if peak > 1.0:
        y = np.clip(y, -1.0, 1.0) if allow_clip else y / peak
    return y.astype(np.float32, copy=False)


def get(name: str) -> Family:
    """The registered family called ``name`` (importing :mod:`pamflow.perturbations`, as any
    import of this module does first, registers them all)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise PerturbationError(
            f"unknown perturbation {name!r}; known: {', '.join(sorted(_REGISTRY))}"
        ) from None


def names(category: str | None = None) -> list[str]:
    """Names of the registered families, sorted; only those of ``category`` if given."""
    return sorted(n for n, f in _REGISTRY.items() if category is None or f.category == category)


def families() -> list[Family]:
    return [get(n) for n in names()]
