"""Rows are pinned: a fixed small spec of every recipe, and every perturbation family at
three strengths, hash to the digests recorded here.

The digests were recorded before the package restructure (issue 9) and must not move
when code moves. A change that is meant to change rows updates them in its own commit,
saying why. Changed on purpose since: Griffin-Lim's NumPy engine (issue 13) made new rows
of ``griffin_lim`` and ``jnd-default-axes``; rows recorded before it (params without
``engine``) still replay to the old digest (test below). The reverb families' float32
convolution (issue 13 item 2) made new rows of ``reverb_drr``, ``reverb_rt60`` and
``jnd-default-axes``; rows recorded before it replay to the old digests in the same way.
Shards built with one BLAS thread
(issue 11) changed ``nmr``'s SI-SDR labels in their last bits in a plain process: they are
now what a Dask worker always made. The codec suite (issues 13 and 15) made new ``codec``
rows: MP3 coded in process by LAME by default (ffmpeg on request), and the ``setting``
column and codec params; rows recorded before it replay through ffmpeg as they were made.

Rows are pinned per kind of CPU (:data:`WITHOUT_AVX512`): NumPy computes float64 ``exp``,
``log`` and ``power`` with AVX-512 code where the CPU has it and with other code where it
does not, and libopus picks its SIMD paths at run time, so a few recipes' rows (the
simulated listeners' distances and the labels drawn from them, NMR's SNR labels) and the
Opus family's output differ in their last bits between the two kinds of machine. On one
machine they are the same whatever the worker count.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from pamflow import perturbations
from pamflow.datasets import recipe_names
from pamflow.pipeline.build import build_local
from pamflow.testing import row_digests, speech_like

#: one small spec per recipe; jnd twice: a light axis mix and the default families
SPECS = {
    "jnd": {"families": ["white_noise", "eq"], "queries_per_sequence": 2},
    "jnd-default-axes": {"queries_per_sequence": 3},
    "triplet": {"families": ["white_noise", "eq", "mulaw"], "n_voters": 3},
    "contrastive": {"families": ["white_noise", "eq"]},
    "nmr": {},
    "codec": {},
    "domain": {},
}

ROW_DIGESTS = {
    "codec": "5ab8572cf924aa5e8c72ee44a7b8f7726377ec574ff226647b0d9e26faf05c6c",
    "contrastive": "fe70f7a472e2013a0d554b45522f831767d7addd6a52b6856ecbf8eb2fe591b2",
    "domain": "ace529ba737b32b13337a1397d6070d9d1f05d6ead69af0ff73e29660088b5b2",
    "jnd": "d9261df1a734d421e182dead03c8856cf770f00f1c408471eec2f5e2137f6efd",
    "jnd-default-axes": "c097c986cc7eeabebd3629c08983b2b38f7107240e0ee0b5b2caa91388dba6fd",
    "nmr": "63f647656020ee9859e31ed8806c67d1949d427118fd858d30b4a0514c95fd47",
    "triplet": "1838fd4e23c98799397167cd7ff4ad8703bdb76df7f18225a53ad88b62b8d970",
}

FAMILY_DIGESTS = {
    "aac": "450a851c386152cb598c624b3b8dcf6f8e8ab9e7724709875d4c03ce0f10f886",
    "alaw": "3504dbaec8dcc638d5a10722fa054205dfe6e5ae573ecc08f1b33c79d00837d6",
    "amr_nb": "6bea5001c5a90fc52d38ad8b4eaefd09c1264fb8ee1e2f2b112bc080ce351a9e",
    "applause_noise": "9ae4360cda363ed33f4d6bebe2b9fbdeb3a548a626f9ec93d7a2c848cebd60be",
    "babble_noise": "1e5c41030a1e86467ff229a354f09a4333b745d905478ba3945618df295f694b",
    "clipping": "e6baed9273dabfd3663b7bc7cc261d83c6d45eaee9e79c87e5ee245699ec1d40",
    "corpus_noise": "1e5c41030a1e86467ff229a354f09a4333b745d905478ba3945618df295f694b",
    "delay": "bd5abb138e565a9fd309f8bb760a533e2b2d0530362f0fc6dfe60e952c819e7c",
    "dropouts": "41edd82dbea910a3f19fb1d58136ecdb9fc4e6ea638acdcaf74e50d73fb8e5f5",
    "eq": "ab0f44441d501aea00eb02a79783d52d7731890464dda5f88e7d4eb80e4fb881",
    "freq_mask": "603f87456f1dc34187e99a5b4dbeaa98afb5427bc81b6596406a36bac78b1cee",
    "gain": "008a948c7495b5c677608730ba99f383c31678dfcd007c76ee672e16e4cf61b8",
    "griffin_lim": "ee31f7df448423dd70f3d6f95ddcb98d155e75a9dcbdeae0e696544b4a2bbef8",
    "gsm": "c1d1107ff20310fd36495097f86d070bf601fe7dfceedbbac5824fb04e61ba03",
    "mp3": "3b4872489f9bf962acfc0f0756b7da074a5eb6234195e964d8f7b1f5c35a8bc0",
    "mulaw": "a084d6610ef7bd76052532a1b90b4765c65d2d45144228a1d95a2c1b5816a52c",
    "opus": "5374242035fcda29ca4b6c8d426da472a7034c84d9e055fee0d65bf733220f84",
    "packet_loss": "00fa5463c403aba058463f34503dc99388e00d309951ff0fc66ff751ad66f630",
    "pink_noise": "e27fe40bd961b0219270770cf3aebd1da25e85285a285a9e6c01c727f3dba3d3",
    "pops": "3cd1c1fe99963f610f8d3e4e0cb07a0a87bb175064574231f2511f37671bf6b8",
    "reverb_drr": "de4452e9b43aafd16bc3af7d40c418a4185be94841188ad8bb4f0a560ec4e5c8",
    "reverb_rt60": "7d2cba2fb8123f302731022cec429a64491cd072165df47a24c418a0ebdded93",
    "room_noise": "d53392c2ab6b2a445cc0019f6ea794702d92cfd2f1495bb4906f6b30612f597e",
    "vorbis": "90b96897dfdf0616926ec0e356d2c8d3481ff9514b8a7272a0eecd9e0e01cba4",
    "water_drop_noise": "3127f3cd60c89f282032bc92601ffdea4f12fe0197d405692f337098994d8475",
    "white_noise": "63ef96f999e18156e9aa3e6d0e3777b818232bcc3a4865c4df03b321e12445a8",
}


#: the digests that differ on a CPU without AVX-512 (the tables above were recorded on one
#: with it)
WITHOUT_AVX512 = {
    "domain": "9632820ec4433bafeef4a1f46e2072205c362b07a5b3a31cbc5c2e938e47e5b7",
    "jnd": "452650aa7d921b2a7268aeafb4fd8b606c8fa5384dcfad53b0ca5b265b7250af",
    "jnd-default-axes": "f3c7bf27116707b9558e97a8ed7c7d8f231975f5ed42ec7c4a039d3ca9e69f6b",
    "nmr": "4622c3826315802afcb4271815d6a40835b8c77c136b7894cbc5ab866ac9557e",
    "family:opus": "79de8a7e899101f7cb91107aebf7e6c22f44f71e20ff7c728a69e92dc0cd9277",
    "float64:reverb_rt60": "caa6f004c3109e25093a19cf0a32eebf83bd3b649c1613fdd77277ce7b7af938",
}


def has_avx512() -> bool:
    """Whether NumPy runs its AVX-512 code on this CPU."""
    from numpy._core._multiarray_umath import __cpu_features__

    return bool(__cpu_features__.get("AVX512_SKX") or __cpu_features__.get("AVX512F"))


def pinned(table: dict[str, str], name: str, key: str | None = None) -> str:
    """``table[name]``, or this kind of CPU's digest where it has its own."""
    if not has_avx512():
        return WITHOUT_AVX512.get(key or name, table[name])
    return table[name]


def _dataset_digest(path: str) -> str:
    digests = row_digests(path)
    return hashlib.sha256("".join(digests[i] for i in sorted(digests)).encode()).hexdigest()


def test_pinned_recipes_exist():
    # recipes added after the pin (issue 9) may be pinned here too; none may disappear
    assert {name.split("-")[0] for name in SPECS} <= set(recipe_names())


@pytest.mark.parametrize("name", sorted(SPECS))
def test_recipe_rows_unchanged(name, tmp_path, demo_corpus):
    recipe = name.split("-")[0]
    out = str(tmp_path / name)
    build_local(
        recipe,
        {"num_examples": 6, "shard_size": 4, "clip_seconds": 1.0, "seed": 3, **SPECS[name]},
        out,
    )
    assert _dataset_digest(out) == pinned(ROW_DIGESTS, name)


def test_pinned_families_exist():
    # families added after the pin (issue 9) may be pinned here too; none may disappear
    assert set(FAMILY_DIGESTS) <= set(perturbations.names())


@pytest.mark.parametrize("name", sorted(FAMILY_DIGESTS))
def test_family_output_unchanged(name, demo_sources):
    fam = perturbations.get(name)
    x = speech_like(seconds=1.0, sample_rate=16000, seed=5)
    h = hashlib.sha256()
    for strength in (0.0, 45.0, 100.0):
        params = fam.sample(np.random.default_rng(11), strength, demo_sources)
        y = fam.apply(x, 16000, params, demo_sources)
        h.update(np.ascontiguousarray(y, dtype=np.float32).tobytes())
    assert h.hexdigest() == pinned(FAMILY_DIGESTS, name, f"family:{name}")


#: ``griffin_lim``'s digest before its NumPy engine: librosa's engine, which params recorded
#: before it name by default
GRIFFIN_LIM_LIBROSA = "79b5921d0f8f8e6d9f9a27679f9538e5f4d9916edd4c973b5455620145879014"


def test_griffin_lim_rows_recorded_before_the_numpy_engine_replay(demo_sources):
    fam = perturbations.get("griffin_lim")
    x = speech_like(seconds=1.0, sample_rate=16000, seed=5)
    h = hashlib.sha256()
    for strength in (0.0, 45.0, 100.0):
        stored = fam.sample(np.random.default_rng(11), strength, demo_sources).to_dict()
        del stored["engine"]  # what a row written before the engine field holds
        y = fam.apply(x, 16000, fam.params_type.from_dict(stored), demo_sources)
        h.update(np.ascontiguousarray(y, dtype=np.float32).tobytes())
    assert h.hexdigest() == GRIFFIN_LIM_LIBROSA


#: the reverb families' digests before their float32 engine (issue 13 item 2): the float64
#: engine, which params recorded before it name by default
REVERB_FLOAT64 = {
    "reverb_drr": "9a0ce017c1e72255be6d0ffbb8c76bfa2e6d881e11d61f17312e26d5a4810c9b",
    "reverb_rt60": "8c116e05477d16a10c869959e10b5dbe6d976039a61140ad8666db88f6bedb83",
}


@pytest.mark.parametrize("name", sorted(REVERB_FLOAT64))
def test_reverb_rows_recorded_before_the_float32_engine_replay(name, demo_sources):
    fam = perturbations.get(name)
    x = speech_like(seconds=1.0, sample_rate=16000, seed=5)
    h = hashlib.sha256()
    for strength in (0.0, 45.0, 100.0):
        stored = fam.sample(np.random.default_rng(11), strength, demo_sources).to_dict()
        assert stored.pop("engine") == "float32"  # what a row written before it lacks
        y = fam.apply(x, 16000, fam.params_type.from_dict(stored), demo_sources)
        h.update(np.ascontiguousarray(y, dtype=np.float32).tobytes())
    assert h.hexdigest() == pinned(REVERB_FLOAT64, name, f"float64:{name}")
