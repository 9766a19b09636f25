"""The contract every model meets, as types: what the rest of pamflow may ask of a model.

Structural (:class:`typing.Protocol`), not base classes: the registered architectures
(DPAM, CDPAM, NORESQA) meet it without naming it, and so does any ``nn.Module`` of the
same shape, which evaluation (:mod:`pamflow.models.evaluate`) and the loss wrapper
(:mod:`pamflow.models.metric`) accept besides a checkpoint.

- :class:`MetricConfig`: a config's ``sample_rate``, the rate the model takes waveforms at.
- :class:`ModelConfig`: a registered model's config: a frozen dataclass (stored in
  checkpoints as a plain dict) with a ``sample_rate``.
- :class:`MetricModel`: an ``nn.Module`` with a ``config`` that answers
  ``distance(x, y) -> [B]``: all evaluation and the loss wrapper call.
- :class:`NMRHeads`: what evaluation on ``nmr`` datasets also reads (NORESQA's heads).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from typing_extensions import TypeIs


class MetricConfig(Protocol):
    """What every model's config has: the rate (Hz) its model takes waveforms at."""

    @property
    def sample_rate(self) -> int: ...


class ModelConfig(MetricConfig, Protocol):
    """A registered model's config: a frozen dataclass of plain values (checkpoints store
    it as a dict, :func:`pamflow.models.checkpoint.config_to_dict`) with a ``sample_rate``."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]


class MetricModel(Protocol):
    """A perceptual metric: an ``nn.Module`` taking mono float waveforms ``[B, T]`` at
    ``config.sample_rate`` that answers ``distance(x, y) -> [B]`` (for NORESQA, ``x`` is
    the test and ``y`` its non-matching reference).

    The ``nn.Module`` methods below are the ones pamflow calls on a model (moving it,
    switching modes, its parameters and weights); ``__init__`` is how the registry builds
    an architecture from its config.
    """

    def __init__(self, config: Any, /) -> None: ...

    @property
    def config(self) -> MetricConfig: ...

    def distance(self, x: Tensor, y: Tensor, /) -> Tensor: ...

    # -- the nn.Module interface pamflow uses -------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    def to(self, device: torch.device | str) -> Self: ...

    def train(self, mode: bool = True) -> Self: ...

    def eval(self) -> Self: ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> Any: ...


class NMRHeads(Protocol):
    """What evaluation on ``nmr`` datasets reads besides ``distance`` (NORESQA, the model
    trained on them): the frame-averaged heads of ``model(test, reference)`` and the centres
    (dB) of the Δ bins."""

    centres: Tensor

    def __call__(self, test: Tensor, reference: Tensor, /) -> dict[str, Tensor]: ...


def is_model(obj: object) -> TypeIs[MetricModel]:
    """Whether ``obj`` is a model (an ``nn.Module``) rather than, say, a checkpoint path; a
    module given where pamflow takes a model is taken for a :class:`MetricModel`."""
    return isinstance(obj, nn.Module)


__all__ = ["MetricConfig", "MetricModel", "ModelConfig", "NMRHeads", "is_model"]
