"""A listening campaign: the YAML file ``pamflow listen serve --campaign`` reads.

A campaign names one test (``kind: jnd``, DPAM's same/different questions near each
listener's threshold, or ``kind: 2afc``, CDPAM's "which of A or B is closer to the
reference?"), where its answers are kept (``database``: any SQLAlchemy URL, a SQLite file
beside the campaign by default) and what is played: clips cut from ``manifests`` (the demo
corpus when empty), degraded along axes of ``families`` at strengths in ``strength``, as
the ``jnd`` and ``triplet`` recipes do, level-matched to ``loudness_lufs``. Every field is
checked before the server starts; an unknown field or a bad value is one line naming it::

    name: pilot
    kind: jnd
    families: [white_noise, mp3, eq]
    jnd: {sequences: 3, questions: 10}

The fields that decide what a listener hears (everything but ``title``, ``instructions``,
``database``, ``admin_token``, ``max_listeners``, ``export_dir`` and ``cache_mb``) are the
campaign's *plan*: its digest is stored with the answers, and a database that holds the
campaign under another plan is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from pamflow.datasets.spec import (
    SpecError,
    SpecModel,
    StrengthRange,
    check_families,
    parse_spec,
    read_fields,
)
from pamflow.perturbations import default_axis_families

#: the fields that do not change what a listener hears (left out of the plan digest)
PRESENTATION = frozenset(
    {"title", "instructions", "database", "admin_token", "max_listeners", "export_dir", "cache_mb"}
)
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
#: families too slow to render while a listener waits (Griffin-Lim: about a second a clip)
SLOW_FAMILIES = frozenset({"griffin_lim"})


class CampaignError(SpecError):
    """A campaign file that cannot be served; the message names the file and the field."""


class JndSession(SpecModel):
    """A JND session (DPAM 3.2): sequences of questions, one reference and axis each."""

    sequences: int = Field(3, ge=1, le=20, description="sequences per session (DPAM: 3)")
    questions: int = Field(
        10, ge=2, le=100, description="questions per sequence, sentinels included (DPAM: 10)"
    )
    sentinel_share: float = Field(
        0.2, ge=0, le=0.5, description="share of each sequence's questions that are sentinels"
    )
    teaching: int = Field(2, ge=0, le=2, description="teaching examples before the questions")
    start_strength: float | None = Field(
        None, ge=0, le=100, description="first strength of a sequence; default: random in range"
    )
    prior_sigma: float = Field(
        15.0, gt=0, le=100, description="prior spread of the psychometric function (strength)"
    )


class TwoAfcSession(SpecModel):
    """A 2AFC session (CDPAM): "is A or B closer to the reference?"."""

    questions: int = Field(
        10, ge=1, le=200, description="questions per session, sentinels included"
    )
    sentinel_share: float = Field(0.2, ge=0, le=0.5, description="share of sentinel questions")
    teaching: int = Field(2, ge=0, le=2, description="teaching examples before the questions")
    pool: int = Field(
        40, ge=1, le=100_000, description="triplets the sessions draw from, so each gets votes"
    )
    dataset: str | None = Field(
        None, description="a triplet dataset to serve (its first `pool` rows); default: live"
    )
    mode: Literal["along", "across"] = Field("along", description="live triplets: as the recipe")
    path_points: int = Field(64, ge=2, le=10_000, description="live triplets along one axis")


class Campaign(SpecModel):
    """Every field of a campaign file (see the module docstring)."""

    name: str = Field(description="the campaign's id: lower-case letters, digits, - and _")
    kind: Literal["jnd", "2afc"] = Field("jnd", description="jnd (same/different) or 2afc")
    title: str = Field("Listening test", max_length=200, description="shown on every page")
    instructions: str = Field("", max_length=4000, description="shown on the start page")
    database: str | None = Field(
        None, description="SQLAlchemy URL; default: sqlite:///NAME.db beside the campaign file"
    )
    admin_token: str | None = Field(
        None, min_length=16, description="admin token; default: $PAMFLOW_LISTEN_ADMIN_TOKEN"
    )
    max_listeners: int = Field(1000, ge=1, le=1_000_000, description="sessions that may start")
    export_dir: str | None = Field(None, description="where the admin page exports datasets")
    cache_mb: int = Field(256, ge=1, le=65536, description="rendered audio kept in memory")
    seed: int = Field(0, ge=0, description="campaign seed: every draw derives from it")
    sample_rate: int = Field(16000, ge=8000, le=96000, description="Hz of the audio played")
    clip_seconds: float = Field(2.5, gt=0, le=20, description="length of each clip")
    manifests: list[str] = Field(default_factory=list, description="corpus manifests")
    families: list[str] = Field(
        default_factory=lambda: [f for f in default_axis_families() if f not in SLOW_FAMILIES],
        description="families the axes draw from",
    )
    strength: StrengthRange = Field(default_factory=StrengthRange, description="strength range")
    reference_strength: float = Field(
        15.0, ge=0, le=100, description="the reference is degraded along an axis at U(0, this)"
    )
    loudness_lufs: float | None = Field(
        -23.0, ge=-70, le=-6, description="level matching target; null: played as rendered"
    )
    sentinel_family: str = Field("white_noise", description="the obvious deformation")
    sentinel_strength: float = Field(100.0, ge=0, le=100, description="its strength")
    jnd: JndSession = Field(default_factory=JndSession, description="kind jnd")
    afc: TwoAfcSession = Field(default_factory=TwoAfcSession, alias="2afc", description="2afc")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME.fullmatch(v):
            raise ValueError(f"{v!r} must be 1-64 of a-z, 0-9, - and _, starting with a-z or 0-9")
        return v

    @field_validator("families")
    @classmethod
    def _families(cls, v: list[str]) -> list[str]:
        return check_families(v)

    @field_validator("sentinel_family")
    @classmethod
    def _sentinel(cls, v: str) -> str:
        return check_families([v])[0]

    @model_validator(mode="after")
    def _fits(self) -> Campaign:
        if self.kind == "2afc" and self.afc.dataset is None and self.afc.mode == "along":
            if not self.strength.low < self.strength.high:
                raise ValueError("strength: 2afc along an axis needs low < high")
        return self

    # -- derived -------------------------------------------------------------------------
    @property
    def recipe(self) -> str:
        """The recipe of the exported dataset."""
        return "jnd" if self.kind == "jnd" else "triplet"

    @property
    def session(self) -> JndSession | TwoAfcSession:
        return self.jnd if self.kind == "jnd" else self.afc

    def plan(self) -> dict[str, Any]:
        """The fields that decide what listeners hear (see the module docstring)."""
        data = self.model_dump(mode="json", by_alias=True, exclude=set(PRESENTATION))
        data.pop("jnd" if self.kind == "2afc" else "2afc")
        return data

    def plan_digest(self) -> str:
        text = json.dumps(self.plan(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def recipe_spec(self) -> Any:
        """The ``jnd`` or ``triplet`` spec of the same clips and families (labels none): its
        replay rebuilds a live item's audio from the item's params."""
        from pamflow.datasets import get_recipe

        data: dict[str, Any] = {
            "seed": self.seed,
            "sample_rate": self.sample_rate,
            "clip_seconds": self.clip_seconds,
            "manifests": self.manifests,
            "families": self.families,
            "strength": self.strength.model_dump(),
            "reference_strength": self.reference_strength,
            "labels": "none",
        }
        if self.kind == "2afc":
            data.update(mode=self.afc.mode, path_points=self.afc.path_points)
        return get_recipe(self.recipe).parse(data)


def load_campaign(path: str | Path) -> tuple[Campaign, Path]:
    """The campaign of the YAML file ``path`` and the folder relative paths start from.
    Relative ``manifests``, ``database`` (SQLite), ``export_dir`` and ``2afc.dataset`` are
    taken from the campaign file's folder. Anything wrong is one :class:`CampaignError`
    naming the file."""
    path = Path(path)
    data = read_fields(
        path,
        "campaign file",
        noun="campaign",
        defaults="use the defaults",
        error=CampaignError,
    )
    base = path.resolve().parent
    return parse_campaign(data, base, where=str(path)), base


def parse_campaign(data: dict[str, Any], base: Path, where: str = "campaign") -> Campaign:
    """Validate ``data`` (relative paths from ``base``); one :class:`CampaignError` line."""
    data = dict(data)
    for key in ("manifests",):
        if isinstance(data.get(key), list):
            data[key] = [_from(base, str(m)) for m in data[key]]
    data["export_dir"] = _from(base, str(data.get("export_dir") or "exports"))
    afc = data.get("2afc")
    if isinstance(afc, dict) and isinstance(afc.get("dataset"), str):
        data["2afc"] = {**afc, "dataset": _from(base, afc["dataset"])}
    if data.get("database") is None and isinstance(data.get("name"), str):
        data["database"] = f"sqlite:///{base / (data['name'] + '.db')}"
    elif isinstance(data.get("database"), str) and data["database"].startswith("sqlite:///"):
        rest = data["database"].removeprefix("sqlite:///")
        if rest and not rest.startswith("/") and rest != ":memory:":
            data["database"] = f"sqlite:///{_from(base, rest)}"
    try:
        campaign = parse_spec(Campaign, data)
    except SpecError as e:
        raise CampaignError(
            f"{where}: {str(e).replace('invalid spec', 'invalid campaign')}"
        ) from None
    missing = [m for m in campaign.manifests if "://" not in m and not Path(m).exists()]
    if missing:
        raise CampaignError(f"{where}: manifests: {missing[0]} does not exist")
    if campaign.afc.dataset and campaign.kind == "2afc":
        if not (Path(campaign.afc.dataset) / "dataset.json").exists():
            raise CampaignError(f"{where}: 2afc.dataset: {campaign.afc.dataset} holds no dataset")
    return campaign


def _from(base: Path, value: str) -> str:
    if "://" in value or os.path.isabs(value):
        return value
    return str((base / value).resolve())


def admin_token(campaign: Campaign) -> str | None:
    """The admin token: ``$PAMFLOW_LISTEN_ADMIN_TOKEN``, else the campaign's (None: none set)."""
    token = os.environ.get("PAMFLOW_LISTEN_ADMIN_TOKEN") or campaign.admin_token
    if token is not None and len(token) < 16:
        raise CampaignError(
            "PAMFLOW_LISTEN_ADMIN_TOKEN: an admin token needs 16 characters or more"
        )
    return token


__all__ = [
    "Campaign",
    "CampaignError",
    "JndSession",
    "TwoAfcSession",
    "admin_token",
    "load_campaign",
    "parse_campaign",
]
