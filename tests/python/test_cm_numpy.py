"""test_cm_numpy.py: tests of python/cm_numpy.py, alone and against the cm binary's outputs.

Alone: Philox4x32-10 against the Random123 known-answer vectors, cm's derived draws against
values printed by src/core/rng.c, vectorised against scalar draws, the schedule, coefficients,
embedding and MLP against hand computations, the committed golden models, bad and fuzzed files
(the committed fuzz corpus and seeded mutations: a clear CmFormatError, never another exception).
With --work DIR (tests/cli_python.sh): DIR/manifest.txt lists what cm wrote (samples, data draws,
checkpoints) and each is compared: draws bit for bit, samples to a relative 1e-5.
Usage: /usr/bin/python3 tests/python/test_cm_numpy.py [--work DIR]
Ends with "python: N passed, N failed"; exit status 1 on any failure.
"""
import json
import math
import os
import struct
import sys
import traceback

try:
    import numpy as np
except ImportError:
    print(f"  FAIL: {sys.executable} cannot import numpy: install the Debian package python3-numpy "
          "(scripts/deps does)")
    print("python: 0 passed, 1 failed")
    sys.exit(1)

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))
import cm_numpy as cmn  # noqa: E402

GOLDEN = os.path.join(ROOT, "tests", "golden")
SAMPLE_TOLERANCE = 1e-5  # max |python - cm| / max |cm|: float64 here, float32 BLAS in cm
TESTS = []


def test(function):
    TESTS.append(function)
    return function


def raises(kind, function, *args, contains="", **kwargs):
    """True when function(*args) raises `kind` with `contains` in its message; no exception is
    a failure, and any other exception propagates and fails the test."""
    try:
        function(*args, **kwargs)
    except kind as error:
        assert contains in str(error), f"message {str(error)!r} lacks {contains!r}"
        return True
    raise AssertionError(f"{function.__name__} did not raise {kind.__name__} (expected "
                         f"{contains!r})")


# ---------------------------------------------------------------------------- random numbers

@test
def philox_random123_known_answers():
    # Random123 kat_vectors for philox4x32_10: counter, key -> output (as tests/core/test_rng.c)
    cases = [
        ([0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]),
        ([0xffffffff] * 4, [0xffffffff] * 2, [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]),
        ([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0],
         [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]),
    ]
    for counter, key, want in cases:
        assert cmn.philox4x32(counter, key).tolist() == want, (counter, key)
    # vectorised: the same three as one batch, and broadcast against one key
    batch = cmn.philox4x32([c for c, _, _ in cases], [k for _, k, _ in cases])
    assert batch.tolist() == [w for _, _, w in cases]
    assert cmn.philox4x32([[0, 0, 0, 0], [0, 0, 0, 0]], [0, 0]).tolist() == [cases[0][2]] * 2


def hex_floats(text):
    return [float.fromhex(v) for v in text.split()]


@test
def rng_matches_values_printed_by_the_c_library():
    # Printed by a scratch program linking build/libcm.a (src/core/rng.c) on x86-64 glibc.
    assert cmn.Rng(0).key == (0xecf1375e, 0x29cc7482)
    assert cmn.Rng(12345678901234567890).key == (0x9f4a095e, 0x0d9d5c42)
    r = cmn.Rng(42)
    assert r.key == (0x25bf7ed1, 0x67d7e8d6)
    assert r.fork(7).key == (0x1f7fdb3f, 0x7969e309)
    assert r.fork(0x123456789abc).key == (0xad98aed5, 0xca1993e6)
    assert [r.u32() for _ in range(6)] == [0x1262f310, 0xe40af1bb, 0x232262bf, 0xf6c7a40a,
                                           0x20542a6b, 0x2b0f5aad]
    assert r.u64() == 0xd42e1e648fbe3e06
    assert [r.uniform(), r.uniform()] == hex_floats("0x1.bc0dc99084d3fp-2 0x1.c18f9392e063cp-4")
    assert [r.below(1000), r.below(1000)] == [85, 369]
    assert [r.normal() for _ in range(5)] == hex_floats(
        "-0x1.d6a123227beadp+0 -0x1.f2ab180dfa5c5p+0 0x1.b0be708272fe2p-1 -0x1.205644d49ab4ap-2 "
        "0x1.e29cf90b76d46p-1")
    child = cmn.Rng(42).fork(3)
    assert child.normal_fill_f64(7).tolist() == hex_floats(
        "-0x1.c81a100003f2ap-1 0x1.5a72a549651d3p-2 0x1.26fba25888e5fp-2 -0x1.1d645b7755455p-2 "
        "0x1.1f7c5ec83b5cbp+0 0x1.4f14860b145f7p-1 -0x1.2a2a0607c9155p-1")
    child = cmn.Rng(42).fork(3)
    child.u32()  # an odd position: the pairs straddle Philox blocks
    assert child.normal_fill_f32(7).tolist() == hex_floats(
        "0x1.04de94p+0 -0x1.599f08p-1 -0x1.6b0e0ap-3 -0x1.ee94f4p+0 -0x1.a07e1ap-2 -0x1.abcbbep-2 "
        "-0x1.478234p+0")


@test
def rng_words_at_any_position_equal_single_draws():
    for start in range(6):
        for n in (0, 1, 3, 4, 9):
            a, b = cmn.Rng(3), cmn.Rng(3)
            a.position = b.position = start
            assert a.words(n).tolist() == [b.u32() for _ in range(n)], (start, n)
            assert a.position == b.position


@test
def vectorised_normals_equal_the_scalar_draws_bit_for_bit():
    # 20001 float32 normals (odd: the last sine becomes the spare) against cm_rng_normal's
    # sequence, then the draws continue identically (spare, position)
    vector, scalar = cmn.Rng(5).fork(2), cmn.Rng(5).fork(2)
    values = vector.normal_fill_f32(20001)
    expected = np.array([scalar.normal() for _ in range(20001)], dtype=np.float32)
    assert np.array_equal(values, expected), int(np.sum(values != expected))
    assert vector.spare == scalar.spare and vector.position == scalar.position
    assert vector.normal_fill_f32(5).tolist() == [np.float32(scalar.normal()) for _ in range(5)]
    # per-point children, odd and even dimensions
    parent = cmn.Rng(11).fork(4)
    for dim in (1, 2, 5):
        rows = cmn.point_normals_f32(parent.key, 1000, 300, dim)
        for i in (0, 1, 150, 299):
            child = parent.fork(1000 + i)
            assert rows[i].tolist() == [np.float32(child.normal()) for _ in range(dim)], (dim, i)


@test
def libm_fallback_of_the_vectorised_normals_gives_the_same_values():
    # a band of 2^-12 sends about 1 value in 2000 (and in general any value near a float32
    # rounding boundary) through the exact libm path: the values must not change
    default = cmn.Rng(8).normal_fill_f32(40000)
    saved = cmn._F32_BAND
    try:
        cmn._F32_BAND = 2.0 ** -12
        wide = cmn.Rng(8).normal_fill_f32(40000)
    finally:
        cmn._F32_BAND = saved
    assert np.array_equal(default, wide)


@test
def uniform_and_normal_moments_within_sample_size_tolerances():
    seed = 2024
    print(f"    (seed {seed})")
    rng = cmn.Rng(seed)
    words = rng.words(2 * 200000).reshape(-1, 2)
    u = cmn._uniform(words[:, 0], words[:, 1])
    z = rng.normal_fill_f32(200000).astype(np.float64)
    n = 200000
    assert 0 < u.min() and u.max() < 1
    assert abs(u.mean() - 0.5) <= 5 * math.sqrt(1 / 12 / n)
    assert abs(z.mean()) <= 5 * math.sqrt(1 / n)
    assert abs((z * z).mean() - 1) <= 5 * math.sqrt(2 / n)


# ---------------------------------------------------------------------------- model pieces

@test
def lhw_schedule_properties():
    s = cmn.LhwSchedule(100, 2.0, 4.0)
    rate = 4.0 * math.log(100) / 100
    assert s.beta[1] == 100.0 ** -2.0 or abs(s.beta[1] - 1e-4) < 1e-18
    assert all(s.beta[t] <= rate * (1 + 1e-15) for t in range(2, 101))
    assert np.all(np.diff(s.sigma[1:]) > 0)
    assert abs(s.log_abar[100] - np.sum(np.log1p(-s.beta[1:]))) < 1e-12
    assert s.nearest(s.sigma[37]) == 37 and s.nearest(1e-9) == 1 and s.nearest(1e9) == 100
    c = cmn.consistency_lhw(s, 1, 0.5)
    assert c.skip == 1.0 and c.out == 0.0  # f(x, 1) = x to the bit


@test
def coefficients_known_answers():
    c = cmn.consistency_ve(1.0, 0.5, 0.0)  # sd^2 = 0.25: skip 0.25 / 1.25, out 0.5 / sqrt(1.25)
    assert abs(c.skip - 0.2) < 1e-16 and abs(c.out - 0.5 / math.sqrt(1.25)) < 1e-16
    assert abs(c.scale_in - 1 / math.sqrt(1.25)) < 1e-16 and c.c_noise == 0.0
    b = cmn.consistency_ve(0.002, 0.5, 0.002)
    assert b.skip == 1.0 and b.out == 0.0
    t = cmn.consistency_two_time(3.0, 3.0, 0.5)
    assert t.skip == 1.0 and t.out == 0.0 and t.c_noise_target == 0.25 * math.log(3.0)
    t = cmn.consistency_two_time(2.0, 0.5, 0.5)  # r = 1/4, D at sigma 2: skip 0.25 / 4.25
    assert abs(t.skip - (0.25 + 0.75 * 0.25 / 4.25)) < 1e-15
    assert abs(t.out - 0.75 * 0.5 * 2 / math.sqrt(4.25)) < 1e-15


@test
def fourier_embedding_order_and_frequencies():
    e = cmn.fourier_embedding([0.3], 8, 1000.0)[0]
    frequencies = [1.0, 10.0, 100.0, 1000.0]
    want = [math.sin(f * 0.3) for f in frequencies] + [math.cos(f * 0.3) for f in frequencies]
    assert np.allclose(e, want, rtol=0, atol=1e-12), (e, want)
    assert np.allclose(cmn.fourier_embedding([2.0], 2, 50.0)[0], [math.sin(2), math.cos(2)])


def tiny_config(method="ict", dim=2, width=3, depth=2, embed=4):
    return cmn.Config({"method": method, "dim": dim, "width": width, "depth": depth,
                       "embed": embed, "embed_max_frequency": 10.0})


@test
def mlp_forward_against_loops():
    rng = np.random.default_rng(1)
    for method in ("ict", "cd2"):
        config = tiny_config(method)
        layers = [(rng.standard_normal((o, i)).astype(np.float32),
                   rng.standard_normal(o).astype(np.float32)) for o, i in cmn.mlp_layout(config)]
        x, c, ct = rng.standard_normal((4, 2)), rng.standard_normal(4), rng.standard_normal(4)
        got = cmn.mlp_forward(layers, config, x, c, ct if method == "cd2" else None)
        for b in range(4):
            row = list(x[b]) + [math.sin(c[b]), math.sin(10 * c[b]), math.cos(c[b]),
                                math.cos(10 * c[b])]
            if method == "cd2":
                row += [math.sin(ct[b]), math.sin(10 * ct[b]), math.cos(ct[b]),
                        math.cos(10 * ct[b])]
            for index, (weight, bias) in enumerate(layers):
                row = [sum(float(weight[o, i]) * row[i] for i in range(len(row))) + float(bias[o])
                       for o in range(len(bias))]
                if index + 1 < len(layers):
                    row = [v / (1 + math.exp(-v)) for v in row]
            assert np.allclose(got[b], row, rtol=1e-12, atol=1e-12), (method, b, got[b], row)


@test
def silu_is_accurate_and_finite_everywhere():
    x = np.linspace(-745, 745, 20001)
    want = np.array([v / (1 + math.exp(-v)) if v >= 0 else v * math.exp(v) / (1 + math.exp(v))
                     for v in x])
    got = cmn.silu(x)
    assert np.all(np.isfinite(got))
    assert np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-300)) < 1e-14


@test
def config_parsing_defaults_and_versions():
    c = cmn.parse_config('{"method": "dsm", "dim": 3}')
    assert (c.depth, c.width, c.embed, c.sigma_data, c.T) == (2, 256, 64, 0.5, 100)
    assert cmn.parse_config('{"method": "cd2", "dim": 2}').two_time
    assert cmn.parse_config('{"method": "ict", "dim": 2.0}').dim == 2
    raises(cmn.CmFormatError, cmn.parse_config, '{"method": "ict", "dim": 2}', "3",
           contains="format version")
    raises(cmn.CmFormatError, cmn.parse_config, '{"method": "ict", "dim": 2}', "2",
           contains="needs")
    nested = cmn.parse_config('{"method": {"method": "cd2", "cd_levels": 9}, "network": {"type": '
                              '"mlp", "dim": 3, "width": 40}, "optimizer": {"lr": 0.5}, '
                              '"steps": 7}', "2")
    assert nested.method == "cd2" and nested.dim == 3 and nested.width == 40, "format 2 parsed"
    assert nested.cd_levels == 9 and nested.two_time, "format 2 parsed"
    raises(cmn.CmFormatError, cmn.parse_config, '{"method": "ict2", "dim": 2}', contains="method")
    raises(cmn.CmFormatError, cmn.parse_config, '{"method": "ict"}', contains="dim")
    raises(cmn.CmFormatError, cmn.parse_config, '{"method": "ict", "dim": 2, "embed": 5}',
           contains="even")
    raises(cmn.CmFormatError, cmn.parse_config, '{"method": "ict", "dim": 2, "sigma_max": NaN}')
    raises(cmn.CmFormatError, cmn.parse_config, '{"method": "ict", "dim": 2, "dim": 3}',
           contains="repeats")
    raises(cmn.CmFormatError, cmn.parse_config, '[1]')
    raises(cmn.CmFormatError, cmn.parse_config, '{"method": "lhw", "dim": 2, "T": 1000000000}',
           contains="[2, 10000000]")
    raises(cmn.CmFormatError, cmn.parse_config, '{"method": "ict", "dim": 2, "depth": 17}',
           contains="depth")


# ---------------------------------------------------------------------------- files

def golden(method):
    return os.path.join(GOLDEN, f"model-{method}.safetensors")


@test
def golden_models_load_and_sample():
    for method in ("lhw", "ct", "ict", "dsm", "cd", "cd2"):
        model = cmn.load_model(golden(method))
        c = model.config
        assert c.method == method and c.dim == 2 and c.width == 32 and c.depth == 2
        assert [w.shape for w, _ in model.layers] == [(32, 2 + 16 * (2 if method == "cd2" else 1)),
                                                     (32, 32), (2, 32)]
        assert model.data_source in ("moons", "gmm:d=2,k=3,sep=4,std=0.5,seed=1"), model.data_source
        if method == "dsm":
            raises(ValueError, cmn.sample, model, 10, 1, contains="denoiser")
            continue
        x = cmn.sample(model, 50, 1)
        assert x.shape == (50, 2) and np.all(np.isfinite(x))
        if method == "lhw":
            assert model.schedule.T == 20


EVALUATION_FIELDS = ("method", "dim", "width", "depth", "embed", "embed_max_frequency", "two_time",
                     "sigma_data", "sigma_min", "sigma_max", "rho", "T", "c0", "c1", "cd_levels")


def nested(flat, template):
    """A format-1 (flat) configuration in format 2's nested form, each key in the part where the
    format-2 `template` keeps it (the network part gains "type": "mlp")."""
    parts = {part: {} for part, value in template.items() if isinstance(value, dict)}
    where = {key: part for part in parts for key in template[part]}
    out = {}
    for key, value in flat.items():
        if key in where:
            parts[where[key]][key] = value
        else:
            out[key] = value
    parts["network"]["type"] = "mlp"
    out.update(parts)
    return out


@test
def format1_and_format2_configs_read_alike():
    for method in ("lhw", "ct", "ict", "dsm", "cd", "cd2"):
        old = cmn.load_model(os.path.join(GOLDEN, "format1", f"model-{method}.safetensors"))
        new = cmn.load_model(golden(method))
        assert (old.format_version, new.format_version) == ("1", "2"), method
        template = json.loads(new.metadata["cm.config"])
        assert set(template) >= {"method", "network", "optimizer", "steps"}, template.keys()
        assert template["network"]["type"] == "mlp" and template["method"]["method"] == method
        flat = json.loads(old.metadata["cm.config"])
        again = cmn.parse_config(json.dumps(nested(flat, template)), "2")
        for field in EVALUATION_FIELDS:
            assert getattr(again, field) == getattr(old.config, field), (method, field)
        for key, value in flat.items():
            assert again.fields[key] == value, (method, key)


@test
def unet_models_are_refused_clearly():
    text = json.dumps({"method": {"method": "ict"}, "network": {
        "type": "unet", "dim": 64, "image_channels": 1, "image_height": 8, "image_width": 8}})
    raises(cmn.CmFormatError, cmn.parse_config, text, "2", contains="'unet'")


@test
def denoiser_of_a_dsm_model():
    model, ict = cmn.load_model(golden("dsm")), cmn.load_model(golden("ict"))
    x = np.random.default_rng(3).normal(size=(40, 2))
    sigma = 2.5
    assert np.array_equal(model.denoise(x, sigma),
                          model.apply(x, cmn.consistency_ve(sigma, 0.5, 0.0)))
    assert np.max(np.abs(model.denoise(x, 1e-7) - x)) < 1e-6  # c_skip -> 1, c_out -> 0
    assert not np.allclose(model.denoise(x, sigma), x)
    raises(ValueError, ict.denoise, x, sigma, contains="not a denoiser")
    raises(ValueError, model.denoise, x, 0.0, contains="> 0")
    raises(ValueError, model.denoise, x, float("nan"), contains="> 0")


@test
def sample_is_its_noise_and_independent_of_chunking():
    model = cmn.load_model(golden("ict"))
    a = cmn.sample(model, 300, 9, sigmas=[5, 0.5])
    noise = cmn.sample_noise(300, 2, 9, 2)
    assert np.array_equal(a, cmn.sample(model, 300, sigmas=[5, 0.5], noise=noise))
    # rows are independent; the bits may differ across batch shapes (BLAS picks kernels by shape)
    assert np.allclose(a[:120], cmn.sample(model, 120, 9, sigmas=[5, 0.5]), rtol=1e-13, atol=1e-13)
    saved = cmn.SAMPLER_ROWS
    try:
        cmn.SAMPLER_ROWS = 64
        assert np.allclose(a, cmn.sample(model, 300, 9, sigmas=[5, 0.5]), rtol=1e-13, atol=1e-13)
        assert np.array_equal(noise, cmn.sample_noise(300, 2, 9, 2))  # the draws: bit for bit
    finally:
        cmn.SAMPLER_ROWS = saved
    raises(ValueError, cmn.sample, model, 300, sigmas=[5, 0.5], noise=noise[0], contains="shape")
    one = cmn.sample(model, 10, noise=np.zeros((10, 2)))  # [n, D] for one stage
    assert np.allclose(one, one[0])


@test
def sampler_level_checks():
    ict, lhw = cmn.load_model(golden("ict")), cmn.load_model(golden("lhw"))
    assert cmn.sampler_levels(ict) == ([10.0], None)
    assert cmn.sampler_levels(lhw) == ([lhw.schedule.sigma[20]], [20])
    assert cmn.sampler_levels(lhw, times=[20, 9])[1] == [20, 9]
    raises(ValueError, cmn.sampler_levels, ict, [5, 6], contains="decrease")
    raises(ValueError, cmn.sampler_levels, ict, [5, 0.001], contains="> 0.002")
    raises(ValueError, cmn.sampler_levels, ict, [float("nan")], contains="finite")
    raises(ValueError, cmn.sampler_levels, ict, [1.0] * 65, contains="at most 64")
    raises(ValueError, cmn.sampler_levels, ict, times=[3], contains="lhw")
    raises(ValueError, cmn.sampler_levels, lhw, times=[21], contains="[1, T = 20]")
    raises(ValueError, cmn.sampler_levels, lhw, [5, 4.99], contains="chain indices")
    raises(ValueError, cmn.sampler_levels, lhw, [5, 1e-9], contains="t = 1")
    raises(ValueError, cmn.sample, ict, 0, contains=">= 1")


def model_bytes(method="ict"):
    with open(golden(method), "rb") as file:
        return file.read()


def with_header(data, edit):
    """The file `data` with its JSON header replaced by edit(header dict), tensors kept."""
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    text = json.dumps(edit(header)).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data[8 + length:]


def load_bytes(data, path):
    with open(path, "wb") as file:
        file.write(data)
    return cmn.load_model(path)


@test
def bad_model_files_give_clear_errors():
    tmp = os.path.join(WORK or "/tmp", f"bad-{os.getpid()}.safetensors")
    good = model_bytes()

    def meta(key, value):
        def edit(h):
            h["__metadata__"][key] = value
            return h
        return edit

    def flat(config):  # a format-1 (flat) configuration
        def edit(h):
            h["__metadata__"]["cm.config"] = config
            h["__metadata__"]["cm.format_version"] = "1"
            return h
        return edit

    def drop(key):
        def edit(h):
            (h if key in h else h["__metadata__"]).pop(key)
            return h
        return edit

    def tensor(name, field, value):
        def edit(h):
            h[name][field] = value
            return h
        return edit
    nan_weight = bytearray(good)
    (length,) = struct.unpack("<Q", good[:8])
    nan_weight[8 + length:8 + length + 4] = struct.pack("<f", float("nan"))
    cases = [
        (good[:5], "truncated"),
        (struct.pack("<Q", 10 ** 12) + good[8:], "header length"),
        (good[:8] + b"[" + good[9:], "JSON"),
        (with_header(good, meta("cm.format_version", "3")), "format version 3"),
        (with_header(good, drop("cm.config")), "not a cm model"),
        (with_header(good, flat('{"method": "ict", "dim": 3}')), "wrong shape"),
        (with_header(good, flat('{"method": "cd2", "dim": 2, "width": 32, "depth": 2, '
                                '"embed": 16}')), "wrong shape"),
        (with_header(good, meta("cm.transform", '{"shift": [0], "scale": [1]}')), "2 finite"),
        (with_header(good, meta("cm.transform", '{"shift": [0, 0], "scale": [1, 0]}')), "> 0"),
        (with_header(good, meta("cm.data", 3)), "__metadata__"),
        (with_header(good, drop("mlp.1.bias")), "mlp.1.bias"),
        (with_header(good, tensor("mlp.1.bias", "dtype", "F17")), "dtype"),
        (with_header(good, tensor("mlp.1.bias", "dtype", "I32")), "F32 or F64"),
        (with_header(good, tensor("mlp.1.bias", "shape", [31])), "bytes for shape"),
        (with_header(good, tensor("mlp.1.bias", "data_offsets", [0, 10 ** 9])), "outside"),
        (with_header(good, tensor("mlp.1.bias", "data_offsets", [0, 128])), "overlap"),
        (with_header(good, tensor("mlp.1.bias", "shape", [-1])), "non-negative"),
        (bytes(nan_weight), "non-finite"),
        (with_header(good, meta("cm.transform", '{"shift": [0, 1%s], "scale": [1, 1]}'
                                % ("0" * 400))), "finite"),
        (with_header(good, flat('{"method": "ict", "dim": 2, "sigma_max": 1%s}'
                                % ("0" * 5000))), "sigma_max"),
        (with_header(good, tensor("mlp.1.bias", "shape", [10 ** 40])), "non-negative"),
    ]
    try:
        for data, message in cases:
            raises(cmn.CmFormatError, load_bytes, data, tmp, contains=message)
        raises(cmn.CmFormatError, cmn.load_checkpoint, golden("ict"), contains="not a checkpoint")
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_any(path):
    """Every reader on one file: each returns or raises CmFormatError, nothing else."""
    for reader in (cmn.read_safetensors, cmn.load_model, cmn.load_checkpoint):
        try:
            reader(path)
        except cmn.CmFormatError:
            pass


@test
def fuzz_corpus_replay_never_raises_anything_else():
    count = 0
    for corpus in ("safetensors", "model", "checkpoint"):
        directory = os.path.join(ROOT, "tests", "fuzz", "corpus", corpus)
        for name in sorted(os.listdir(directory)):
            load_any(os.path.join(directory, name))
            count += 1
    assert count > 50, count
    for corpus in ("npy", "csv"):  # the sample readers, under the extension they dispatch on
        directory = os.path.join(ROOT, "tests", "fuzz", "corpus", corpus)
        path = os.path.join(WORK or "/tmp", f"corpus-{os.getpid()}.{corpus}")
        try:
            for name in sorted(os.listdir(directory)):
                with open(os.path.join(directory, name), "rb") as source, open(path, "wb") as copy:
                    copy.write(source.read())
                try:
                    cmn.read_samples(path)
                except cmn.CmFormatError:
                    pass
                count += 1
        finally:
            if os.path.exists(path):
                os.remove(path)
    assert count > 200, count


@test
def seeded_mutations_never_raise_anything_else():
    seed = 77
    print(f"    (seed {seed})")
    rng = np.random.default_rng(seed)
    path = os.path.join(WORK or "/tmp", f"mutant-{os.getpid()}.safetensors")
    good = model_bytes("cd2")
    (length,) = struct.unpack("<Q", good[:8])
    try:
        for _ in range(400):
            data = bytearray(good)
            for _ in range(int(rng.integers(1, 4))):
                position = int(rng.integers(0, 8 + length + 64))  # mostly the header
                data[position] = int(rng.integers(0, 256))
            if rng.random() < 0.2:
                data = data[:int(rng.integers(0, len(data)))]
            with open(path, "wb") as file:
                file.write(data)
            load_any(path)
    finally:
        if os.path.exists(path):
            os.remove(path)


ODD_VALUES = [None, True, -1, 0, 2.5, 10 ** 40, 1e308, "", "F64", "I32", "2", [], [1], [-1, 2],
              [0, 10 ** 9], {}, {"a": 1}]


def mutate_json(value, rng, depth=0):
    """value with one entry somewhere replaced by an odd value (or deleted); JSON held in a
    string (cm's metadata values) is mutated inside the string."""
    if isinstance(value, dict) and value:
        key = list(value)[int(rng.integers(len(value)))]
        roll = rng.random()
        if roll < 0.15:
            del value[key]
        elif roll < 0.5 or depth > 3:
            value[key] = ODD_VALUES[int(rng.integers(len(ODD_VALUES)))]
        else:
            value[key] = mutate_json(value[key], rng, depth + 1)
        return value
    if isinstance(value, list) and value:
        index = int(rng.integers(len(value)))
        value[index] = mutate_json(value[index], rng, depth + 1)
        return value
    if isinstance(value, str) and value.startswith("{"):
        return json.dumps(mutate_json(json.loads(value), rng, depth + 1))
    return ODD_VALUES[int(rng.integers(len(ODD_VALUES)))]


@test
def seeded_header_mutations_never_raise_anything_else():
    # valid JSON with wrong types and values in every place: each reader (and sampling what
    # loads) returns or raises CmFormatError
    seed = 78
    print(f"    (seed {seed})")
    rng = np.random.default_rng(seed)
    path = os.path.join(WORK or "/tmp", f"mutant-header-{os.getpid()}.safetensors")
    sources = [golden(m) for m in ("ict", "cd2", "lhw")] + [
        os.path.join(GOLDEN, "resume-ict", "checkpoints", "step-00000100.safetensors")]
    seeds = []
    for source in sources:
        with open(source, "rb") as file:
            data = file.read()
        (length,) = struct.unpack("<Q", data[:8])
        seeds.append((data[8:8 + length], data[8 + length:]))
    try:
        for _ in range(600):
            header, body = seeds[int(rng.integers(len(seeds)))]
            edited = json.loads(header)
            for _ in range(int(rng.integers(1, 3))):
                edited = mutate_json(edited, rng)
            text = json.dumps(edited).encode()
            with open(path, "wb") as file:
                file.write(struct.pack("<Q", len(text)) + text + body)
            load_any(path)
            try:
                model = cmn.load_model(path)
            except cmn.CmFormatError:
                continue
            if model.config.method != "dsm":
                cmn.sample(model, 3, 1)
    finally:
        if os.path.exists(path):
            os.remove(path)


@test
def npy_reader():
    path = os.path.join(WORK or "/tmp", f"t-{os.getpid()}.npy")
    try:
        np.save(path, np.arange(6, dtype=np.float32).reshape(3, 2))
        assert cmn.read_samples(path).tolist() == [[0, 1], [2, 3], [4, 5]]
        np.save(path, np.arange(3, dtype=np.float64))
        assert cmn.read_samples(path).tolist() == [[0], [1], [2]]
        for bad in (np.arange(3, dtype=np.int32), np.zeros((2, 2, 2)),
                    np.asfortranarray(np.zeros((2, 3))), np.zeros(3, dtype=">f8")):
            np.save(path, bad)
            raises(cmn.CmFormatError, cmn.read_samples, path, contains="'<f4' or '<f8'")
        np.save(path, np.zeros((4, 2), dtype=np.float32))
        with open(path, "r+b") as file:
            file.truncate(os.path.getsize(path) - 4)
        raises(cmn.CmFormatError, cmn.read_samples, path, contains="28 data bytes")
        np.save(path, np.array([1.0, np.inf]))
        raises(cmn.CmFormatError, cmn.read_samples, path, contains="non-finite")
        with open(path, "r+b") as file:
            file.truncate(70)
        raises(cmn.CmFormatError, cmn.read_samples, path, contains="NPY")
    finally:
        os.remove(path)


@test
def csv_reader():
    path = os.path.join(WORK or "/tmp", f"t-{os.getpid()}.csv")
    try:
        for text, want in (("x0,x1\n1,2\n\n3,4.5\n", [[1, 2], [3, 4.5]]), ("1\n2\n", [[1], [2]])):
            with open(path, "w") as file:
                file.write(text)
            assert cmn.read_samples(path).tolist() == want
        for text, message in (("1,2\n3\n", "columns"), ("1,2\nnan,1\n", "non-finite"),
                              ("a,b\nc,d\n", "line 2"), ("", "no rows")):
            with open(path, "w") as file:
                file.write(text)
            raises(cmn.CmFormatError, cmn.read_samples, path, contains=message)
    finally:
        os.remove(path)


# ---------------------------------------------------------------------------- against cm

WORK = None


def manifest(kind):
    """Lines of WORK/manifest.txt that start with `kind`, split into fields."""
    with open(os.path.join(WORK, "manifest.txt")) as file:
        return [line.split()[1:] for line in file if line.split()[:1] == [kind]]


def levels(option):
    """sigmas=a,b / times=a,b -> keyword arguments of cmn.sample."""
    if not option:
        return {}
    key, values = option.split("=")
    return {key: [float(v) if key == "sigmas" else int(v) for v in values.split(",")]}


def cm_tests():
    @test
    def samples_match_cm_sample():
        lines = manifest("sample")
        assert len(lines) >= 15, len(lines)
        worst = {}
        for model_path, output, seed, n, *option in lines:
            model = cmn.load_model(model_path)
            ours = cmn.sample(model, int(n), int(seed), **levels(option[0] if option else ""))
            theirs = cmn.read_samples(output)
            assert theirs.shape == ours.shape, (output, theirs.shape, ours.shape)
            difference = cmn.max_relative_difference(ours, theirs)
            label = f"{model.config.method} {'multistep' if option else 'one step'}"
            worst[label] = max(worst.get(label, 0.0), difference)
            assert difference < SAMPLE_TOLERANCE, (output, difference)
        for label, difference in sorted(worst.items()):
            print(f"    {label}: max |python - cm| / max |cm| = {difference:.2e}")

    @test
    def denoisers_match_cm_ddim_one_step():
        lines = manifest("denoise")
        assert len(lines) >= 3, len(lines)
        worst = 0.0
        for model_path, output, seed, n in lines:
            model = cmn.load_model(model_path)
            ours = ddim_one_step(model, int(n), int(seed))
            difference = cmn.max_relative_difference(ours, cmn.read_samples(output))
            worst = max(worst, difference)
            assert difference < SAMPLE_TOLERANCE, (output, difference)
        print(f"    dsm denoiser (one-step DDIM): max |python - cm| / max |cm| = {worst:.2e}")

    @test
    def format_versions_as_stored():
        lines = manifest("format")
        assert {version for _, version in lines} == {"1", "2"}, lines
        for model_path, version in lines:
            model = cmn.load_model(model_path)
            assert model.format_version == version, (model_path, model.format_version)
            assert model.metadata["cm.format_version"] == version

    @test
    def gaussian_draws_match_cm_data_bit_for_bit():
        lines = manifest("gauss")
        assert lines
        for path, seed, n, dim in lines:
            stream = cmn.Rng(int(seed)).fork(cmn.STREAMS["data"])
            ours = cmn.point_normals_f32(stream.key, 0, int(n), int(dim))
            theirs = np.load(path)
            assert theirs.dtype == np.float32 and np.array_equal(ours, theirs), path

    @test
    def row_draws_match_cm_data_bit_for_bit():
        lines = manifest("rows")
        assert lines
        for path, seed, n, rows in lines:
            stream = cmn.Rng(int(seed)).fork(cmn.STREAMS["data"])
            ours = [stream.fork(i).below(int(rows)) for i in range(int(n))]
            assert cmn.read_samples(path)[:, 0].astype(int).tolist() == ours, path

    @test
    def checkpoints_match_their_runs():
        lines = manifest("checkpoint")
        assert lines
        for path, model_path, seed, step, *data_file in lines:
            ck = cmn.load_checkpoint(path)
            assert ck.step == int(step) and ck.adam_step == int(step), (path, ck.step)
            for name, stream in ck.streams.items():
                assert stream.key == cmn.Rng(int(seed)).fork(cmn.STREAMS[name]).key, (path, name)
            c = ck.model.config
            has_target = c.method in ("ct", "cd", "cd2") or (
                c.method == "lhw" and c.fields.get("teacher") == "sequential")
            assert (ck.target is not None) == has_target, path
            for a, b in zip(ck.model.layers, ck.layers(ck.params)):
                assert a[0].shape == b[0].shape and a[1].shape == b[1].shape
            if model_path != "-":  # the run's last checkpoint holds the model's weights
                model = cmn.load_model(model_path)
                for (wa, ba), (wb, bb) in zip(ck.model.layers, model.layers):
                    assert np.array_equal(wa, wb) and np.array_equal(ba, bb), path
            if data_file:
                values = cmn.read_samples(data_file[0])
                assert ck.data_file["rows"] == values.shape[0]
                assert ck.data_file["cols"] == values.shape[1]
                assert ck.data_file["fnv1a64"] == fnv1a64(values), path
            else:
                assert ck.data_file is None
            assert set(ck.cli) >= {"cm.cli.threads", "cm.cli.save_every", "cm.cli.keep"}


def ddim_one_step(model, n, seed):
    """`cm sample --sampler ddim --steps 1` of a dsm model (src/sample/diffusion.c): x = sigma_max
    z with z of stage 0 in double (normal_fill_f64 of point i's child), then one Euler step to 0,
    x + (0 - s) (x - D(x, s)) / s, in data units."""
    c = model.config
    stage = cmn.Rng(seed).fork(cmn.STREAMS["sample"]).fork(0)
    x = np.array([stage.fork(i).normal_fill_f64(c.dim) for i in range(n)]) * c.sigma_max
    slope = (x - model.denoise(x, c.sigma_max)) / c.sigma_max
    return model.to_data(x + (0.0 - c.sigma_max) * slope)


def fnv1a64(values):
    """FNV-1a 64 over rows, cols (8 bytes little-endian each) and every double's 8 bytes."""
    data = struct.pack("<QQ", *values.shape) + values.astype("<f8").tobytes()
    h = 0xcbf29ce484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def main(argv):
    global WORK
    if "--work" in argv:
        WORK = argv[argv.index("--work") + 1]
        cm_tests()
    passed = failed = 0
    for function in TESTS:
        try:
            function()
            passed += 1
            print(f"  ok   {function.__name__}")
        except Exception:  # a failed assert or any unexpected exception
            failed += 1
            print(f"  FAIL {function.__name__}:")
            print("    " + traceback.format_exc().strip().replace("\n", "\n    "))
    print(f"python: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
