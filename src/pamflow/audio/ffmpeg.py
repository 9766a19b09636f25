"""ffmpeg helpers: decode any audio ffmpeg reads, and sample-aligned MP3 round trips.

Every command line is built with ffmpeg-python (:func:`decode_command`, ``_codec_cmds``).

The binary is the static build shipped by ``imageio-ffmpeg`` unless the environment
variable ``PAMFLOW_FFMPEG`` names another one. Audio goes through pipes as raw float32 PCM
(``-f f32le``); nothing is written to disk except the input of :func:`decode_bytes`.

MP3 round trips (:func:`mp3_roundtrip`, :func:`mp3_roundtrip_many`) encode constant-bitrate
MP3 with libmp3lame (``-b:a {k}k``) and decode it back with ffmpeg's MP3 decoder:

* **Bitrates and rates.** MPEG-1 Layer III (32, 44.1, 48 kHz) allows 32..320 kb/s, MPEG-2
  (16, 22.05, 24 kHz) 8..160 kb/s and MPEG-2.5 (8, 11.025, 12 kHz) 8..64 kb/s; LAME
  silently changes any other request. :func:`plan_mp3` snaps the asked bitrate to the
  nearest step of the ladder :data:`MP3_KBPS` (on a log scale) and picks the encoding rate
  that allows it: the input's own rate when it can, else the nearest one of the same family
  (x2, x4 or /2, /4: 320 kb/s at 16 kHz is coded at 32 kHz, 8 kb/s at 44.1 kHz at
  22.05 kHz), else the nearest other MP3 rate. Rate changes use soxr (VHQ) in Python, so
  the codec only ever sees one rate.
* **Alignment.** Decoded MP3 starts with the encoder and decoder delay (1105 samples with
  LAME and ffmpeg, at the encoding rate) unless the decoder honours the gapless tag, which
  it cannot do reliably for a stream written to a pipe. The delay is measured once per
  process for each (binary, encoding rate, bitrate) by coding a fixed probe signal and
  locating its cross-correlation peak (cached), then trimmed; the output is cut or
  zero-padded to the input length, so input and output are sample-aligned.
* **Context.** LAME adapts slowly (bit reservoir, ATH adjustment), so a clip's coding
  depends on what the encoder coded before it. Every clip is therefore coded after the
  same fixed noise burst and 32 frames of silence; this makes a clip's coding independent
  of its neighbours, and lets :func:`mp3_roundtrip_many` code many clips with one
  encoder, bit-identical to coding each one alone.
"""

from __future__ import annotations

import math
import os
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import IO

import ffmpeg as ffmpeg_python  # ffmpeg-python: builds the command lines
import numpy as np

from pamflow.audio.dsp import fix_length, measure_lag, resample
from pamflow.audio.errors import AudioError, FFmpegError

MPEG1_RATES = (32000, 44100, 48000)
MPEG2_RATES = (16000, 22050, 24000)
MPEG25_RATES = (8000, 11025, 12000)
MP3_RATES = tuple(sorted(MPEG1_RATES + MPEG2_RATES + MPEG25_RATES))
MPEG1_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
MPEG2_KBPS = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
MPEG25_KBPS = (8, 16, 24, 32, 40, 48, 56, 64)
#: the bitrate ladder (kb/s) :func:`plan_mp3` snaps to: the MPEG-1 ladder extended down by the
#: MPEG-2 steps 8, 16 and 24. Any input rate can be coded at each of them (at its own rate
#: or one of its family), so the snapped bitrate does not depend on the input rate.
#: 144 kb/s, an MPEG-2-only step, is left out for that reason.
MP3_KBPS = (8, 16, 24) + MPEG1_KBPS

#: every clip is coded in the same context: a fixed noise burst (resets LAME's slowly
#: adapting state: ATH adjustment, bit reservoir), silence for it to settle, the clip, and
#: silence after it. Frames at the encoding rate.
_BURST_FRAMES = 4
_SETTLE_FRAMES = 32
_TAIL_FRAMES = 4
#: largest delay (samples at the encoding rate) the calibration searches
_MAX_DELAY = 8192
#: at most this many samples go through one encoder process in mp3_roundtrip_many
_BATCH_SAMPLES = 1 << 23


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary: ``$PAMFLOW_FFMPEG`` if set, else imageio-ffmpeg's."""
    exe = os.environ.get("PAMFLOW_FFMPEG")
    if exe:
        if not os.path.isfile(exe):
            raise FFmpegError(f"PAMFLOW_FFMPEG={exe!r}: no such file")
        return exe
    return _bundled_exe()


@lru_cache(maxsize=1)
def _bundled_exe() -> str:
    import imageio_ffmpeg

    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as e:  # no binary for this platform
        raise FFmpegError(f"no ffmpeg binary: {e}; set PAMFLOW_FFMPEG") from e


def _last_line(stderr: bytes) -> str:
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


def _pipe(stream: IO[bytes] | None) -> IO[bytes]:
    """A stream of a process started with ``subprocess.PIPE`` (never None)."""
    if stream is None:  # pragma: no cover - Popen sets every PIPE stream
        raise FFmpegError("ffmpeg: a pipe to the process is missing")
    return stream


def _pipeline(cmds: Sequence[Sequence[str]], data: bytes, what: str) -> bytes:
    """Run commands connected stdout -> stdin, feed ``data`` to the first, return the
    last one's stdout. Threads feed stdin and drain stderr, so no pipe can fill up."""
    procs: list[subprocess.Popen] = []
    try:
        for cmd in cmds:
            stdin = procs[-1].stdout if procs else subprocess.PIPE
            procs.append(
                subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            )
            if len(procs) > 1:
                _pipe(procs[-2].stdout).close()  # the next process owns it now
    except OSError as e:
        for p in procs:
            p.kill()
            p.wait()
        raise FFmpegError(f"{what}: cannot start ffmpeg ({cmds[0][0]}): {e}") from e
    errors = [b""] * len(procs)

    def feed() -> None:
        try:
            _pipe(procs[0].stdin).write(data)
        except (BrokenPipeError, OSError):
            pass  # the encoder died; its stderr says why
        finally:
            try:
                _pipe(procs[0].stdin).close()
            except OSError:
                pass

    def drain(i: int) -> None:
        errors[i] = _pipe(procs[i].stderr).read()

    threads = [threading.Thread(target=feed)]
    threads += [threading.Thread(target=drain, args=(i,)) for i in range(len(procs))]
    for t in threads:
        t.start()
    out = _pipe(procs[-1].stdout).read()
    _pipe(procs[-1].stdout).close()
    for t in threads:
        t.join()
    for p, err in zip(procs, errors, strict=True):
        _pipe(p.stderr).close()
        if p.wait() != 0:
            raise FFmpegError(f"{what}: ffmpeg exited with {p.returncode}: {_last_line(err)}")
    return out


# -- decoding files ---------------------------------------------------------------------


def decode_bytes(data: bytes, *, name: str) -> tuple[np.ndarray, int]:
    """Decode a whole file in any format ffmpeg reads (first audio stream).

    Returns ``(audio, sample_rate)`` with ``audio`` float32 of shape ``(n, channels)`` at
    the source's own rate and channel count. Raises :class:`pamflow.audio.AudioError`
    naming ``name`` with ffmpeg's last error line when it cannot be decoded.
    """
    ext = os.path.splitext(name)[1].lower()
    suffix = ext if ext[1:].isalnum() and len(ext) <= 9 else ""
    # a file, not a pipe: some containers (MP4 with the index at the end) need to seek
    with tempfile.NamedTemporaryFile(suffix=suffix, prefix="pamflow-") as tmp:
        tmp.write(data)
        tmp.flush()
        cmd = decode_command(ffmpeg_exe(), tmp.name)
        try:
            proc = subprocess.run(cmd, capture_output=True, check=False)
        except OSError as e:
            raise AudioError(f"{name}: cannot run ffmpeg ({cmd[0]}): {e}") from e
    if proc.returncode != 0:
        raise AudioError(f"{name}: ffmpeg cannot decode it: {_last_line(proc.stderr)}")
    try:
        return _parse_wav_stream(proc.stdout)
    except ValueError as e:
        raise AudioError(f"{name}: ffmpeg gave unreadable output: {e}") from e


def _parse_wav_stream(buf: bytes) -> tuple[np.ndarray, int]:
    """Float32 WAV as ffmpeg writes it to a pipe (sizes in the header may be unset)."""
    if len(buf) < 12 or buf[:4] not in (b"RIFF", b"RF64") or buf[8:12] != b"WAVE":
        raise ValueError("not a WAV stream")
    pos, channels, rate = 12, 0, 0
    while pos + 8 <= len(buf):
        tag, size = buf[pos : pos + 4], int.from_bytes(buf[pos + 4 : pos + 8], "little")
        body = pos + 8
        if tag == b"fmt ":
            channels = int.from_bytes(buf[body + 2 : body + 4], "little")
            rate = int.from_bytes(buf[body + 4 : body + 8], "little")
        elif tag == b"data":
            if channels <= 0 or rate <= 0:
                raise ValueError("data before a valid fmt chunk")
            raw = buf[body:]
            if size not in (0, 0xFFFFFFFF) and size <= len(raw):
                raw = raw[:size]
            raw = raw[: len(raw) - len(raw) % (4 * channels)]
            audio = np.frombuffer(raw, dtype="<f4").reshape(-1, channels)
            return audio.astype(np.float32), rate
        pos = body + size + (size & 1)
    raise ValueError("no audio data")


# -- MP3 round trips --------------------------------------------------------------------


def legal_bitrates(encode_rate: int) -> tuple[int, ...]:
    """The Layer III bitrates (kb/s) allowed at an MP3 sample rate."""
    if encode_rate in MPEG1_RATES:
        return MPEG1_KBPS
    if encode_rate in MPEG2_RATES:
        return MPEG2_KBPS
    if encode_rate in MPEG25_RATES:
        return MPEG25_KBPS
    raise ValueError(f"{encode_rate} Hz is not an MP3 sample rate ({MP3_RATES})")


def frame_samples(encode_rate: int) -> int:
    """Samples per MP3 frame: 1152 for MPEG-1, 576 for MPEG-2 and 2.5."""
    return 1152 if encode_rate in MPEG1_RATES else 576


def snap_bitrate(bitrate_kbps: float, ladder: tuple[int, ...] = MP3_KBPS) -> int:
    """The bitrate of ``ladder`` (default :data:`MP3_KBPS`, 8..320 kb/s) nearest to
    ``bitrate_kbps`` on a log scale; a tie goes to the lower one."""
    b = float(bitrate_kbps)
    if not math.isfinite(b) or b <= 0:
        raise ValueError(f"bitrate_kbps must be a positive number, got {bitrate_kbps!r}")
    return min(ladder, key=lambda k: (abs(math.log(k / b)), k))


def plan_mp3(sample_rate: int, bitrate_kbps: float) -> tuple[int, int]:
    """``(encode_rate, legal_bitrate)`` for coding audio at ``sample_rate`` near
    ``bitrate_kbps``: see the module docstring for the rule."""
    sr = int(sample_rate)
    if sr <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate!r}")
    kbps = snap_bitrate(bitrate_kbps)
    family = [r for r in MP3_RATES if r in (sr, 2 * sr, 4 * sr) or sr in (2 * r, 4 * r)]
    up = [r for r in MP3_RATES if r >= sr]
    down = [r for r in reversed(MP3_RATES) if r < sr]
    order = [r for r in family if r >= sr] + [r for r in reversed(family) if r < sr] + up + down
    for rate in order:
        if kbps in legal_bitrates(rate):
            return rate, kbps
    raise AssertionError(f"no MP3 rate allows {kbps} kb/s")  # pragma: no cover


#: global options of every ffmpeg pamflow runs: no banner, errors only, never read stdin
#: unless it is the input
_QUIET = ("-hide_banner", "-loglevel", "error")


def decode_command(exe: str, path: str) -> list[str]:
    """ffmpeg decoding the first audio stream of ``path`` to float32 WAV on stdout (built by
    ffmpeg-python)."""
    out = {"map": "0:a:0", "vn": None, "sn": None, "dn": None, "c:a": "pcm_f32le", "f": "wav"}
    node = ffmpeg_python.input(path).output("pipe:1", **out)
    return list(node.global_args(*_QUIET, "-nostdin").compile(cmd=exe))


@lru_cache(maxsize=64)
def _codec_cmds(exe: str, rate: int, channels: int, kbps: int) -> tuple[tuple[str, ...], ...]:
    """The MP3 encoder (raw float32 in, MP3 without Xing/ID3 headers out) and decoder (MP3
    in, raw float32 out) of a round trip, built by ffmpeg-python (once per setting: 0.17 ms
    a build, against ~12 ms for a clip's round trip)."""
    enc = ffmpeg_python.input("pipe:0", f="f32le", ar=rate, ac=channels).output(
        "pipe:1",
        **{"c:a": "libmp3lame", "b:a": f"{kbps}k", "write_xing": 0, "id3v2_version": 0},
        f="mp3",
    )
    dec = ffmpeg_python.input("pipe:0", f="mp3").output("pipe:1", **{"c:a": "pcm_f32le"}, f="f32le")
    return tuple(tuple(n.global_args(*_QUIET).compile(cmd=exe)) for n in (enc, dec))


def _code(exe: str, x: np.ndarray, rate: int, kbps: int) -> np.ndarray:
    """Encode and decode ``x`` (n, channels) at ``rate``; the raw decoder output."""
    channels = x.shape[1]
    data = np.ascontiguousarray(x, dtype="<f4").tobytes()
    out = _pipeline(_codec_cmds(exe, rate, channels, kbps), data, f"MP3 {kbps} kb/s at {rate} Hz")
    out = out[: len(out) - len(out) % (4 * channels)]
    return np.frombuffer(out, dtype="<f4").reshape(-1, channels)


def _probe(rate: int) -> np.ndarray:
    """Fixed calibration signal: bursts of 150..1200 Hz noise (kept even at 8 kb/s)."""
    from scipy import signal

    rng = np.random.default_rng(20240611)
    n = rate // 2
    sos = signal.butter(4, [150.0, 1200.0], btype="bandpass", fs=rate, output="sos")
    x = signal.sosfilt(sos, rng.standard_normal(n + 2048))[2048:]
    env = np.abs(np.sin(np.pi * 7 * np.arange(n) / n)) ** 2
    x *= env * (0.3 / np.sqrt(np.mean((x * env) ** 2)))
    return np.asarray(x, dtype=np.float32)


@lru_cache(maxsize=256)
def codec_delay(exe: str, encode_rate: int, kbps: int) -> int:
    """Samples (at ``encode_rate``) by which the decoded MP3 lags its input, measured."""
    x = _probe(encode_rate)
    y = _code(exe, x[:, None], encode_rate, kbps)[:, 0]
    return probe_delay(x, y, _MAX_DELAY, f"MP3 {kbps} kb/s at {encode_rate} Hz")


def probe_delay(probe: np.ndarray, coded: np.ndarray, max_lag: int, what: str) -> int:
    """Samples by which ``coded`` (the codec's output for :func:`_probe`'s signal) lags the
    probe; an error naming ``what`` when the two hardly correlate."""
    lag, corr = measure_lag(probe, coded, max_lag)
    if corr < 0.5:
        raise FFmpegError(
            f"{what}: cannot measure the codec delay (peak correlation {corr:.2f} at lag {lag})"
        )
    return lag


def _prepare(audio: np.ndarray, sample_rate: int, what: str) -> np.ndarray:
    x = np.asarray(audio)
    if x.ndim not in (1, 2) or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{what}: expected float audio of shape (n,) or (n, channels)")
    if x.size and not np.all(np.isfinite(x)):
        raise ValueError(f"{what}: audio holds NaN or inf")
    if int(sample_rate) <= 0:
        raise ValueError(f"{what}: sample_rate must be positive, got {sample_rate!r}")
    return x.astype(np.float32, copy=False)


def mp3_roundtrip(
    audio: np.ndarray, sample_rate: int, bitrate_kbps: float, *, encode_rate: int | None = None
) -> np.ndarray:
    """Code ``audio`` as CBR MP3 and back: float32, same shape, sample-aligned.

    ``audio`` is ``(n,)`` or ``(n, channels)``. The bitrate is snapped and the encoding
    rate chosen by :func:`plan_mp3`; with ``encode_rate`` (an MP3 rate) the bitrate is
    snapped to the nearest one legal at that rate instead.

    The clip is coded in a fixed context, the same for every call: LAME first codes a
    fixed noise burst and 32 frames of silence, then the clip, then silence (all trimmed
    away). The burst resets the encoder's slowly adapting state, so a clip's coding never
    depends on what was coded before it, and :func:`mp3_roundtrip_many` gives bit-identical
    results with one encoder for many clips.
    """
    return mp3_roundtrip_many([audio], sample_rate, bitrate_kbps, encode_rate=encode_rate)[0]


def mp3_roundtrip_many(
    clips: list[np.ndarray],
    sample_rate: int,
    bitrate_kbps: float,
    *,
    encode_rate: int | None = None,
) -> list[np.ndarray]:
    """:func:`mp3_roundtrip` for many clips (same rate, channel count and bitrate), coded
    one after the other by a single encoder/decoder pair: equal, sample for sample, to
    coding each clip alone, at a fraction of the cost (no process start-up per clip).

    Each clip gets its own context (burst, silence, clip, silence), starts on an MP3 frame
    boundary and on the same phase of LAME's frame-padding cycle as it would alone.
    """
    what = f"MP3 {bitrate_kbps} kb/s"
    xs = [_prepare(c, sample_rate, what) for c in clips]
    if not xs:
        return []
    sr = int(sample_rate)
    if encode_rate is None:
        rate, kbps = plan_mp3(sr, bitrate_kbps)
    else:
        rate = int(encode_rate)
        kbps = snap_bitrate(bitrate_kbps, legal_bitrates(rate))
    channels = {1 if x.ndim == 1 else x.shape[1] for x in xs}
    if len(channels) != 1:
        raise ValueError(f"{what}: clips have different channel counts {sorted(channels)}")
    ch = channels.pop()
    exe = ffmpeg_exe()
    delay = codec_delay(exe, rate, kbps)
    coded = [_resample2d(x, sr, rate, ch) for x in xs]
    outs: list[np.ndarray] = []
    start = 0
    while start < len(coded):  # one encoder per _BATCH_SAMPLES samples or so
        stop, total = start, 0
        while stop < len(coded) and (stop == start or total + len(coded[stop]) <= _BATCH_SAMPLES):
            total += len(coded[stop])
            stop += 1
        outs += _code_clips(exe, coded[start:stop], rate, kbps, delay)
        start = stop
    result = []
    for x, y in zip(xs, outs, strict=True):
        y = fix_length(resample(y, rate, sr), x.shape[0])
        result.append(np.ascontiguousarray(y[:, 0] if x.ndim == 1 else y, dtype=np.float32))
    return result


def _resample2d(x: np.ndarray, sr: int, rate: int, ch: int) -> np.ndarray:
    x2 = x[:, None] if x.ndim == 1 else x
    n = int(round(x2.shape[0] * rate / sr))
    return fix_length(resample(x2, sr, rate), n) if x2.shape[0] else np.zeros((0, ch), np.float32)


def padding_period(encode_rate: int, kbps: int) -> int:
    """Frames after which LAME's CBR frame-padding pattern repeats (49 at 44.1 kHz and
    its family, where a frame holds a fractional number of bytes; 1 elsewhere)."""
    num = (144000 if encode_rate in MPEG1_RATES else 72000) * int(kbps)
    return encode_rate // math.gcd(num % encode_rate, encode_rate)


def _burst(n: int, channels: int) -> np.ndarray:
    rng = np.random.default_rng(0x9A3F1)
    return rng.uniform(-0.5, 0.5, size=(n, channels)).astype(np.float32)


def _code_clips(
    exe: str, xs: list[np.ndarray], rate: int, kbps: int, delay: int
) -> list[np.ndarray]:
    frame, period = frame_samples(rate), padding_period(rate, kbps)
    lead = _BURST_FRAMES + _SETTLE_FRAMES
    slots, starts, pos = [], [], 0
    for x in xs:
        frames = lead + -(-x.shape[0] // frame) + _TAIL_FRAMES
        slots.append(pos)
        starts.append(pos + lead * frame)
        pos += -(-frames // period) * period * frame
    ch = xs[0].shape[1]
    stream = np.zeros((pos, ch), dtype=np.float32)
    burst = _burst(_BURST_FRAMES * frame, ch)
    for slot, s, x in zip(slots, starts, xs, strict=True):
        stream[slot : slot + burst.shape[0]] = burst
        stream[s : s + x.shape[0]] = x
    y = fix_length(_code(exe, stream, rate, kbps)[delay:], pos)
    return [np.array(y[s : s + x.shape[0]]) for s, x in zip(starts, xs, strict=True)]
