"""A simulated person taking a listening test over HTTP, as a browser would: open the start
page, start a session, then for each page fetch its audio, decide and post the answer.

It answers from the audio it downloaded, with a
:class:`~pamflow.datasets.listener.SimulatedListener` (JND: "different" with the
probability of the listener's psychometric function of the pair's perceptual distance;
identical files are "same"; 2AFC: B with the probability
:func:`pamflow.datasets.triplet.p_b_closer` of the two distances). The calibration is confirmed; the attention check is
answered by ``oracle(item_id, choices)`` when given (a test that knows the sentence), at
random otherwise. Every request is timed (:attr:`Visitor.timings`), which the load test
and ``benchmarks/listen_load.py`` summarise.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np

from pamflow.audio import decode
from pamflow.datasets.listener import SimulatedListener, perceptual_distance
from pamflow.datasets.triplet import p_b_closer

_PHASE = re.compile(r'<main data-phase="([a-z-]+)"')
_ITEM = re.compile(r'name="item" value="(\d+)"')
_ROLE = re.compile(r'<audio[^>]*data-role="(\w+)"[^>]*src="([^"]+)"')
_WORD = re.compile(r'id="word-(\d+)"[^>]*>([^<]+)<')


@dataclasses.dataclass
class Step:
    """A page as the visitor read it."""

    phase: str
    item: int | None
    audio: dict[str, str]
    choices: list[str]
    html: str


def read_page(text: str) -> Step:
    phase = _PHASE.search(text)
    item = _ITEM.search(text)
    return Step(
        phase.group(1) if phase else "unknown",
        int(item.group(1)) if item else None,
        dict(_ROLE.findall(text)),
        [w for _, w in sorted(_WORD.findall(text), key=lambda m: int(m[0]))],
        text,
    )


class Visitor:
    """One simulated person (see the module docstring). ``client`` is an
    ``httpx.AsyncClient`` on the server's base URL."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        listener: SimulatedListener,
        *,
        seed: int = 0,
        oracle: Callable[[int, list[str]], int] | None = None,
        fetch_audio: bool = True,
    ) -> None:
        self.client = client
        self.listener = listener
        self.rng = np.random.default_rng(seed)
        self.oracle = oracle
        self.fetch_audio = fetch_audio
        self.link: str | None = None
        self.timings: list[tuple[str, float, int]] = []
        self.retries = 0  # requests sent again after a dropped connection
        self.answered: list[tuple[int, str, int]] = []  # (item, phase, answer) acknowledged

    async def _request(self, kind: str, method: str, url: str, **kw: Any) -> httpx.Response:
        """One request, timed; sent once more after a dropped connection (as a browser
        does; sending an answer again is harmless: the first one stands)."""
        import asyncio

        for attempt in (0, 1):
            t0 = time.perf_counter()
            try:
                r = await self.client.request(method, url, **kw)
            except httpx.TransportError:
                if attempt:
                    raise
                self.retries += 1
                await asyncio.sleep(0.2)
                continue
            self.timings.append((kind, time.perf_counter() - t0, r.status_code))
            return r
        raise AssertionError("unreachable")

    async def start(self) -> str:
        await self._request("page", "GET", "/")
        r = await self._request("start", "POST", "/start", data={})
        if r.status_code != 303:
            raise RuntimeError(f"POST /start answered {r.status_code}: {r.text[:200]}")
        self.link = r.headers["location"]
        return self.link

    async def page(self) -> Step:
        assert self.link is not None
        r = await self._request("page", "GET", self.link)
        if r.status_code != 200:
            raise RuntimeError(f"GET {self.link} answered {r.status_code}")
        return read_page(r.text)

    async def audio(self, step: Step) -> dict[str, tuple[bytes, np.ndarray, int]]:
        out = {}
        for role, url in step.audio.items():
            r = await self._request("audio", "GET", url)
            if r.status_code != 200:
                raise RuntimeError(f"GET {url} answered {r.status_code}")
            x, sr = decode(r.content)
            out[role] = (r.content, x, sr)
        return out

    def decide(self, step: Step, audio: dict[str, tuple[bytes, np.ndarray, int]]) -> int:
        if step.phase == "calibration":
            return 1
        if step.phase == "attention":
            if self.oracle is not None and step.item is not None:
                return self.oracle(step.item, step.choices)
            return int(self.rng.integers(len(step.choices)))
        if not audio:  # not listening: a coin flip
            return int(self.rng.integers(2))
        ref = audio["reference"]
        if "test" in audio:
            test = audio["test"]
            if test[0] == ref[0]:
                return 0
            return int(self.rng.random() < self.listener.p_different(self._d(ref, test)))
        p_b = p_b_closer(self.listener, self._d(ref, audio["a"]), self._d(ref, audio["b"]))
        return int(self.rng.random() < p_b)

    @staticmethod
    def _d(a: tuple[bytes, np.ndarray, int], b: tuple[bytes, np.ndarray, int]) -> float:
        return perceptual_distance(a[1], b[1], a[2])

    async def answer(self, step: Step, value: int) -> httpx.Response:
        assert self.link is not None and step.item is not None
        form = {"item": str(step.item), "answer": str(value), "plays": "2", "ms": "1500"}
        r = await self._request("answer", "POST", f"{self.link}/answer", data=form)
        if r.status_code in (200, 303):
            self.answered.append((step.item, step.phase, value))
        return r

    async def comment(self, text: str = "") -> httpx.Response:
        assert self.link is not None
        return await self._request(
            "comment", "POST", f"{self.link}/comment", data={"comment": text}
        )

    async def run(
        self, *, think: float = 0.0, deadline: float | None = None, comment: str = ""
    ) -> str:
        """Take the test to its end (or until ``deadline``, a ``time.monotonic()``);
        returns the phase it stopped at (``done`` when finished)."""
        import asyncio

        if self.link is None:
            await self.start()
        while True:
            if deadline is not None and time.monotonic() > deadline:
                return "stopped"
            step = await self.page()
            if step.phase == "done":
                return "done"
            if step.phase == "comment":
                await self.comment(comment)
                continue
            audio = await self.audio(step) if self.fetch_audio else {}
            if think:
                await asyncio.sleep(float(self.rng.uniform(0.5, 1.5)) * think)
            r = await self.answer(step, self.decide(step, audio))
            if r.status_code not in (200, 303):
                raise RuntimeError(f"answer to item {step.item} refused: {r.status_code}")


@dataclasses.dataclass
class Load:
    """What :func:`load` measured: the visitors, every timed request ``(kind, seconds,
    status)``, the acknowledged answers and the seconds it ran."""

    visitors: list[Visitor]
    seconds: float

    @property
    def timings(self) -> list[tuple[str, float, int]]:
        return [t for v in self.visitors for t in v.timings]

    @property
    def answers(self) -> int:
        return sum(len(v.answered) for v in self.visitors)

    def percentile(self, q: float, kind: str | None = None) -> float:
        """The ``q``-th percentile of the response times (seconds) of ``kind`` requests
        (``page``, ``audio``, ``answer``...; None: all)."""
        times = [t for k, t, _ in self.timings if kind is None or k == kind]
        return float(np.percentile(times, q)) if times else float("nan")

    def errors(self) -> int:
        return sum(1 for _, _, status in self.timings if status >= 400)

    def retries(self) -> int:
        return sum(v.retries for v in self.visitors)


async def load(
    base_url: str,
    listeners: int,
    seconds: float,
    *,
    think: float = 0.5,
    seed: int = 0,
    fetch_audio: bool = True,
) -> Load:
    """``listeners`` visitors taking the test at once on ``base_url`` for ``seconds``
    (each stops at the deadline or when finished; ``think``: their mean pause, in seconds,
    before each answer). Their listeners are drawn around a 0.5 dB threshold."""
    import asyncio

    limits = httpx.Limits(
        max_connections=listeners * 2, max_keepalive_connections=listeners, keepalive_expiry=2.0
    )
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        rng = np.random.default_rng(seed)
        visitors = [
            Visitor(
                client,
                SimulatedListener(float(rng.lognormal(np.log(0.5), 0.3)), 0.15, 0.02, seed + k),
                seed=seed + k,
                fetch_audio=fetch_audio,
            )
            for k in range(listeners)
        ]
        t0 = time.monotonic()
        await asyncio.gather(*(v.run(think=think, deadline=deadline) for v in visitors))
    return Load(visitors, time.monotonic() - t0)


__all__ = ["Load", "Step", "Visitor", "load", "read_page"]
