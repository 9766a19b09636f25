"""Synthetic speech from the espeak-ng library shipped by ``espeakng-loader``.

:func:`synthesize` turns text into mono float32 audio at espeak's native rate (22050 Hz)
through our own ctypes bindings of the espeak-ng C API (``speak_lib.h``): synchronous
mode, and a synthesis callback that collects the int16 samples.

Determinism. espeak keeps state from one utterance to the next that no API call resets
(e.g. a static pitch-flutter phase in its wave generator), so two calls with the same
text would differ slightly. Each utterance therefore runs in a *fresh instance* of the
library: a private copy of the shared object is loaded, initialised, used once, terminated
and unloaded (about 10 ms). Its noise generators are seeded before synthesis (espeak's own
and libc ``rand()``, which Python and numpy do not use), so the same ``(text, voice, rate,
pitch, pitch_range)`` gives bit-identical samples in any process, in any order. espeak is
not thread-safe: one lock serialises all calls in a process.

Voices are espeak names with an optional variant, e.g. ``"en"``, ``"en+m1"``, ``"en+f3"``,
``"en-us+m3"``; see :func:`list_variants`.
"""

from __future__ import annotations

import _ctypes
import atexit
import ctypes
import ctypes.util
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "HARVARD_SENTENCES",
    "SAMPLE_RATE",
    "SPEAKERS",
    "Speaker",
    "SpeechError",
    "list_variants",
    "synthesize",
]

#: espeak-ng's output sample rate in Hz (:func:`synthesize` returns the rate the library
#: reports, which is this one)
SAMPLE_RATE = 22050

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # return an error rather than calling exit()
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _VOLUME, _PITCH, _RANGE, _WORDGAP = 1, 2, 3, 4, 7  # espeak_PARAMETER
_EE_OK = 0
_ERRORS = {-1: "internal error", 1: "buffer full", 2: "not found"}
_SEED = 1

# int callback(short *wav, int numsamples, espeak_EVENT *events)
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
_unload = getattr(_ctypes, "dlclose", None) or getattr(_ctypes, "FreeLibrary", None)


#: Harvard sentences (IEEE 1969 recommended practice for speech quality measurements,
#: lists 1-4): phonetically balanced, public domain.
HARVARD_SENTENCES = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.",
    "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.",
    "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.",
    "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.",
    "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.",
    "Read verse out loud for pleasure.",
    "Hoist the load to your left shoulder.",
    "Take the winding path to reach the lake.",
    "Note closely the size of the gas tank.",
    "Wipe the grease off his dirty face.",
    "Mend the coat before you go out.",
    "The wrist was badly strained and hung limp.",
    "The stray cat gave birth to kittens.",
    "The young girl gave no clear response.",
    "The meal was cooked before the bell rang.",
    "What joy there is in living.",
)


@dataclass(frozen=True)
class Speaker:
    """A synthetic talker: an espeak voice and variant with its own rate and pitch."""

    id: str
    voice: str
    rate: int
    pitch: int
    pitch_range: int = 50
    volume: int = 75  # below espeak's 100, whose loudest voices touch full scale

    def say(self, text: str) -> tuple[np.ndarray, int]:
        return synthesize(
            text, self.voice, self.rate, self.pitch, self.pitch_range, volume=self.volume
        )


#: the demo corpus's talkers: variants without espeak's built-in echo, spread in pitch,
#: speaking rate and accent
SPEAKERS = (
    Speaker("spk01", "en+m1", 160, 45),
    Speaker("spk02", "en+f1", 170, 55),
    Speaker("spk03", "en-us+m3", 185, 50, 60),
    Speaker("spk04", "en-gb-x-rp+belinda", 160, 50),
    Speaker("spk05", "en+m7", 150, 35, 40),
    Speaker("spk06", "en-us+steph", 180, 60),
    Speaker("spk07", "en-gb-scotland+m4", 170, 50),
    Speaker("spk08", "en-us+Andrea", 165, 45, 65),
)


class SpeechError(RuntimeError):
    """espeak-ng could not be loaded, or refused a voice, a parameter or a text."""


def _declare(lib: ctypes.CDLL) -> None:
    c_int, c_char_p, c_void_p = ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p
    signatures = {
        "espeak_Initialize": ([c_int, c_int, c_char_p, c_int], c_int),
        "espeak_SetSynthCallback": ([_CALLBACK], None),
        "espeak_SetVoiceByName": ([c_char_p], c_int),
        "espeak_SetParameter": ([c_int, c_int, c_int], c_int),
        "espeak_Synth": (
            [
                c_void_p,
                ctypes.c_size_t,
                ctypes.c_uint,
                c_int,
                ctypes.c_uint,
                ctypes.c_uint,
                c_void_p,
                c_void_p,
            ],
            c_int,
        ),
        "espeak_Synchronize": ([], c_int),
        "espeak_Terminate": ([], c_int),
    }
    for name, (args, res) in signatures.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, res
    if hasattr(lib, "espeak_ng_SetRandSeed"):
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = c_int


class _Library:
    """A private copy of libespeak-ng (one per process) and the espeak data folder."""

    def __init__(self) -> None:
        import espeakng_loader

        source = espeakng_loader.get_library_path()
        self.data_path = espeakng_loader.get_data_path()
        self.source = source
        self.pid = os.getpid()
        self._dir = tempfile.mkdtemp(prefix="pamflow-espeak-")
        atexit.register(_remove, self._dir, self.pid)
        # a copy has its own identity for the dynamic loader, so unloading it really
        # unloads it even if another package holds the original library open
        self.path = os.path.join(self._dir, Path(source).name)
        self._copy()
        libc = ctypes.util.find_library("c")
        self.libc = ctypes.CDLL(libc) if libc else None

    def _copy(self) -> None:
        try:
            os.makedirs(self._dir, exist_ok=True)
            shutil.copyfile(self.source, self.path)
        except OSError as e:
            raise SpeechError(f"cannot copy espeak-ng library {self.source}: {e}") from e

    def speak(self, text: str, voice: str, params: dict[int, int]) -> tuple[np.ndarray, int]:
        if not os.path.exists(self.path):  # a temp-folder cleaner took it
            self._copy()
        try:
            lib = ctypes.CDLL(self.path)
        except OSError as e:
            raise SpeechError(f"cannot load espeak-ng library {self.path}: {e}") from e
        chunks: list[np.ndarray] = []

        def collect(wav, numsamples, events) -> int:
            if wav and numsamples > 0:
                chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
            return 0  # 0 = go on synthesising

        callback = _CALLBACK(collect)
        try:
            _declare(lib)
            sr = lib.espeak_Initialize(
                _AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data_path.encode(), _INITIALIZE_DONT_EXIT
            )
            if sr <= 0:
                raise SpeechError(f"espeak_Initialize failed ({sr}) with data {self.data_path}")
            try:
                lib.espeak_SetSynthCallback(callback)
                _check(lib.espeak_SetVoiceByName(voice.encode()), f"voice {voice!r}")
                for param, value in params.items():
                    _check(lib.espeak_SetParameter(param, value, 0), f"parameter {param}={value}")
                if hasattr(lib, "espeak_ng_SetRandSeed"):
                    lib.espeak_ng_SetRandSeed(_SEED)
                if self.libc is not None:
                    self.libc.srand(_SEED)
                buf = ctypes.create_string_buffer(text.encode("utf-8"))
                code = lib.espeak_Synth(
                    buf, len(buf), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
                )
                _check(code, f"synthesis of {text[:40]!r}")
                _check(lib.espeak_Synchronize(), "synchronize")
            finally:
                lib.espeak_Terminate()
        finally:
            if _unload is not None:
                _unload(lib._handle)
        audio = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        return audio, int(sr)


def _remove(folder: str, pid: int) -> None:
    """At exit, remove the private library copy, only in the process that made it (a
    forked child inherits the exit handler, not the ownership)."""
    if os.getpid() == pid:
        shutil.rmtree(folder, ignore_errors=True)


def _check(code: int, what: str) -> None:
    if code != _EE_OK:
        raise SpeechError(f"espeak-ng refused {what}: {_ERRORS.get(code, f'error {code}')}")


_library: _Library | None = None
_lock = threading.Lock()


def synthesize(
    text: str,
    voice: str = "en",
    rate: int = 175,
    pitch: int = 50,
    pitch_range: int = 50,
    *,
    volume: int = 100,
) -> tuple[np.ndarray, int]:
    """Speak ``text`` with espeak-ng; return ``(audio, sample_rate)``.

    ``voice``: espeak voice name, optionally ``+variant`` (``"en+f3"``). ``rate``: speaking
    rate in words per minute (80..450). ``pitch``: base pitch 0..100 (50 = the voice's own).
    ``pitch_range``: intonation range 0..100 (0 = monotone, 50 = normal). ``volume``:
    espeak's amplitude 0..200 (100 = its default; linear). The audio is mono
    float32 in [-1, 1) at espeak's native rate (22050 Hz), bit-identical for given inputs.
    """
    global _library
    if not isinstance(text, str) or not text.strip():
        raise SpeechError(f"synthesize: text must be a non-empty string, got {text!r}")
    if not 80 <= int(rate) <= 450:
        raise SpeechError(f"synthesize: rate {rate} words/min outside 80..450")
    for name, value, top in (
        ("pitch", pitch, 100),
        ("pitch_range", pitch_range, 100),
        ("volume", volume, 200),
    ):
        if not 0 <= int(value) <= top:
            raise SpeechError(f"synthesize: {name} {value} outside 0..{top}")
    params = {
        _RATE: int(rate),
        _PITCH: int(pitch),
        _RANGE: int(pitch_range),
        _VOLUME: int(volume),
        _WORDGAP: 0,
    }
    with _lock:
        if _library is None or _library.pid != os.getpid():
            _library = _Library()
        samples, sr = _library.speak(text, voice, params)
    if samples.size == 0:
        raise SpeechError(f"espeak-ng produced no audio for {text[:40]!r} with voice {voice!r}")
    return samples.astype(np.float32) / np.float32(32768.0), sr


def list_variants() -> list[str]:
    """Names of the voice variants espeak-ng ships (use as ``"en+<name>"``)."""
    import espeakng_loader

    folder = Path(espeakng_loader.get_data_path()) / "voices" / "!v"
    return sorted(p.name for p in folder.iterdir() if p.is_file())
