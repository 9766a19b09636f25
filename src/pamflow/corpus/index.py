"""Index audio folders into a manifest and quarantine bad files.

:func:`index_corpus` walks a local folder or any fsspec URL, in sorted order, and reads
every file whose extension is in :data:`pamflow.audio.AUDIO_EXTENSIONS`. A good file
becomes a manifest row (columns of :data:`MANIFEST_SCHEMA`); a bad one goes to the
quarantine table (``id, path, reason``) with a one-line reason that starts with its class:

==================  ==========================================================
``empty:``          0 bytes, or a valid header with 0 audio frames
``unreadable:``     not an audio file any decoder accepts (or no decoder); not a
                    regular file (a FIFO, a device: never read); a link out of the
                    indexed folder
``name:``           a file name that is not valid UTF-8 (shown with U+FFFD)
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
empty), each atomically. The demo corpus (:mod:`pamflow.corpus.demo`) is indexed with the
same code.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import re
import stat
import struct
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

from pamflow.audio import AUDIO_EXTENSIONS, AudioError, load, loudness
from pamflow.audio.loudness import StreamingLoudness
from pamflow.storage.files import atomic_open

MANIFEST_NAME = "manifest.parquet"
QUARANTINE_SUFFIX = ".quarantine.parquet"
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 384000
MIN_DURATION_S = 0.01
#: local files larger than this are indexed in blocks (:func:`inspect_audio_file`)
STREAM_BYTES = 64 << 20
STREAM_FRAMES = 1 << 16
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


def _wav_shortfall(raw: bytes, file_size: int | None = None) -> str | None:
    """A reason if a RIFF/WAVE file's data chunk promises more bytes than the file holds.

    ``raw`` is the file or its first bytes (then ``file_size`` is the file's size). (libsndfile
    quietly shortens such files instead of reporting them.) A data size of 0 or 0xFFFFFFFF
    means "unknown" (streamed writers) and is accepted.
    """
    file_size = len(raw) if file_size is None else file_size
    if len(raw) < 12 or raw[:4] not in (b"RIFF", b"RIFX") or raw[8:12] != b"WAVE":
        return None
    endian = "<" if raw[:4] == b"RIFF" else ">"
    pos, block = 12, 0
    while pos + 8 <= len(raw):
        chunk, size = raw[pos : pos + 4], struct.unpack(endian + "I", raw[pos + 4 : pos + 8])[0]
        if chunk == b"fmt " and pos + 22 <= len(raw):
            block = struct.unpack(endian + "H", raw[pos + 20 : pos + 22])[0]
        if chunk == b"data":
            have = file_size - pos - 8
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
    except Exception:
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
    except Exception as e:
        what = f"{type(e).__name__}: {e}"
        if promised:
            raise BadAudioFile(
                f"corrupt: header reads ({promised} frames) but the audio data "
                f"does not decode ({what})"
            ) from e
        raise BadAudioFile(f"unreadable: no decoder accepts it ({what})") from e
    frames, channels = int(data.shape[0]), int(data.shape[1]) if data.ndim == 2 else 1
    peak = float(np.max(np.abs(data))) if data.size else 0.0

    def level() -> float:
        # BS.1770 sums channel powers (pyloudnorm weights up to 5 channels); more: mono mix
        x = data[:, 0] if channels == 1 else (data if channels <= 5 else data.mean(axis=1))
        return float(loudness(x, sr))

    return _measured(frames, promised, channels, int(sr), peak, level)


def _measured(
    frames: int,
    promised: int | None,
    channels: int,
    sr: int,
    peak: float,
    level: Callable[[], float],
) -> dict[str, Any]:
    """The checks every decoded file passes, and its manifest measurements."""
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
    peak_db = float(20.0 * np.log10(peak)) if peak > 0 else float("-inf")
    if peak_db < SILENCE_PEAK_DB:
        raise BadAudioFile(f"silent: peak {peak_db:.1f} dBFS below {SILENCE_PEAK_DB:g} dBFS")
    return {
        "duration_s": frames / sr,
        "sample_rate": sr,
        "channels": channels,
        "num_frames": frames,
        "loudness_lufs": level(),
        "peak_db": peak_db,
    }


def inspect_audio_file(path: str, name: str, ext: str = "") -> tuple[dict[str, Any], str, int]:
    """:func:`inspect_audio` of a local file read in blocks, never whole: the header is
    probed, the audio decoded :data:`STREAM_FRAMES` frames at a time (peak, non-finite
    samples and BS.1770 loudness accumulated), the sha256 computed in chunks. Memory stays
    bounded whatever the file's size. Returns ``(measurements, sha256, size)``; raises
    ``BadAudioFile`` as :func:`inspect_audio` does, or ``LookupError`` when libsndfile
    cannot open the file (the caller then reads it whole, for ffmpeg)."""
    size = os.path.getsize(path)
    if not size:
        raise BadAudioFile("empty: 0 bytes")
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    short = _wav_shortfall(head, size) if ext in (".wav", "") else None
    if short:
        raise BadAudioFile(short)
    try:
        snd = sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise LookupError(str(e)) from e
    with snd:
        sr, channels, promised = int(snd.samplerate), int(snd.channels), int(snd.frames) or None
        meter = (
            StreamingLoudness(sr, channels) if MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE else None
        )
        frames, peak = 0, 0.0
        try:
            for block in snd.blocks(blocksize=STREAM_FRAMES, dtype="float32", always_2d=True):
                if not np.isfinite(block).all():
                    raise BadAudioFile(f"non-finite: {name}: holds NaN or inf samples")
                frames += len(block)
                peak = max(peak, float(np.max(np.abs(block))) if block.size else 0.0)
                if meter is not None:
                    meter.feed(block)
        except sf.LibsndfileError as e:
            raise BadAudioFile(
                f"corrupt: header reads ({promised} frames) but the audio data does not "
                f"decode ({e})"
            ) from e
    info = _measured(frames, promised, channels, sr, peak, meter.value if meter else float)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return info, h.hexdigest(), size


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


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a name the OS handed over with undecodable bytes
        return False
    return True


def _printable(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _local_problem(path: str, real_root: str) -> str | None:
    """Why a local file must not be read, or None: only regular files inside the folder
    (a FIFO would block the read forever, a device never end; a link may point anywhere)."""
    try:
        st = os.stat(path)  # follows links: what would be read
    except OSError as e:
        return f"unreadable: {e.strerror}"
    if not stat.S_ISREG(st.st_mode):
        what = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device or socket"
        return f"unreadable: not a regular file ({what})"
    real = os.path.realpath(path)
    if os.path.commonpath([real_root, real]) != real_root:
        return f"unreadable: a link out of the indexed folder (to {real})"
    return None


def index_corpus(
    src: str,
    kind: str | None = None,
    *,
    workers: int = 1,
    metadata: Mapping[str, Mapping[str, Any]] | None = None,
    relative_paths: bool = False,
    stream_bytes: int | None = STREAM_BYTES,
) -> IndexResult:
    """Index every audio file under ``src`` (a folder or fsspec URL), sorted by id.

    ``id`` is the path relative to ``src`` with ``/`` separators; ``path`` the absolute
    local path or the full URL (with ``relative_paths``, the id itself: for a manifest
    written at ``src``'s root, which :class:`pamflow.corpus.sources.Sources` resolves against the
    manifest's folder). ``kind`` is the given kind, else the file's top folder (null for
    files at the root). ``metadata`` maps ids to values of :data:`EXTRA_COLUMNS`.
    ``workers > 1`` reads files on a thread pool; rows come out in the same order.
    Each file is read whole into memory once (hash and decode share the bytes), except
    local files above ``stream_bytes`` that libsndfile reads (WAV, FLAC, AIFF, OGG...):
    those are hashed and decoded in blocks (:func:`inspect_audio_file`), in bounded
    memory, with the same checks and measurements.
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

    real_root = os.path.realpath(root) if local else root

    def one(item: tuple[str, str, str]) -> tuple[bool, dict[str, Any]]:
        fid, p, ext = item
        path = fid if relative_paths else (p if local else fs.unstrip_protocol(p))
        if not _utf8(fid):  # Parquet holds UTF-8 only: record the name, readably, and go on
            shown = _printable(fid)
            return False, {
                "id": shown,
                "path": _printable(path),
                "reason": "name: not valid UTF-8 (rename the file)",
            }
        if local:
            problem = _local_problem(p, real_root)
            if problem:
                return False, {"id": fid, "path": path, "reason": problem}
        try:
            streamed = None
            if local and stream_bytes is not None and os.path.getsize(p) > stream_bytes:
                try:  # big: decoded in blocks, never read whole
                    streamed = inspect_audio_file(p, fid, ext)
                except LookupError:
                    pass  # not for libsndfile: read whole, for ffmpeg
            if streamed is not None:
                info, digest, size = streamed
            else:
                try:
                    raw = fs.cat_file(p)
                except Exception as e:
                    raise BadAudioFile(
                        f"unreadable: cannot read the file ({type(e).__name__}: {e})"
                    ) from e
                info = inspect_audio(raw, fid, ext)
                digest, size = hashlib.sha256(raw).hexdigest(), len(raw)
        except BadAudioFile as e:
            return False, {"id": fid, "path": path, "reason": _one_line(str(e))}
        except Exception as e:
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
            "sha256": digest,
            "size_bytes": size,
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
    with atomic_open(path, "wb", fs=fs) as fh:
        pq.write_table(table, fh)


def write_index(result: IndexResult, out_manifest: str) -> tuple[str, str]:
    """Write the manifest to ``out_manifest`` and the quarantine table beside it (first,
    so a manifest that exists always has its quarantine). Returns both paths."""
    out_manifest = str(out_manifest)
    qpath = quarantine_path(out_manifest)
    _write_atomic(result.quarantine_table(), qpath)
    _write_atomic(result.manifest_table(), out_manifest)
    return out_manifest, qpath
