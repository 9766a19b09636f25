"""The audio of an item, made from its params alone, level-matched, encoded and cached.

``render(params)`` gives ``{role: float32 audio}`` and the gains it applied. JND items
(roles ``reference`` and ``test``) replay the ``jnd`` recipe's keys: the clip at its
recorded offset, the reference chain, then the item's chain on the reference. 2AFC items
(``reference``, ``a``, ``b``) are the ``triplet`` recipe's replay of a live pool triplet,
or a row of ``2afc.dataset`` (resampled to the campaign's rate); sentinels and teaching
examples apply ``chain_a`` / ``chain_b`` to the reference of their ``source``. The
calibration clip alternates a speech clip loud and soft; the attention sentence is
synthetic speech (espeak-ng, as in the demo corpus).

Level matching. The clips played together are scaled to the same integrated loudness
(``loudness_lufs``, BS.1770); if that would push a peak above -0.5 dBFS, all of them are
lowered by the same amount, so they stay matched. Identical clips get identical gains (a
"same" pair stays bit-identical). The gains (dB) are part of what :func:`render` returns
and of what the export records.

The files served are FLAC, 24-bit: the encoding a dataset stores its audio in, so an
exported row holds the very samples the listener heard. They are cached in memory, at
most ``cache_mb``, least recently used first out; a file asked for while it is being rendered waits for that rendering.
"""

from __future__ import annotations

import collections
import hashlib
import json
import threading
from concurrent.futures import Future
from typing import Any

import numpy as np

from pamflow.audio import encode
from pamflow.audio.dsp import resample
from pamflow.audio.loudness import loudness
from pamflow.corpus.demo.speech import SPEAKERS
from pamflow.corpus.sources import Sources
from pamflow.datasets.base import clip_at
from pamflow.listen.campaign import Campaign
from pamflow.listen.plan import ATTENTION, CALIBRATION, attention_text
from pamflow.perturbations import Chain
from pamflow.storage.codec import decode_audio

#: the highest peak level matching allows, linear (-0.5 dBFS)
PEAK = 10 ** (-0.5 / 20)


def level_match(
    clips: list[np.ndarray], sample_rate: int, target: float | None
) -> tuple[list[np.ndarray], list[float]]:
    """``clips`` scaled to ``target`` LUFS together (see the module docstring); returns
    the scaled clips and their gains in dB. ``target`` None: unchanged, gains 0."""
    if target is None:
        return [np.asarray(c, dtype=np.float32) for c in clips], [0.0] * len(clips)
    levels = [loudness(c, sample_rate) for c in clips]
    gains = [target - lv if np.isfinite(lv) else 0.0 for lv in levels]
    peaks = [float(np.max(np.abs(c))) if c.size else 0.0 for c in clips]
    over = max(
        (
            20 * np.log10(p) + g - 20 * np.log10(PEAK)
            for p, g in zip(peaks, gains, strict=True)
            if p > 0
        ),
        default=0.0,
    )
    if over > 0:
        gains = [g - over for g in gains]
    out = [
        np.clip(np.asarray(c, dtype=np.float64) * 10 ** (g / 20), -1.0, 1.0).astype(np.float32)
        for c, g in zip(clips, gains, strict=True)
    ]
    return out, [float(g) for g in gains]


class Renderer:
    """Renders and caches the audio of a campaign's items (thread-safe)."""

    def __init__(self, campaign: Campaign, sources: Sources) -> None:
        self.c = campaign
        self.sources = sources
        self.sr = campaign.sample_rate
        self.samples = int(round(campaign.clip_seconds * campaign.sample_rate))
        self.spec = campaign.recipe_spec()
        self.budget = campaign.cache_mb * 2**20
        self._cache: collections.OrderedDict[str, dict[str, bytes]] = collections.OrderedDict()
        self._size = 0
        self._pending: dict[str, Future[dict[str, bytes]]] = {}
        self._lock = threading.Lock()
        self._rows: dict[str, dict[str, Any]] = {}
        self.hits = self.misses = 0

    # -- audio ---------------------------------------------------------------------------
    def render(self, params: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """``({role: audio}, {role: gain_db})`` of an item (see the module docstring)."""
        phase = params.get("phase")
        if phase == CALIBRATION:
            return {"calibration": self._calibration(params)}, {"calibration": 0.0}
        if phase == ATTENTION:
            return {"sentence": self._sentence(params)}, {"sentence": 0.0}
        if self.c.kind == "jnd":
            clean = clip_at(
                self.sources,
                params["clip"]["source_id"],
                self.sr,
                self.samples,
                params["clip"]["offset_s"],
            )
            reference = Chain.from_list(params["reference_chain"]).apply(
                clean, self.sr, self.sources
            )
            test = Chain.from_list(params["chain"]).apply(reference, self.sr, self.sources)
            roles, clips = ["reference", "test"], [reference, test]
        else:
            roles = ["reference", "a", "b"]
            if "source" in params:  # sentinels and teaching: chains on a pool reference
                reference = self._triplet(params["source"])[0]
                clips = [reference] + [
                    Chain.from_list(params[k]).apply(reference, self.sr, self.sources)
                    for k in ("chain_a", "chain_b")
                ]
            else:
                clips = list(self._triplet(params))
        matched, gains = level_match(clips, self.sr, self.c.loudness_lufs)
        return dict(zip(roles, matched, strict=True)), dict(zip(roles, gains, strict=True))

    def _triplet(self, p: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if "dataset" in p:
            row = self._dataset_row(p["dataset"], p["example_id"])
            return row["reference"], row["a"], row["b"]
        from pamflow.datasets.triplet import replay

        return replay({"params": p}, self.spec, self.sources)

    def _dataset_row(self, path: str, example_id: str) -> dict[str, Any]:
        """A served dataset's triplet, decoded at the campaign's rate. The pool's rows (the
        dataset's first ``2afc.pool``) are read once, still encoded; each is decoded when
        first asked for."""
        from pamflow.storage import Dataset

        with self._lock:
            found = self._rows.get(example_id)
        if found is None:
            ds = Dataset.open(path)
            encoded: dict[str, Any] = {}
            for row in ds.iter_rows(["example_id", "reference", "a", "b"], decode_json=False):
                encoded[row["example_id"]] = row
                if len(encoded) >= self.c.afc.pool:
                    break
            with self._lock:
                for eid, row in encoded.items():
                    self._rows.setdefault(eid, {"encoded": row})
                found = self._rows.get(example_id)
            if found is None:
                raise KeyError(f"{path}: no row {example_id!r} among its first {self.c.afc.pool}")
        if "encoded" in found:
            out: dict[str, Any] = {}
            for col in ("reference", "a", "b"):
                x, sr = decode_audio(found["encoded"][col])
                out[col] = resample(x, sr, self.sr).astype(np.float32) if sr != self.sr else x
            n = min(v.size for v in out.values())
            found = {k: v[:n] for k, v in out.items()}
            with self._lock:
                self._rows[example_id] = found
        return found

    def _calibration(self, params: dict[str, Any]) -> np.ndarray:
        x = self.sources.load(params["source_id"], self.sr)[: int(3 * self.sr)]
        target = self.c.loudness_lufs if self.c.loudness_lufs is not None else -23.0
        base = x * 10 ** ((target - loudness(x, self.sr)) / 20)
        gap = np.zeros(int(0.3 * self.sr), dtype=np.float32)
        parts = []
        for k in range(4):  # loud, soft, loud, soft
            db = params["loud_db"] if k % 2 == 0 else params["soft_db"]
            parts += [np.clip(base * 10 ** (db / 20), -PEAK, PEAK).astype(np.float32), gap]
        return np.concatenate(parts)

    def _sentence(self, params: dict[str, Any]) -> np.ndarray:
        speaker = next(s for s in SPEAKERS if s.id == params["speaker"])
        audio, rate = speaker.say(attention_text(params))
        x = resample(audio, rate, self.sr) if rate != self.sr else audio
        return level_match([x], self.sr, self.c.loudness_lufs)[0][0]

    # -- files and cache -----------------------------------------------------------------
    @staticmethod
    def key(params: dict[str, Any]) -> str:
        text = json.dumps(params, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def audio_file(self, params: dict[str, Any], role: str) -> bytes:
        """The FLAC file of ``role`` of an item (``KeyError`` for a role it has not)."""
        return self.files(params)[role]

    def files(self, params: dict[str, Any]) -> dict[str, bytes]:
        """Every role's FLAC file of an item, rendered once however many ask at once."""
        key = self.key(params)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                self.hits += 1
                return hit
            pending = self._pending.get(key)
            mine = pending is None
            if mine:
                pending = self._pending[key] = Future()
                self.misses += 1
        assert pending is not None
        if not mine:
            return pending.result()
        try:
            audio, _ = self.render(params)
            files = {r: encode(x, self.sr) for r, x in audio.items()}
        except BaseException as e:
            with self._lock:
                self._pending.pop(key, None)
            pending.set_exception(e)
            raise
        self.store(key, files)
        with self._lock:
            self._pending.pop(key, None)
        pending.set_result(files)
        return files

    def store(self, key: str, files: dict[str, bytes]) -> None:
        size = sum(len(v) for v in files.values())
        with self._lock:
            if key in self._cache:
                return
            self._cache[key] = files
            self._size += size
            while self._size > self.budget and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._size -= sum(len(v) for v in old.values())

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "items": len(self._cache),
                "bytes": self._size,
                "hits": self.hits,
                "misses": self.misses,
            }


__all__ = ["PEAK", "Renderer", "level_match"]
