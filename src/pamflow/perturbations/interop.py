"""audiomentations interop, both ways, with replay (``pip install pamflow[audiomentations]``).

:func:`from_audiomentations` turns any audiomentations waveform transform into a pamflow
family; :class:`AudiomentationsAdapter` runs a pamflow family inside an audiomentations
``Compose``. audiomentations is imported lazily: without it, both raise a one-line
``ImportError`` naming the extra.

**Seeds.** audiomentations transforms draw from the global ``random`` and ``numpy.random``
generators: their parameters in ``randomize_parameters(samples, sample_rate)`` (stored in
``transform.parameters``), and some (AddGaussianNoise, AddGaussianSNR, AddColorNoise...)
their noise inside ``apply``. A family made by :func:`from_audiomentations` draws one
63-bit ``seed`` from pamflow's generator (``seeding.draw_seed``) and records it in its
params; the parameters are drawn with both global generators seeded from
``derive_seed(seed, 0)`` and the transform is applied, its parameters frozen, with both
seeded from ``derive_seed(seed, 1)``. Both global states are saved before and restored
after (under a lock), so the caller's global generators are left as they were. The
transform's own ``p`` is ignored: the family always applies.

**Recorded parameters.** ``transform.parameters`` often depend on the audio (an SNR
becomes a noise level; a limiter's attack becomes samples), which ``sample`` does not see.
``fam.sample(rng, strength, audio=x, sample_rate=sr)`` (or ``fam.resolve(params, x, sr)``)
draws them for that audio and records them in the params, JSON-safe (numpy scalars become
numbers, arrays ``{"__ndarray__": [...], "dtype": ...}``). Plain ``fam.sample(rng,
strength)`` records the seed only (``parameters`` is None) and ``apply`` draws them from
the seed: the same output, bit for bit, as with the recorded parameters.

**Strength.** ``strength=None``: rho is recorded but changes nothing (the transform's own
ranges apply). ``strength=(attribute, low, high)`` or ``(attribute, low, high,
"exponential")``: the value at rho (``lin_map``/``exp_map`` from ``low`` at rho = 0 to
``high`` at rho = 100) is set on a copy of the transform as ``attribute``, or, where the
transform has no such attribute, as both ``min_<attribute>`` and ``max_<attribute>`` (so
``("gain_db", 0, -20)`` pins a ``Gain``'s gain to the strength); it is rounded where the
attribute holds an int. ``strength=callable``: ``f(rho)`` returns a dict of attribute
overrides (``{"min_snr_db": ..., "max_snr_db": ...}``). Attributes the transform lacks
are refused. The overrides are recorded in the params.

Families made here are not registered (``perturbations.get`` does not know them, and
``docs/perturbations.md`` does not list them) unless ``register=True``.
"""

from __future__ import annotations

import copy
import json
import random
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Self, cast

import numpy as np

from pamflow.perturbations import base
from pamflow.perturbations.base import (
    CATEGORIES,
    Family,
    Params,
    PerturbationError,
    check_audio,
    check_strength,
    exp_map,
    lin_map,
)
from pamflow.seeding import derive_seed, derive_seed32, draw_seed

MISSING = "audiomentations is not installed: pip install 'pamflow[audiomentations]'"

#: what ``strength=`` accepts
StrengthMap = Callable[[float], Mapping[str, Any]] | tuple[Any, ...] | None

_GLOBAL_RNG_LOCK = threading.RLock()


def _audiomentations() -> Any:
    try:
        import audiomentations
    except ImportError:
        raise ImportError(MISSING) from None
    return audiomentations


@contextmanager
def seeded_global_rngs(seed: int) -> Iterator[None]:
    """Seed ``random`` and ``numpy.random`` from ``seed``; restore both states afterwards."""
    with _GLOBAL_RNG_LOCK:
        py_state = random.getstate()
        np_state = np.random.get_state()  # noqa: NPY002
        try:
            random.seed(seed)
            np.random.seed(derive_seed32(seed))  # noqa: NPY002 (audiomentations reads it)
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)  # noqa: NPY002


def to_json_safe(value: Any) -> Any:
    """``value`` with numpy scalars as numbers and arrays as tagged lists (exact in JSON)."""
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_safe(v) for v in value]
    return value


def from_json_safe(value: Any) -> Any:
    """The inverse of :func:`to_json_safe` for what the transforms read back (arrays)."""
    if isinstance(value, Mapping):
        if set(value) == {"__ndarray__", "dtype"}:
            return np.asarray(value["__ndarray__"], dtype=value["dtype"])
        return {k: from_json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json_safe(v) for v in value]
    return value


def _canon(value: Any) -> str:
    return json.dumps(to_json_safe(value), sort_keys=True)


@dataclass(frozen=True)
class AudiomentationsParams(Params):
    """Params of a family made by :func:`from_audiomentations`.

    ``overrides`` and ``parameters`` are held as canonical JSON text (so params stay
    hashable); ``to_dict`` gives them as dicts and ``from_dict`` takes them back.
    """

    transform: str
    strength: float
    seed: int
    overrides: str = "{}"
    #: ``transform.parameters`` as drawn for some audio; None: drawn from the seed at apply
    parameters: str | None = None

    @property
    def overrides_dict(self) -> dict[str, Any]:
        return cast(dict[str, Any], from_json_safe(json.loads(self.overrides)))

    @property
    def parameters_dict(self) -> dict[str, Any] | None:
        if self.parameters is None:
            return None
        return cast(dict[str, Any], from_json_safe(json.loads(self.parameters)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "transform": self.transform,
            "strength": self.strength,
            "seed": self.seed,
            "overrides": json.loads(self.overrides),
            "parameters": None if self.parameters is None else json.loads(self.parameters),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        d = dict(data)
        for key in ("overrides", "parameters"):
            if key in d and d[key] is not None and not isinstance(d[key], str):
                d[key] = _canon(d[key])
        return super().from_dict(d)


class AudiomentationsFamily(Family[AudiomentationsParams]):
    """A pamflow family wrapping one audiomentations waveform transform (see the module)."""

    params_type = AudiomentationsParams

    def __init__(self, transform: Any, strength: StrengthMap = None) -> None:
        self.transform = transform
        self.strength_map = strength

    # -- strength ---------------------------------------------------------------------
    def overrides(self, strength: float) -> dict[str, Any]:
        """The attribute overrides of the transform at ``strength``."""
        s = check_strength(strength)
        m = self.strength_map
        if m is None:
            return {}
        if callable(m):
            out = dict(m(s))
        else:
            attr, low, high = m[0], float(m[1]), float(m[2])
            value = (
                exp_map(s, low, high) if self.mapping == "exponential" else lin_map(s, low, high)
            )
            names = [attr] if hasattr(self.transform, attr) else [f"min_{attr}", f"max_{attr}"]
            out = dict.fromkeys(names, value)
        for key, v in list(out.items()):
            if not hasattr(self.transform, key):
                raise PerturbationError(
                    f"{self.name}: {type(self.transform).__name__} has no attribute {key!r}"
                )
            old = getattr(self.transform, key)
            if isinstance(old, int) and not isinstance(old, bool) and isinstance(v, float):
                out[key] = round(v)
        return cast(dict[str, Any], to_json_safe(out))

    def _configured(self, overrides: Mapping[str, Any]) -> Any:
        t = copy.deepcopy(self.transform)
        for key, v in overrides.items():
            setattr(t, key, v)
        t.p = 1.0
        return t

    def _draw(self, t: Any, audio: np.ndarray, sample_rate: int, seed: int) -> dict[str, Any]:
        with seeded_global_rngs(derive_seed(seed, 0)):
            t.randomize_parameters(audio.copy(), sample_rate)
        t.parameters["should_apply"] = True
        return cast(dict[str, Any], t.parameters)

    # -- the family -------------------------------------------------------------------
    def sample(
        self,
        rng: np.random.Generator,
        strength: float,
        sources: Any = None,
        *,
        audio: np.ndarray | None = None,
        sample_rate: int | None = None,
    ) -> AudiomentationsParams:
        """Params at ``strength``; with ``audio`` and ``sample_rate``, the transform's
        parameters for that audio are drawn now and recorded."""
        params = super().sample(rng, strength, sources)
        if audio is None:
            return params
        if sample_rate is None:
            raise PerturbationError(f"{self.name}: sample(audio=...) needs sample_rate")
        return self.resolve(params, audio, sample_rate)

    def resolve(
        self, params: AudiomentationsParams, audio: np.ndarray, sample_rate: int
    ) -> AudiomentationsParams:
        """``params`` with the transform's parameters for ``audio`` recorded (what
        ``apply`` draws from the seed when they are not)."""
        if params.parameters is not None:
            return params
        x = check_audio(audio, sample_rate, self.name)
        t = self._configured(params.overrides_dict)
        return replace(params, parameters=_canon(self._draw(t, x, int(sample_rate), params.seed)))

    def _sample(self, rng, strength, sources):
        return AudiomentationsParams(
            transform=type(self.transform).__name__,
            strength=float(strength),
            seed=draw_seed(rng),
            overrides=_canon(self.overrides(strength)),
        )

    def _apply(self, audio, sample_rate, params, sources):
        if params.transform != type(self.transform).__name__:
            raise PerturbationError(
                f"{self.name}: params of {params.transform}, not of {type(self.transform).__name__}"
            )
        t = self._configured(params.overrides_dict)
        recorded = params.parameters_dict
        if recorded is None:
            self._draw(t, audio, sample_rate, params.seed)
        else:
            t.parameters = {**recorded, "should_apply": True}
        t.freeze_parameters()
        with seeded_global_rngs(derive_seed(params.seed, 1)):
            y = np.asarray(t(audio.copy(), sample_rate))
        if y.shape != audio.shape:
            raise PerturbationError(
                f"{self.name}: {type(self.transform).__name__} changed the length "
                f"{audio.shape} -> {y.shape} (a pamflow family keeps it)"
            )
        return y

    def __reduce__(self) -> tuple[Any, ...]:
        if base._REGISTRY.get(self.name) is self:
            return (base.get, (self.name,))
        return (_rebuild, (self.transform, self.name, self.category, self.strength_map))


def _rebuild(transform: Any, name: str, category: str, strength: StrengthMap) -> Family:
    return from_audiomentations(transform, name=name, category=category, strength=strength)


def from_audiomentations(
    transform: Any,
    *,
    name: str,
    category: str = "misc",
    strength: StrengthMap = None,
    register: bool = False,
) -> AudiomentationsFamily:
    """A pamflow family applying the audiomentations waveform ``transform``.

    ``strength``: None, ``(attribute, low, high[, "linear" | "exponential"])`` or a
    callable ``rho -> {attribute: value}`` (see the module). ``register=True`` adds the
    family to the registry (``perturbations.get(name)``, axes, the docs page).
    """
    am = _audiomentations()
    if not isinstance(transform, am.core.transforms_interface.BaseWaveformTransform):
        raise PerturbationError(
            f"{name}: expected an audiomentations waveform transform, got {type(transform).__name__}"
        )
    if category not in CATEGORIES:
        raise PerturbationError(f"{name}: unknown category {category!r}; known: {CATEGORIES}")
    attrs: dict[str, Any] = {
        "category": category,
        "__doc__": f"audiomentations {transform!r}, wrapped by pamflow.perturbations.interop.",
        "__module__": __name__,
    }
    if strength is not None and not callable(strength):
        if not (isinstance(strength, tuple) and len(strength) in (3, 4)):
            raise PerturbationError(
                f"{name}: strength must be None, a callable or (attribute, low, high[, mapping])"
            )
        mapping = strength[3] if len(strength) == 4 else "linear"
        if mapping not in ("linear", "exponential"):
            raise PerturbationError(f"{name}: unknown mapping {mapping!r}")
        attrs.update(parameter=str(strength[0]), mild=float(strength[1]))
        attrs.update(strong=float(strength[2]), mapping=mapping)
    elif callable(strength):
        attrs.update(parameter=getattr(strength, "__name__", "strength"), mapping="callable")
    else:
        attrs.update(mapping="none")
    cls = cast(
        type[AudiomentationsFamily],
        type(f"Audiomentations_{name}", (AudiomentationsFamily,), attrs),
    )
    # set after the class exists: Family.__init_subclass__ registers classes made with a name
    cls.name = name
    fam = cls(transform, strength)
    fam.overrides(0.0)  # refuses unknown attributes now, not at sample time
    if register:
        if name in base._REGISTRY:
            raise PerturbationError(f"perturbation {name!r} registered twice")
        base._REGISTRY[name] = fam
    return fam


def _adapter_class() -> type:
    am = _audiomentations()

    class AudiomentationsAdapter(am.core.transforms_interface.BaseWaveformTransform):  # type: ignore[name-defined]
        """A pamflow family as an audiomentations transform (usable in ``Compose``).

        ``randomize_parameters`` draws the pamflow params from the global ``random`` (as
        audiomentations transforms do, so ``random.seed`` makes a ``Compose`` repeatable)
        and records them in ``self.parameters["pamflow"]``: the family, the strength and
        ``params.to_dict()``. ``freeze_parameters()`` replays them.
        """

        supports_multichannel = False

        def __init__(
            self,
            family: str | Family,
            strength: float = 50.0,
            p: float = 0.5,
            sources: Any = None,
        ) -> None:
            super().__init__(p=p)
            self.family = family
            self.strength = check_strength(strength)
            self.sources = sources
            self._family = base.get(family) if isinstance(family, str) else family

        def randomize_parameters(self, samples: np.ndarray, sample_rate: int) -> None:
            super().randomize_parameters(samples, sample_rate)
            if self.parameters["should_apply"]:
                rng = np.random.default_rng(random.getrandbits(63))
                params = self._family.sample(rng, self.strength, self.sources)
                self.parameters["pamflow"] = {
                    "family": self._family.name,
                    "strength": self.strength,
                    "params": params.to_dict(),
                }

        def apply(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
            recorded = self.parameters["pamflow"]
            params = self._family.params_from_dict(recorded["params"])
            return self._family.apply(samples, sample_rate, params, self.sources)

    AudiomentationsAdapter.__module__ = __name__  # pickles as interop.AudiomentationsAdapter
    AudiomentationsAdapter.__qualname__ = "AudiomentationsAdapter"
    return AudiomentationsAdapter


_ADAPTER: list[type] = []


def __getattr__(name: str) -> Any:
    # the adapter subclasses an audiomentations class: made on first use, so importing
    # pamflow never imports audiomentations
    if name == "AudiomentationsAdapter":
        if not _ADAPTER:
            _ADAPTER.append(_adapter_class())
        return _ADAPTER[0]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MISSING",
    "AudiomentationsAdapter",  # noqa: F822 (made on first access, by __getattr__)
    "AudiomentationsFamily",
    "AudiomentationsParams",
    "from_audiomentations",
    "seeded_global_rngs",
    "to_json_safe",
]
