"""What a listener is asked, item by item: deterministic from the campaign, the listener's
number and, for JND questions, their answers so far.

A session is a list of positions: 0 the volume calibration, 1 the attention check, then
the teaching examples, then the questions. For ``kind: jnd`` (DPAM 3.2) the questions come
in ``jnd.sequences`` sequences of ``jnd.questions``; each sequence has its reference (a
speech clip degraded along a random axis at ``U(0, reference_strength)``, as the ``jnd``
recipe makes it) and its direction (another random axis); each question's strength is
:func:`pamflow.datasets.psychometric.next_strength` of the sequence's answers so far (the
recipe's staircase: prior centred on the sequence's start strength, jittered from the
item's seed), clipped to the strength range. About ``sentinel_share`` of each sequence's
questions (never its first) are sentinels: the reference against itself ("same" expected)
or against ``sentinel_family`` at ``sentinel_strength`` ("different" expected). For
``kind: 2afc`` each non-sentinel question is a triplet of the pool (made live by the
``triplet`` recipe, or a row of ``2afc.dataset``), spread so that every triplet is heard
by about as many listeners; a sentinel puts the reference itself as A or B and the obvious
deformation as the other.

Every item records its params (``clip``, ``reference_chain``, ``axis``, ``chain``, ... the
recipes' keys, so their ``replay`` rebuilds the audio) and its seed.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any

import numpy as np

from pamflow.corpus.demo.speech import HARVARD_SENTENCES, SPEAKERS
from pamflow.corpus.sources import Sources
from pamflow.datasets.base import cut_clip, long_enough
from pamflow.datasets.psychometric import Prior, next_strength
from pamflow.listen.campaign import Campaign
from pamflow.perturbations import Axis, sample_axis
from pamflow.seeding import derive_seed, example_seed

#: keys that keep the campaign's generators apart
_SEQ, _SENTINEL, _ITEM, _ATTENTION, _TEACH, _CALIBRATION = (
    0x115E,
    0x5E47,
    0x17E3,
    0xA77E,
    0x7EAC,
    0xCA11,
)
CALIBRATION, ATTENTION, TEACHING, QUESTION = "calibration", "attention", "teaching", "question"
#: attention check: sentences joined into one long sentence, and the words offered
ATTENTION_SENTENCES, ATTENTION_CHOICES = 3, 4
#: the calibration clip: loud and soft, this many dB above and below the target
LOUD_DB, SOFT_DB = 6.0, -20.0
_WORD = re.compile(r"[a-z']+")


@dataclasses.dataclass(frozen=True)
class Item:
    """One thing to ask: where it sits, what it is, its params and seed, and the answer
    that is right where one is (attention, teaching, sentinels)."""

    position: int
    phase: str
    params: dict[str, Any]
    seed: int
    sequence: int | None = None
    query: int | None = None
    sentinel: str | None = None
    strength: float | None = None
    expected: int | None = None


class Planner:
    """The items of every session of ``campaign`` (clips drawn from ``sources``)."""

    def __init__(self, campaign: Campaign, sources: Sources) -> None:
        self.c = campaign
        self.sources = sources
        self.s = campaign.session
        self.first_question = 2 + self.s.teaching
        self.questions = (
            campaign.jnd.sequences * campaign.jnd.questions
            if campaign.kind == "jnd"
            else campaign.afc.questions
        )
        self.length = self.first_question + self.questions
        self._pool: Any = None

    # -- layout --------------------------------------------------------------------------
    def phase(self, position: int) -> str | None:
        """The phase of ``position`` (None past the last question: the comment is next)."""
        if position == 0:
            return CALIBRATION
        if position == 1:
            return ATTENTION
        if position < self.first_question:
            return TEACHING
        return QUESTION if position < self.length else None

    def question_index(self, position: int) -> int:
        return position - self.first_question

    def jnd_place(self, position: int) -> tuple[int, int]:
        """``(sequence, query)`` of a JND question."""
        j = self.question_index(position)
        return j // self.c.jnd.questions, j % self.c.jnd.questions

    @functools.lru_cache(maxsize=4096)  # noqa: B019 (one planner per server, bounded)
    def sentinels(self, listener: int, sequence: int) -> dict[int, str]:
        """Query (JND: within the sequence; 2AFC: question index) -> sentinel kind."""
        n = self.c.jnd.questions if self.c.kind == "jnd" else self.c.afc.questions
        first = 1 if self.c.kind == "jnd" else 0
        count = min(int(round(n * self.s.sentinel_share)), n - first)
        rng = np.random.default_rng(derive_seed(self.c.seed, _SENTINEL, listener, sequence))
        picked = sorted(int(q) for q in rng.choice(np.arange(first, n), count, replace=False))
        kinds = ["different", "same"] if self.c.kind == "jnd" else ["a", "b"]
        if rng.random() < 0.5:
            kinds.reverse()
        return {q: kinds[k % 2] for k, q in enumerate(picked)}

    def item_seed(self, listener: int, position: int) -> int:
        return derive_seed(self.c.seed, _ITEM, listener, position)

    # -- items ---------------------------------------------------------------------------
    def item(
        self, listener: int, position: int, history: list[tuple[float, int]] | None = None
    ) -> Item | None:
        """The item at ``position`` of listener ``listener`` (None: the questions are
        over); ``history`` is the ``(strength, answer)`` list of the JND sequence so far."""
        phase = self.phase(position)
        seed = self.item_seed(listener, position)
        if phase is None:
            return None
        if phase == CALIBRATION:
            return self._calibration(listener, position, seed)
        if phase == ATTENTION:
            return self._attention(listener, position, seed)
        if phase == TEACHING:
            return self._teaching(listener, position, seed)
        if self.c.kind == "jnd":
            return self._jnd_question(listener, position, seed, history or [])
        return self._afc_question(listener, position, seed)

    def _calibration(self, listener: int, position: int, seed: int) -> Item:
        speech = self.sources.ids("speech")  # one clip for every listener: rendered once
        rng = np.random.default_rng(derive_seed(self.c.seed, _CALIBRATION))
        source_id = speech[int(rng.integers(len(speech)))]
        params = {"phase": CALIBRATION, "source_id": source_id, "loud_db": LOUD_DB}
        params["soft_db"] = SOFT_DB
        return Item(position, CALIBRATION, params, seed)

    def _attention(self, listener: int, position: int, seed: int) -> Item:
        rng = np.random.default_rng(derive_seed(self.c.seed, _ATTENTION, listener))
        n = len(HARVARD_SENTENCES)
        chosen = sorted(int(i) for i in rng.choice(n, ATTENTION_SENTENCES, replace=False))
        heard = {w for i in chosen for w in _words(HARVARD_SENTENCES[i])}
        # the word to find: a long one of the middle sentence; the others are heard nowhere
        middle = _words(HARVARD_SENTENCES[chosen[1]])
        target = sorted({w for w in middle if len(w) >= 5} or {w for w in middle if len(w) >= 4})
        word = target[int(rng.integers(len(target)))]
        decoys = sorted({w for w in _all_words() if len(w) >= 5 and w not in heard})
        picks = [decoys[int(k)] for k in rng.choice(len(decoys), ATTENTION_CHOICES - 1, False)]
        choices = picks + [word]
        order = rng.permutation(len(choices))
        choices = [choices[int(k)] for k in order]
        speaker = SPEAKERS[int(rng.integers(len(SPEAKERS)))].id
        params = {
            "phase": ATTENTION,
            "sentences": chosen,
            "speaker": speaker,
            "choices": choices,
        }
        return Item(position, ATTENTION, params, seed, expected=choices.index(word))

    def _teaching(self, listener: int, position: int, seed: int) -> Item:
        t = position - 2
        rng = np.random.default_rng(derive_seed(self.c.seed, _TEACH, listener, t))
        if self.c.kind == "jnd":
            base = self.sequence(listener, 0)
            if t == 0:  # clearly different: the direction at the top of the range
                chain = Axis.from_dict(base["axis"]).chain(self.c.strength.high, self.sources)
                params = {**base, "chain": chain.to_list(), "strength": self.c.strength.high}
                expected = 1
            else:  # the same recording twice
                params = {**base, "chain": [], "strength": 0.0}
                expected = 0
            params.update(phase=TEACHING, teaching=t)
            return Item(position, TEACHING, params, seed, expected=expected)
        base = {"source": self.triplet(0)}
        ref_only: list[dict[str, Any]] = []
        strong = self._sentinel_chain(rng)
        a, b = (ref_only, strong) if t == 0 else (strong, ref_only)
        params = {**base, "phase": TEACHING, "teaching": t, "chain_a": a, "chain_b": b}
        return Item(position, TEACHING, params, seed, expected=0 if t == 0 else 1)

    @functools.lru_cache(maxsize=4096)  # noqa: B019 (one planner per server, bounded)
    def sequence(self, listener: int, sequence: int) -> dict[str, Any]:
        """A JND sequence's reference and direction (the ``jnd`` recipe's draws)."""
        c = self.c
        rng = np.random.default_rng(derive_seed(c.seed, _SEQ, listener, sequence))
        speech = long_enough(self.sources, "speech", c.clip_seconds)
        source_id = speech[int(rng.integers(len(speech)))]
        samples = int(round(c.clip_seconds * c.sample_rate))
        _, offset = cut_clip(self.sources, source_id, c.sample_rate, samples, rng)
        ref_axis = sample_axis(rng, c.families)
        ref_chain = ref_axis.chain(float(rng.uniform(0.0, c.reference_strength)), self.sources)
        axis = sample_axis(rng, c.families)
        lo, hi = c.strength.low, c.strength.high
        start = c.jnd.start_strength if c.jnd.start_strength is not None else rng.uniform(lo, hi)
        return {
            "clip": {"source_id": source_id, "offset_s": offset},
            "reference_chain": ref_chain.to_list(),
            "axis": axis.to_dict(),
            "start": float(np.clip(start, lo, hi)),
        }

    def _jnd_question(
        self, listener: int, position: int, seed: int, history: list[tuple[float, int]]
    ) -> Item:
        seq, q = self.jnd_place(position)
        base = self.sequence(listener, seq)
        kind = self.sentinels(listener, seq).get(q)
        params: dict[str, Any] = {**base, "phase": QUESTION, "sequence": seq, "query": q}
        if kind is not None:
            rng = np.random.default_rng(seed)
            chain = self._sentinel_chain(rng) if kind == "different" else []
            params.update(chain=chain, sentinel=kind, strength=None)
            expected = 1 if kind == "different" else 0
            return Item(position, QUESTION, params, seed, seq, q, kind, None, expected)
        lo, hi = self.c.strength.low, self.c.strength.high
        start = float(base["start"])
        prior = Prior(mu=start, mu_sd=50.0, sigma=self.c.jnd.prior_sigma)
        rho = next_strength(history, np.random.default_rng(seed), start=start, prior=prior)
        rho = float(np.clip(rho, lo, hi))
        steps = Axis.from_dict(base["axis"]).chain(rho, self.sources).to_list()
        params.update(chain=steps, sentinel=None, strength=rho)
        return Item(position, QUESTION, params, seed, seq, q, None, rho)

    def _sentinel_chain(self, rng: np.random.Generator) -> list[dict[str, Any]]:
        axis = Axis((self.c.sentinel_family,), (1.0,), int(rng.integers(2**31)))
        return axis.chain(self.c.sentinel_strength, self.sources).to_list()

    # -- 2AFC ----------------------------------------------------------------------------
    def pool_index(self, listener: int, question: int) -> int:
        """The pool triplet of a listener's non-sentinel question: listeners take the pool
        in turns, so its triplets gather votes evenly."""
        kinds = self.sentinels(listener, 0)
        plain = [q for q in range(self.c.afc.questions) if q not in kinds]
        return ((listener - 1) * len(plain) + plain.index(question)) % self.c.afc.pool

    def triplet(self, index: int) -> dict[str, Any]:
        """Params of pool triplet ``index``: a live ``triplet`` recipe row's, or a
        reference to a row of ``2afc.dataset``."""
        if self.c.afc.dataset is not None:
            ids = self._dataset_ids()
            return {"dataset": self.c.afc.dataset, "example_id": ids[index % len(ids)]}
        return dict(self._live(index)["params"])

    def live_row(self, index: int) -> dict[str, Any]:
        """The live pool triplet as the recipe made it (audio included)."""
        return self._live(index)

    @functools.lru_cache(maxsize=1024)  # noqa: B019 (one planner per server, bounded)
    def _live(self, index: int) -> dict[str, Any]:
        from pamflow.datasets import get_recipe

        spec = self.c.recipe_spec()
        rng = np.random.default_rng(example_seed(self.c.seed, index))
        return get_recipe("triplet").make_example(spec, self.sources, index, rng)

    def _dataset_ids(self) -> list[str]:
        if self._pool is None:
            from pamflow.storage import Dataset

            ds = Dataset.open(str(self.c.afc.dataset))
            ids = ds.to_table(["example_id"]).column("example_id").to_pylist()
            self._pool = ids[: self.c.afc.pool]
        return list(self._pool)

    def _afc_question(self, listener: int, position: int, seed: int) -> Item:
        q = self.question_index(position)
        kind = self.sentinels(listener, 0).get(q)
        if kind is None:
            k = self.pool_index(listener, q)
            params = {"phase": QUESTION, "query": q, "pool_index": k, **self.triplet(k)}
            params["sentinel"] = None
            return Item(position, QUESTION, params, seed, None, q, None, None)
        rng = np.random.default_rng(seed)
        base = {"source": self.triplet(int(rng.integers(self.c.afc.pool)))}
        strong = self._sentinel_chain(rng)
        a_is_ref = kind == "a"  # the reference itself is the closer one
        params = {
            **base,
            "phase": QUESTION,
            "query": q,
            "sentinel": kind,
            "chain_a": [] if a_is_ref else strong,
            "chain_b": strong if a_is_ref else [],
        }
        return Item(position, QUESTION, params, seed, None, q, kind, None, 0 if a_is_ref else 1)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


@functools.cache
def _all_words() -> tuple[str, ...]:
    return tuple(sorted({w for s in HARVARD_SENTENCES for w in _words(s)}))


def attention_text(params: dict[str, Any]) -> str:
    """The long sentence of an attention item."""
    return " ".join(HARVARD_SENTENCES[int(i)] for i in params["sentences"])


__all__ = [
    "ATTENTION",
    "CALIBRATION",
    "QUESTION",
    "TEACHING",
    "Item",
    "Planner",
    "attention_text",
]
