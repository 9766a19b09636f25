"""The embedded demo corpus: speech, noises, RIRs, music and instrument clips made offline.

:func:`make_demo_corpus` writes every file (content from :mod:`pamflow.corpus.demo.synth`
and :mod:`pamflow.corpus.demo.speech`) and indexes it with :func:`pamflow.corpus.index.index_corpus`.
"""

from __future__ import annotations

import io
import os
import shutil
import uuid
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from pamflow import measures
from pamflow.audio import decode, encode
from pamflow.corpus.demo import synth
from pamflow.corpus.demo.speech import HARVARD_SENTENCES, SAMPLE_RATE, SPEAKERS, Speaker
from pamflow.corpus.index import MANIFEST_NAME, index_corpus, write_index

#: voices heard in babble noise (not the corpus's own speakers)
BABBLE_TALKERS = tuple(
    Speaker(f"bab{i + 1}", v, r, p)
    for i, (v, r, p) in enumerate(
        [
            ("en+m2", 170, 40),
            ("en+f4", 175, 55),
            ("en-us+m6", 185, 50),
            ("en+f5", 160, 60),
            ("en-gb-x-rp+m8", 165, 45),
            ("en-us+Annie", 180, 55),
            ("en+m4", 150, 35),
        ]
    )
)


def _rng(seed: int, *keys: str | int) -> np.random.Generator:
    """An independent generator per (seed, component...): content does not depend on how
    many other files are made, so a smaller ``scale`` makes a subset-like corpus."""
    words = [int(seed)] + [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    return np.random.default_rng(words)


def _trim(x: np.ndarray, sr: int, floor_db: float = -45.0) -> np.ndarray:
    """Cut leading/trailing silence below ``floor_db`` re peak, keeping 50/100 ms margins."""
    idx = np.nonzero(np.abs(x) > np.max(np.abs(x)) * 10 ** (floor_db / 20))[0]
    if idx.size == 0:
        return x
    return x[max(0, idx[0] - int(0.05 * sr)) : idx[-1] + int(0.1 * sr)]


def _pcm16_flac(x: np.ndarray, sr: int) -> bytes:
    """espeak's int16 samples, stored exactly (x is int16 / 32768)."""
    buf = io.BytesIO()
    sf.write(buf, np.round(x * 32768.0).astype(np.int16), sr, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def _demo_files(root: Path, seed: int, scale: float) -> dict[str, dict[str, Any]]:
    """Write every demo file under ``root``; return the extra metadata by id."""
    sr = SAMPLE_RATE
    meta: dict[str, dict[str, Any]] = {}

    def put(fid: str, data: bytes, **extra: Any) -> None:
        (root / fid).parent.mkdir(parents=True, exist_ok=True)
        (root / fid).write_bytes(data)
        meta[fid] = extra

    def count(full: int, least: int = 1) -> int:
        return max(least, round(full * scale))

    n = len(HARVARD_SENTENCES)
    for spk in SPEAKERS[: count(len(SPEAKERS), 2)]:
        order, j = _rng(seed, "speech", spk.id).permutation(n), 0
        for u in range(count(8)):
            text = HARVARD_SENTENCES[order[j % n]]
            audio, rate = spk.say(text)
            if _trim(audio, rate).size < 1.8 * rate:  # under ~1.7 s of speech: add a sentence
                j += 1
                text += " " + HARVARD_SENTENCES[order[j % n]]
                audio, rate = spk.say(text)
            j += 1
            put(
                f"speech/{spk.id}_{u + 1:02d}.flac",
                _pcm16_flac(_trim(audio, rate), rate),
                label=spk.id,
                text=text,
            )

    for kind in synth.NOISE_TYPES:
        for i in range(count(2)):

            def utterance(talker: int, k: int, i: int = i) -> tuple[np.ndarray, int]:
                spk = BABBLE_TALKERS[(talker + 3 * i) % len(BABBLE_TALKERS)]
                pick = _rng(seed, "babble", i, talker, k).integers(n)
                return spk.say(HARVARD_SENTENCES[pick])

            x = synth.noise(
                kind,
                _rng(seed, "noise", kind, i),
                int(max(1.0, 6 * scale) * sr),
                sr,
                variant=i,
                utterance=utterance,
            )
            put(f"noise/{kind}_{i + 1}.flac", encode(x, sr), label=kind)

    n_rir = count(16, 3)
    for i, target in enumerate(np.geomspace(0.12, 2.4, n_rir)):
        rng = _rng(seed, "rir", i)
        q = (0.618034 * i + rng.uniform(0.0, 0.1)) % 1.0  # spread distances, hence DRRs
        h, _ = synth.room_impulse_response(rng, target * rng.uniform(0.9, 1.1), sr, distance_q=q)
        data = encode(h, sr)
        stored, _ = decode(data)  # measure exactly what is stored
        rt, drr = measures.rt60(stored, sr), measures.drr_db(stored, sr)
        put(
            f"rir/room{i + 1:02d}.flac",
            data,
            label=f"room{i + 1:02d}",
            rt60_s=rt if np.isfinite(rt) else None,
            drr_db=drr if np.isfinite(drr) else None,
        )

    for style in list(synth.MUSIC_STYLES)[: count(len(synth.MUSIC_STYLES))]:
        x = synth.music_clip(style, _rng(seed, "music", style), max(2.0, 8 * scale), sr)
        put(f"music/{style}.flac", encode(x, sr), label=style)

    for i in range(count(6)):
        for label in synth.INSTRUMENTS:  # the same melody on both instruments
            x = synth.instrument_clip(
                label, _rng(seed, "melody", i), _rng(seed, label, i), max(1.5, 4 * scale), sr
            )
            put(f"instrument/{label}_{i + 1:02d}.flac", encode(x, sr), label=label)
    return meta


def make_demo_corpus(
    out_dir: str | os.PathLike[str], seed: int = 0, *, scale: float = 1.0, overwrite: bool = False
) -> Path:
    """Build the embedded demo corpus in ``out_dir``, offline and deterministically.

    Folders (the manifest's ``kind``), all mono at 22050 Hz: ``speech/`` (8 espeak talkers
    x 8 Harvard-sentence utterances of ~2-4 s, FLAC 16-bit exact, label = speaker id, with
    ``text``); ``noise/`` (2 x 6 s of each of :data:`pamflow.corpus.demo.synth.NOISE_TYPES`, label =
    type); ``rir/`` (16 shoebox RIRs, label = room id, measured ``rt60_s`` (T20) and
    ``drr_db``); ``music/`` (6 styles x 8 s); ``instrument/`` (6 melodies x 4 s on a
    ``good`` and a ``cheap`` instrument). Non-speech files are FLAC 24-bit.

    ``scale`` in (0, 1] shrinks counts and durations (for tests); every noise type and both
    instruments stay. The same ``(seed, scale)`` gives bit-identical files. The corpus is
    built in a temporary folder beside ``out_dir`` and renamed into place once its
    manifest (:data:`MANIFEST_NAME`, written last) is complete. An existing non-empty
    ``out_dir`` is an error unless ``overwrite``.
    """
    if not 0.0 < scale <= 1.0:
        raise ValueError(f"make_demo_corpus: scale must be in (0, 1], got {scale}")
    out = Path(out_dir)
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(
            f"make_demo_corpus: {out} exists and is not empty (pass overwrite=True to replace it)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        meta = _demo_files(tmp, seed, scale)
        result = index_corpus(str(tmp), metadata=meta, relative_paths=True)
        if result.quarantine:
            raise RuntimeError(
                f"demo corpus: generated files were quarantined: {result.quarantine[:3]}"
            )
        write_index(result, str(tmp / MANIFEST_NAME))
        if out.exists():
            if overwrite:
                trash = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
                out.rename(trash)
                tmp.rename(out)
                shutil.rmtree(trash, ignore_errors=True)
                return out
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
