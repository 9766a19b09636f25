"""Index audio folders into a manifest, quarantine bad files, and build the demo corpus.

:func:`index_corpus` walks a local folder or any fsspec URL, in sorted order, and reads
every file whose extension is in :data:`pamflow.audio.AUDIO_EXTENSIONS`. A good file
becomes a manifest row (columns of :data:`MANIFEST_SCHEMA`); a bad one goes to the
quarantine table (``id, path, reason``) with a one-line reason that starts with its class:

==================  ==========================================================
``empty:``          0 bytes, or a valid header with 0 audio frames
``unreadable:``     not an audio file any decoder accepts (or no decoder)
``corrupt:``        the header parses but the audio data cannot be decoded
``truncated:``      the header promises more audio than the file holds
``non-finite:``     NaN or inf samples (float formats)
``bad sample rate:`` below :data:`MIN_SAMPLE_RATE` or above :data:`MAX_SAMPLE_RATE` Hz
``too short:``      shorter than :data:`MIN_DURATION_S` seconds
``silent:``         peak below :data:`SILENCE_PEAK_DB` dBFS (about 1 LSB of 16-bit)
``error:``          anything unexpected (the exception's type and text)
==================  ==========================================================

One bad file never stops the index. :func:`write_index` writes the manifest as Parquet
and the quarantine table beside it as ``<stem>.quarantine.parquet`` (always, possibly
empty), each atomically. :func:`make_demo_corpus` builds the embedded demo corpus offline
(content from :mod:`pamflow.synth` and :mod:`pamflow.speech`) and indexes it with the same
code.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import re
import shutil
import struct
import uuid
import zlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

from pamflow import measures, synth
from pamflow.audio import AUDIO_EXTENSIONS, AudioError, decode, encode, load, loudness
from pamflow.speech import HARVARD_SENTENCES, SAMPLE_RATE, SPEAKERS, Speaker

MANIFEST_NAME = "manifest.parquet"
QUARANTINE_SUFFIX = ".quarantine.parquet"
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 384000
MIN_DURATION_S = 0.01
SILENCE_PEAK_DB = -90.0
#: columns filled only from the ``metadata`` argument of :func:`index_corpus`
EXTRA_COLUMNS = ("label", "text", "rt60_s", "drr_db")
#: containers whose header frame count is exact, so fewer decoded frames means truncation
_EXACT_HEADER = frozenset({".wav", ".flac", ".aiff", ".aif", ".au", ".snd", ".caf", ".w64"})

MANIFEST_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("path", pa.string()),
        ("kind", pa.string()),
        ("duration_s", pa.float64()),
        ("sample_rate", pa.int32()),
        ("channels", pa.int32()),
        ("num_frames", pa.int64()),
        ("loudness_lufs", pa.float64()),
        ("peak_db", pa.float64()),
        ("sha256", pa.string()),
        ("size_bytes", pa.int64()),
        ("label", pa.string()),
        ("text", pa.string()),
        ("rt60_s", pa.float64()),
        ("drr_db", pa.float64()),
    ]
)
QUARANTINE_SCHEMA = pa.schema([("id", pa.string()), ("path", pa.string()), ("reason", pa.string())])


@dataclass
class IndexResult:
    """What :func:`index_corpus` found: manifest rows and quarantined files, sorted by id."""

    manifest: list[dict[str, Any]] = field(default_factory=list)
    quarantine: list[dict[str, str]] = field(default_factory=list)

    @property
    def n_indexed(self) -> int:
        return len(self.manifest)

    @property
    def n_quarantined(self) -> int:
        return len(self.quarantine)

    @property
    def n_files(self) -> int:
        return self.n_indexed + self.n_quarantined

    def manifest_table(self) -> pa.Table:
        return pa.Table.from_pylist(self.manifest, schema=MANIFEST_SCHEMA)

    def quarantine_table(self) -> pa.Table:
        return pa.Table.from_pylist(self.quarantine, schema=QUARANTINE_SCHEMA)


class BadAudioFile(ValueError):
    """A file to quarantine; the message is its one-line reason."""


def _one_line(text: str, limit: int = 300) -> str:
    """One line, at most ``limit`` characters, without memory addresses (ffmpeg prints
    ``[ctx @ 0x55d5...]``), so a rebuild writes the same quarantine table."""
    text = re.sub(r"\[[^\]]*@ 0x[0-9a-fA-F]+\]\s*", "", " ".join(str(text).split()))
    text = re.sub(r"0x[0-9a-fA-F]{8,}", "0x?", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _wav_shortfall(raw: bytes) -> str | None:
    """A reason if a RIFF/WAVE file's data chunk promises more bytes than the file holds.

    (libsndfile quietly shortens such files instead of reporting them.) A data size of 0 or
    0xFFFFFFFF means "unknown" (streamed writers) and is accepted.
    """
    if len(raw) < 12 or raw[:4] not in (b"RIFF", b"RIFX") or raw[8:12] != b"WAVE":
        return None
    endian = "<" if raw[:4] == b"RIFF" else ">"
    pos, block = 12, 0
    while pos + 8 <= len(raw):
        chunk, size = raw[pos : pos + 4], struct.unpack(endian + "I", raw[pos + 4 : pos + 8])[0]
        if chunk == b"fmt " and pos + 22 <= len(raw):
            block = struct.unpack(endian + "H", raw[pos + 20 : pos + 22])[0]
        if chunk == b"data":
            have = len(raw) - pos - 8
            if size in (0, 0xFFFFFFFF) or have >= size:
                return None
            if block:
                return (
                    f"truncated: header promises {size // block} frames, "
                    f"only {have // block} present"
                )
            return f"truncated: data chunk promises {size} bytes, only {have} present"
        pos += 8 + size + (size & 1)
    return None


def _header_frames(raw: bytes, ext: str) -> int | None:
    if ext not in _EXACT_HEADER:
        return None
    try:
        frames = sf.info(io.BytesIO(raw)).frames
    except Exception:  # noqa: BLE001 - not parseable by libsndfile: nothing to compare
        return None
    return int(frames) if frames > 0 else None


def _classify(message: str, name: str) -> str:
    msg = message[len(name) + 2 :] if message.startswith(f"{name}: ") else message
    low = msg.lower()
    if low.startswith("truncated"):
        return msg
    if low.startswith("empty"):
        return "empty: 0 bytes" if low == "empty file" else "empty: " + msg
    if "nan or inf" in low:  # pamflow.audio.load: "holds NaN or inf samples"
        return "non-finite: " + msg
    return "unreadable: " + msg


def inspect_audio(raw: bytes, name: str, ext: str = "") -> dict[str, Any]:
    """Measure one audio file held in ``raw``; raise ``BadAudioFile(reason)`` if it is unusable.

    Returns ``duration_s, sample_rate, channels, num_frames, loudness_lufs, peak_db``.
    """
    if not raw:
        raise BadAudioFile("empty: 0 bytes")
    short = _wav_shortfall(raw) if ext in (".wav", "") else None
    if short:
        raise BadAudioFile(short)
    promised = _header_frames(raw, ext)
    try:
        data, sr = load(raw, mono=False, name=name)
    except AudioError as e:
        reason = _classify(str(e), name)
        if promised and reason.startswith("unreadable: "):
            reason = (
                f"corrupt: header reads ({promised} frames) but the audio data does not "
                f"decode ({reason.removeprefix('unreadable: ')})"
            )
        raise BadAudioFile(reason) from e
    except Exception as e:  # noqa: BLE001 - any decoder failure is a property of the file
        what = f"{type(e).__name__}: {e}"
        if promised:
            raise BadAudioFile(
                f"corrupt: header reads ({promised} frames) but the audio data "
                f"does not decode ({what})"
            ) from e
        raise BadAudioFile(f"unreadable: no decoder accepts it ({what})") from e
    frames, channels = int(data.shape[0]), int(data.shape[1]) if data.ndim == 2 else 1
    if promised and frames < promised:
        raise BadAudioFile(f"truncated: header promises {promised} frames, only {frames} decoded")
    if frames == 0:
        raise BadAudioFile("empty: 0 audio frames")
    if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
        raise BadAudioFile(
            f"bad sample rate: {sr} Hz outside {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz"
        )
    if frames / sr < MIN_DURATION_S:
        raise BadAudioFile(f"too short: {1000 * frames / sr:.2f} ms < {1000 * MIN_DURATION_S:g} ms")
    peak = float(np.max(np.abs(data)))
    peak_db = float(20.0 * np.log10(peak)) if peak > 0 else float("-inf")
    if peak_db < SILENCE_PEAK_DB:
        raise BadAudioFile(f"silent: peak {peak_db:.1f} dBFS below {SILENCE_PEAK_DB:g} dBFS")
    # BS.1770 sums channel powers (pyloudnorm weights up to 5 channels); more: mono mix
    x = data[:, 0] if channels == 1 else (data if channels <= 5 else data.mean(axis=1))
    return {
        "duration_s": frames / sr,
        "sample_rate": int(sr),
        "channels": channels,
        "num_frames": frames,
        "loudness_lufs": float(loudness(x, sr)),
        "peak_db": peak_db,
    }


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocol or "local" in protocol


def _check_metadata(metadata: Mapping[str, Mapping[str, Any]], ids: set[str]) -> None:
    for fid, extra in metadata.items():
        unknown = set(extra) - set(EXTRA_COLUMNS)
        if unknown:
            raise ValueError(
                f"metadata for {fid!r}: unknown column(s) {sorted(unknown)}; "
                f"allowed: {', '.join(EXTRA_COLUMNS)}"
            )
    missing = sorted(set(metadata) - ids)
    if missing:
        raise ValueError(
            f"metadata names {len(missing)} id(s) not among the audio files "
            f"found, e.g. {missing[:3]}"
        )


def index_corpus(
    src: str,
    kind: str | None = None,
    *,
    workers: int = 1,
    metadata: Mapping[str, Mapping[str, Any]] | None = None,
    relative_paths: bool = False,
) -> IndexResult:
    """Index every audio file under ``src`` (a folder or fsspec URL), sorted by id.

    ``id`` is the path relative to ``src`` with ``/`` separators; ``path`` the absolute
    local path or the full URL (with ``relative_paths``, the id itself: for a manifest
    written at ``src``'s root, which :class:`pamflow.sources.Sources` resolves against the
    manifest's folder). ``kind`` is the given kind, else the file's top folder (null for
    files at the root). ``metadata`` maps ids to values of :data:`EXTRA_COLUMNS`.
    ``workers > 1`` reads files on a thread pool; rows come out in the same order.
    Each file is read whole into memory once (hash and decode share the bytes).
    """
    fs, root = fsspec.core.url_to_fs(str(src))
    root = root.rstrip("/") or "/"
    if not fs.isdir(root):
        raise FileNotFoundError(f"index_corpus: {src!r} is not a folder")
    local = _is_local(fs)
    files = []
    for p in fs.find(root):
        ext = posixpath.splitext(p)[1].lower()
        if ext in AUDIO_EXTENSIONS:
            files.append((posixpath.relpath(p, root), p, ext))
    files.sort()
    metadata = metadata or {}
    _check_metadata(metadata, {f[0] for f in files})

    def one(item: tuple[str, str, str]) -> tuple[bool, dict[str, Any]]:
        fid, p, ext = item
        path = fid if relative_paths else (p if local else fs.unstrip_protocol(p))
        try:
            try:
                raw = fs.cat_file(p)
            except Exception as e:  # noqa: BLE001
                raise BadAudioFile(
                    f"unreadable: cannot read the file ({type(e).__name__}: {e})"
                ) from e
            info = inspect_audio(raw, fid, ext)
        except BadAudioFile as e:
            return False, {"id": fid, "path": path, "reason": _one_line(str(e))}
        except Exception as e:  # noqa: BLE001 - one bad file never stops the index
            return False, {
                "id": fid,
                "path": path,
                "reason": _one_line(f"error: {type(e).__name__}: {e}"),
            }
        top = fid.split("/", 1)[0] if "/" in fid else None
        row = {
            "id": fid,
            "path": path,
            "kind": kind if kind is not None else top,
            **info,
            "sha256": hashlib.sha256(raw).hexdigest(),
            "size_bytes": len(raw),
        }
        extra = metadata.get(fid, {})
        for col in EXTRA_COLUMNS:
            value = extra.get(col)
            row[col] = (
                None
                if value is None
                else (str(value) if col in ("label", "text") else float(value))
            )
        return True, row

    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(one, files))
    else:
        results = [one(f) for f in files]
    out = IndexResult()
    for good, row in results:
        (out.manifest if good else out.quarantine).append(row)
    return out


def quarantine_path(out_manifest: str) -> str:
    """``<stem>.quarantine.parquet`` beside the manifest."""
    base = str(out_manifest)
    stem = base[: -len(".parquet")] if base.endswith(".parquet") else base
    return stem + QUARANTINE_SUFFIX


def _write_atomic(table: pa.Table, target: str) -> None:
    fs, path = fsspec.core.url_to_fs(target)
    parent = posixpath.dirname(path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    try:
        with fs.open(tmp, "wb") as fh:
            pq.write_table(table, fh)
        fs.mv(tmp, path)
    finally:
        if fs.exists(tmp):
            fs.rm(tmp)


def write_index(result: IndexResult, out_manifest: str) -> tuple[str, str]:
    """Write the manifest to ``out_manifest`` and the quarantine table beside it (first,
    so a manifest that exists always has its quarantine). Returns both paths."""
    out_manifest = str(out_manifest)
    qpath = quarantine_path(out_manifest)
    _write_atomic(result.quarantine_table(), qpath)
    _write_atomic(result.manifest_table(), out_manifest)
    return out_manifest, qpath


# ---------------------------------------------------------------- the demo corpus

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
    ``text``); ``noise/`` (2 x 6 s of each of :data:`pamflow.synth.NOISE_TYPES`, label =
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
