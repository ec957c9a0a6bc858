"""cm_numpy: read cm's files and evaluate its consistency models with numpy alone.

Reads model files and checkpoints (safetensors with cm's __metadata__, docs/formats.md and
docs/checkpoints.md) and sample files (.npy, .csv); reproduces cm's random numbers bit for bit
(Philox4x32-10, Salmon et al. SC 2011, and the draws of src/core/rng.c); evaluates the MLP and the
consistency parameterisations ([CM] VE, [LHW] VP, the two-time map of cd2) and reproduces
`cm sample` one-step and multistep ([CM] Algorithm 1) in float64, from the same float32 inputs
the C code feeds its network (docs/python.md). Written by hand because the point is a reader
that depends on numpy only (not on the safetensors package or on cm's library).
Reads model format 2 (cm 0.2: the nested configuration) and format 1 (cm 0.1: flat); evaluates
the "mlp" network (a U-Net model is refused with a CmFormatError); a dsm model's denoiser
D(x, sigma) is `Model.denoise`.
Not done here: training, the diffusion samplers of dsm models, the [JHMZ] and [LFC] samplers.
"""

import ast
import json
import math
import struct

import numpy as np

__all__ = [
    "CmFormatError", "read_safetensors", "parse_safetensors", "philox4x32", "Rng", "fork_keys",
    "point_normals_f32", "STREAMS", "Config", "parse_config", "LhwSchedule", "karras_grid",
    "Coefficients", "consistency_ve", "consistency_lhw", "consistency_two_time",
    "fourier_embedding", "silu", "mlp_layout", "mlp_forward", "Model", "load_model",
    "sampler_levels", "sample_noise", "sample", "Checkpoint", "load_checkpoint", "read_samples",
    "max_relative_difference",
]

CHECKPOINT_VERSIONS = ("1", "2")  # cm.checkpoint.version (2: the same layout, row-wise level draws)
SAMPLER_MAX_LEVELS = 64          # CM_SAMPLER_MAX_LEVELS (sampler.h)
SAMPLER_ROWS = 8192              # rows per network evaluation here (bounds memory only)


class CmFormatError(ValueError):
    """A file that is not what it claims to be (truncated, malformed, inconsistent)."""


# ---------------------------------------------------------------------------- safetensors

_HEADER_MAX = 100_000_000  # MAX_HEADER_SIZE of the safetensors crate, as src/core/safetensors.c
_DTYPES = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "I8": "i1", "I16": "<i2", "I32": "<i4",
           "I64": "<i8", "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "?"}


def _strict_json(text, what):
    """JSON without NaN/Infinity literals or repeated keys (cm refuses both)."""
    def no_constants(name):
        raise CmFormatError(f"{what}: {name} is not JSON")

    def unique(pairs):
        out = dict(pairs)
        if len(out) != len(pairs):
            seen = set()
            repeated = next(k for k, _ in pairs if k in seen or seen.add(k))
            raise CmFormatError(f"{what}: repeats the name '{repeated}'")
        return out
    def integer(digits):  # a huge integer becomes a float (maybe inf), refused by the checks
        return int(digits) if len(digits) <= 30 else float(digits)
    try:
        return json.loads(text, parse_constant=no_constants, object_pairs_hook=unique,
                          parse_int=integer)
    except (ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
        if isinstance(error, CmFormatError):
            raise
        raise CmFormatError(f"{what}: not valid JSON ({error})") from None


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 2 ** 53


def parse_safetensors(data, name="(buffer)"):
    """(tensors, metadata) of a safetensors image: tensors maps names to read-only numpy arrays
    (little-endian, the file's dtype), metadata the __metadata__ strings ({} when absent)."""
    data = memoryview(bytes(data))
    if len(data) < 8:
        raise CmFormatError(f"{name}: truncated: {len(data)} bytes")
    (length,) = struct.unpack("<Q", data[:8])
    if length > _HEADER_MAX or length > len(data) - 8:
        raise CmFormatError(f"{name}: header length {length} exceeds the file ({len(data)} bytes)"
                            " or 100 MB")
    try:
        text = bytes(data[8:8 + length]).decode("utf-8")
    except UnicodeDecodeError:
        raise CmFormatError(f"{name}: header is not UTF-8") from None
    header = _strict_json(text, f"{name}: header")
    if not isinstance(header, dict):
        raise CmFormatError(f"{name}: header is not a JSON object")
    body = data[8 + length:]
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CmFormatError(f"{name}: __metadata__ is not an object of strings")
    tensors, ranges = {}, []
    for tensor, entry in header.items():
        where = f"{name}: tensor '{tensor}'"
        if not isinstance(entry, dict):
            raise CmFormatError(f"{where} is not an object")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            raise CmFormatError(f"{where} has dtype {dtype!r} (supported: {', '.join(_DTYPES)})")
        if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
            raise CmFormatError(f"{where}: shape is not a list of non-negative integers")
        if (not isinstance(offsets, list) or len(offsets) != 2 or
                not all(_is_count(o) for o in offsets)):
            raise CmFormatError(f"{where}: data_offsets is not [begin, end]")
        begin, end = offsets
        itemsize = np.dtype(_DTYPES[dtype]).itemsize
        if not begin <= end <= len(body):
            raise CmFormatError(f"{where}: data_offsets [{begin}, {end}] outside the "
                                f"{len(body)}-byte data section")
        if end - begin != math.prod(shape) * itemsize:
            raise CmFormatError(f"{where}: {end - begin} bytes for shape {shape} of {dtype}")
        array = np.frombuffer(body[begin:end], dtype=_DTYPES[dtype]).reshape(shape)
        tensors[tensor] = array
        ranges.append((begin, end, tensor))
    ranges.sort()
    for (_, end_a, a), (begin_b, end_b, b) in zip(ranges, ranges[1:]):
        if begin_b < end_a and begin_b < end_b:
            raise CmFormatError(f"{name}: tensors '{a}' and '{b}' overlap")
    return tensors, dict(metadata)


def read_safetensors(path):
    """(tensors, metadata) of the safetensors file at `path` (see parse_safetensors)."""
    with open(path, "rb") as file:
        return parse_safetensors(file.read(), str(path))


# ---------------------------------------------------------------------------- random numbers

_U64 = np.uint64
_MASK32, _SHIFT32 = _U64(0xFFFFFFFF), _U64(32)
_PHILOX_M0, _PHILOX_M1 = _U64(0xD2511F53), _U64(0xCD9E8D57)
_PHILOX_W0, _PHILOX_W1 = _U64(0x9E3779B9), _U64(0xBB67AE85)
_TWO_PI = 6.283185307179586476925286766559  # the literal of rng.c, rounded to the same double
# Streams of a run (rng.h, cm_stream): child ids of cm_rng_init(seed).
STREAMS = {"data": 1, "level": 2, "noise": 3, "sample": 4, "init": 5, "transform": 6, "eval": 7}


def philox4x32(counter, key):
    """Philox4x32-10 of counter [..., 4] under key [..., 2] (uint32, broadcast): uint32 [..., 4].
    Integer arithmetic in uint64 lanes (32 x 32 -> 64-bit products), so exact."""
    counter = np.asarray(counter, dtype=np.uint32).astype(_U64)
    key = np.asarray(key, dtype=np.uint32).astype(_U64)
    c0, c1, c2, c3 = (counter[..., i] for i in range(4))
    k0, k1 = key[..., 0], key[..., 1]
    for _ in range(10):
        p0, p1 = _PHILOX_M0 * c0, _PHILOX_M1 * c2
        c0, c1, c2, c3 = ((p1 >> _SHIFT32) ^ c1 ^ k0, p1 & _MASK32,
                          (p0 >> _SHIFT32) ^ c3 ^ k1, p0 & _MASK32)
        k0, k1 = (k0 + _PHILOX_W0) & _MASK32, (k1 + _PHILOX_W1) & _MASK32
    return np.stack(np.broadcast_arrays(c0, c1, c2, c3), axis=-1).astype(np.uint32)


def _split64(values):
    """(low, high) 32-bit halves of 64-bit integers (arrays of uint64)."""
    values = np.asarray(values, dtype=_U64)
    return (values & _MASK32).astype(np.uint32), (values >> _SHIFT32).astype(np.uint32)


def fork_keys(key, ids):
    """Keys [..., 2] of the children `ids` (uint64 array) of a generator with `key`
    (cm_rng_fork: Philox of counter (id low, id high, 0, 0xF0) under the parent's key)."""
    low, high = _split64(ids)
    counter = np.stack([low, high, np.zeros_like(low), np.full_like(low, 0xF0)], axis=-1)
    return philox4x32(counter, key)[..., :2]


def _uniform(high, low):
    """cm_rng_uniform of the words (high, low): 53 bits plus half a unit, in (0, 1)."""
    bits = ((high.astype(_U64) << _SHIFT32) | low.astype(_U64)) >> _U64(11)
    return (bits.astype(np.float64) + 0.5) * 2.0 ** -53


def _box_muller_exact(u1, u2):
    """(cos, sin) outputs of one Box-Muller pair with the C library's log, sqrt, cos, sin (the
    ones rng.c calls; Python's math module calls the same libm): bit-exact with cm_rng_normal."""
    radius = math.sqrt(-2.0 * math.log(u1))
    angle = _TWO_PI * u2
    return radius * math.cos(angle), radius * math.sin(angle)


_F32_BAND = 2.0 ** -40  # relative half-width around a value within which libm decides (below)


def _box_muller_f32(words):
    """float32 [..., 2] (cos, sin) of the Box-Muller pairs of words [..., 4], as (float) of rng.c's
    double values. numpy's vectorised log/sin/cos may differ from libm in the last bits of a
    double (measured: up to about 3.3 double ulps); a float32 rounding can only change when the
    double lies that close to a float32 rounding boundary, so values within a 2^-40 relative band
    of one (plus 2^-50 of the radius, for values near a zero of cos or sin) are recomputed with
    libm, about one pair in 20000: the result is libm's, bit for bit."""
    u1 = _uniform(words[..., 0], words[..., 1])
    u2 = _uniform(words[..., 2], words[..., 3])
    radius = np.sqrt(-2.0 * np.log(u1))
    angle = _TWO_PI * u2
    pair = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=-1)
    band = np.abs(pair) * _F32_BAND + radius[..., None] * (_F32_BAND / 1024)
    out = pair.astype(np.float32)
    unsure = (pair - band).astype(np.float32) != (pair + band).astype(np.float32)
    for index in zip(*np.nonzero(unsure.any(axis=-1))):
        out[index] = np.array(_box_muller_exact(u1[index], u2[index]), dtype=np.float32)
    return out


class Rng:
    """A cm_rng: a 64-bit key (two 32-bit words) and the position of the next 32-bit word; output
    word p is word p % 4 of Philox(counter (p / 4 low, p / 4 high, 0, 0), key). `spare` is the
    second Box-Muller output waiting to be returned (None when there is none)."""

    def __init__(self, seed=0):
        """cm_rng_init(seed): key = the first two words of Philox(counter (seed low, seed high,
        0x63, 0x6D), key (0x243F6A88, 0x85A308D3)), position 0."""
        seed = int(seed)
        if not 0 <= seed < 2 ** 64:
            raise ValueError(f"seed {seed} is not a 64-bit unsigned integer")
        block = philox4x32([seed & 0xFFFFFFFF, seed >> 32, 0x63, 0x6D], [0x243F6A88, 0x85A308D3])
        self.key = (int(block[0]), int(block[1]))
        self.position = 0
        self.spare = None

    @classmethod
    def from_state(cls, key, position=0, spare=None):
        rng = cls.__new__(cls)
        rng.key, rng.position, rng.spare = (int(key[0]), int(key[1])), int(position), spare
        return rng

    def fork(self, child_id):
        """cm_rng_fork: child `child_id` (parent unchanged)."""
        key = fork_keys(self.key, np.uint64(child_id))
        return Rng.from_state((int(key[0]), int(key[1])))

    def words(self, n):
        """The next n 32-bit words (uint32 array), advancing the position."""
        first, end = self.position, self.position + n
        blocks = np.arange(first >> 2, ((end + 3) >> 2) if n else first >> 2, dtype=_U64)
        low, high = _split64(blocks)
        zero = np.zeros_like(low)
        out = philox4x32(np.stack([low, high, zero, zero], axis=-1), self.key).reshape(-1)
        self.position = end
        return out[first & 3:(first & 3) + n]

    def u32(self):
        return int(self.words(1)[0])

    def u64(self):
        high, low = self.words(2)
        return (int(high) << 32) | int(low)

    def uniform(self):
        """Uniform in (0, 1) with 53 random bits (cm_rng_uniform)."""
        return ((self.u64() >> 11) + 0.5) * 2.0 ** -53

    def below(self, n):
        """Uniform integer in [0, n) without modulo bias (cm_rng_below)."""
        if n <= 1:
            return 0
        limit = 2 ** 64 - 1 - (2 ** 64 - 1) % n
        while True:
            value = self.u64()
            if value < limit:
                return value % n

    def normal(self):
        """Standard normal (cm_rng_normal): Box-Muller, the sine kept as the spare."""
        if self.spare is not None:
            value, self.spare = self.spare, None
            return value
        words = self.words(4)
        cosine, self.spare = _box_muller_exact(_uniform(words[0], words[1]),
                                               _uniform(words[2], words[3]))
        return cosine

    def normal_fill_f64(self, n):
        """n normals as cm_rng_normal_fill_f64 (float64, libm's values: a Python loop)."""
        return np.array([self.normal() for _ in range(n)], dtype=np.float64)

    def normal_fill_f32(self, n):
        """n normals as cm_rng_normal_fill_f32 ((float) of each cm_rng_normal), vectorised."""
        out = np.empty(n, dtype=np.float32)
        i = 0
        if n > 0 and self.spare is not None:
            out[0], self.spare, i = self.spare, None, 1
        pairs = (n - i) // 2
        if pairs:
            words = self.words(4 * pairs).reshape(pairs, 4)
            out[i:i + 2 * pairs] = _box_muller_f32(words).reshape(-1)
            i += 2 * pairs
        if i < n:
            out[i] = self.normal()  # leaves the pair's sine as the spare, as the C loop does
        return out


def point_normals_f32(key, first, count, dim):
    """float32 [count, dim]: row r is cm_rng_normal_fill_f32(cm_rng_fork(parent, first + r), dim)
    for a parent with `key` (the per-point streams of the sampler and the data), vectorised over
    points: a child starts at position 0 with no spare, so its Box-Muller pair j is exactly Philox
    block j under the child's key (cos then sin), and an odd dim drops the last sine."""
    keys = fork_keys(key, np.arange(first, first + count, dtype=_U64))       # [count, 2]
    pairs = (dim + 1) // 2
    blocks = np.arange(pairs, dtype=_U64)
    low, high = _split64(blocks)
    zero = np.zeros_like(low)
    counter = np.stack([low, high, zero, zero], axis=-1)                     # [pairs, 4]
    words = philox4x32(counter[None, :, :], keys[:, None, :])                # [count, pairs, 4]
    return _box_muller_f32(words).reshape(count, 2 * pairs)[:, :dim]


# ---------------------------------------------------------------------------- configuration

METHODS = ("lhw", "ct", "ict", "dsm", "cd", "cd2")


class Config:
    """The parts of a model's training configuration that evaluating it needs, plus every field
    as stored (`fields`, the flat key names of format version 1). Defaults for keys a file omits
    are cm_train_config_default's (src/model/config.c)."""

    def __init__(self, fields):
        self.fields = dict(fields)
        method = fields.get("method")
        if method not in METHODS:
            raise CmFormatError(f"configuration: unknown method {method!r} (valid: "
                                f"{', '.join(METHODS)})")
        self.method = method
        # ranges of cm_mlp_layout_init and cm_train_config_check (T: the schedule is a loop here)
        self.dim = _config_int(fields, "dim", None, 1, 1 << 20)
        self.width = _config_int(fields, "width", 256, 1, 65536)
        self.depth = _config_int(fields, "depth", 2 if method == "dsm" else 3, 1, 16)
        self.embed = _config_int(fields, "embed", 64, 2, 4096)
        if self.embed % 2:
            raise CmFormatError(f"configuration: \"embed\" = {self.embed} must be even")
        self.embed_max_frequency = _config_float(fields, "embed_max_frequency", 1000.0, 1.0)
        self.two_time = method == "cd2"   # not stored: a cd2 network takes the target level too
        self.sigma_data = _config_float(fields, "sigma_data", 0.5, 0.0, strict=True)
        self.sigma_min = _config_float(fields, "sigma_min", 0.002, 0.0, strict=True)
        self.sigma_max = _config_float(fields, "sigma_max", 10.0, self.sigma_min, strict=True)
        self.rho = _config_float(fields, "rho", 7.0, 0.0, strict=True)
        self.T = _config_int(fields, "T", 100, 2, 10 ** 7)
        self.c0 = _config_float(fields, "c0", 2.0, 0.0, strict=True)
        self.c1 = _config_float(fields, "c1", 4.0, 0.0, strict=True)
        self.cd_levels = _config_int(fields, "cd_levels", 18, 2, 10 ** 5)

    def __repr__(self):
        return f"Config({self.fields!r})"


def _config_int(fields, key, default, low, high):
    value = fields.get(key, default)
    if value is None:
        raise CmFormatError(f"configuration needs \"{key}\"")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise CmFormatError(f"configuration: \"{key}\" = {value!r} must be an integer in "
                            f"[{low}, {high}]")
    return value


def _config_float(fields, key, default, low, strict=False):
    value = fields.get(key, default)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or (strict and value == low):
        raise CmFormatError(f"configuration: \"{key}\" = {value!r} must be a finite number "
                            f"{'>' if strict else '>='} {low}")
    return float(value)


def _config_fields_v1(root):
    """Format version 1: one flat object {"method": ..., "dim": ..., "width": ..., ...}."""
    return root


def _config_fields_v2(root):
    """Format version 2: {"method": {"method": ..., <method settings>}, "network": {"type": ...,
    "dim": ..., <the network type's settings>}, "optimizer": {...}, "steps": ..., ...}, flattened
    onto version 1's names (every key of the parts is unique). Only the "mlp" network is
    evaluated here."""
    method, network = root.get("method"), root.get("network")
    if not isinstance(method, dict) or not isinstance(network, dict):
        raise CmFormatError("configuration (format 2) needs \"method\" and \"network\" objects")
    if network.get("type") != "mlp":
        raise CmFormatError(f"configuration: network type {network.get('type')!r} (this reader "
                            "evaluates the mlp)")
    flat = {k: v for k, v in root.items() if k not in ("method", "network", "optimizer")}
    for part in (method, network, root.get("optimizer") or {}):
        if not isinstance(part, dict):
            raise CmFormatError("configuration: a part is not a JSON object")
        for key, value in part.items():
            if key == "type":
                continue
            if key in flat:
                raise CmFormatError(f"configuration: key {key!r} given twice")
            flat[key] = value
    return flat


# cm.format_version -> the function mapping that version's cm.config JSON onto the flat field
# names of Config: a new format version is one function and one entry here.
_CONFIG_READERS = {"1": _config_fields_v1, "2": _config_fields_v2}
MODEL_FORMAT_VERSIONS = tuple(_CONFIG_READERS)  # the model format versions this reader reads


def parse_config(text, version="1"):
    """Config of the JSON text of cm.config in a model file of format `version`: the one place
    that knows the configuration's layout (_CONFIG_READERS)."""
    if version not in _CONFIG_READERS:
        raise CmFormatError(f"configuration of format version {version!r} (this reader knows "
                            f"{', '.join(MODEL_FORMAT_VERSIONS)})")
    root = _strict_json(text, "cm.config")
    if not isinstance(root, dict):
        raise CmFormatError("cm.config is not a JSON object")
    return Config(_CONFIG_READERS[version](root))


# ---------------------------------------------------------------------------- schedules

class LhwSchedule:
    """The [LHW] discrete VP chain (schedule.h), arrays indexed t = 0..T (entry 0 unused):
    beta_1 = T^-c0, beta_{t+1} = (c1 log T / T) min(beta_1 (1 + c1 log T / T)^t, 1), kept in log
    space. Computed with Python's math (the C library's functions) in the C code's order, so the
    values are src/model/schedule.c's."""

    def __init__(self, T, c0=2.0, c1=4.0):
        if T < 2 or not (c0 > 0 and c1 > 0):
            raise ValueError(f"[LHW] schedule: need T >= 2 ({T}) and c0, c1 > 0 ({c0}, {c1})")
        log_T = math.log(T)
        rate = c1 * log_T / T
        log_beta1, log_growth = -c0 * log_T, math.log1p(rate)
        beta, log_alpha, log_abar, sigma = [0.0], [0.0], [0.0], [0.0]
        total = 0.0
        for t in range(1, T + 1):
            if t == 1:
                b = math.exp(log_beta1)
            else:
                log_power = log_beta1 + (t - 1) * log_growth
                b = rate * (math.exp(log_power) if log_power < 0.0 else 1.0)
            if not b < 1.0:
                raise ValueError(f"[LHW] schedule: beta_{t} = {b} >= 1 (c1 log T / T too large)")
            beta.append(b)
            log_alpha.append(math.log1p(-b))
            total += log_alpha[-1]
            log_abar.append(total)
            sigma.append(math.sqrt(math.expm1(-total)))
        self.T, self.c0, self.c1 = T, c0, c1
        self.beta, self.log_alpha = np.array(beta), np.array(log_alpha)
        self.log_abar, self.sigma = np.array(log_abar), np.array(sigma)
        self.one_minus_abar = np.array([0.0] + [-math.expm1(v) for v in log_abar[1:]])

    def nearest(self, sigma):
        """The t in 1..T whose sigma_t is nearest to sigma in log scale (the first on a tie)."""
        target = math.log(sigma)
        distances = [abs(math.log(s) - target) for s in self.sigma[1:]]
        return 1 + min(range(len(distances)), key=distances.__getitem__)


def karras_grid(N, sigma_min=0.002, sigma_max=80.0, rho=7.0):
    """Karras/EDM grid [CM], increasing from sigma_min to sigma_max, ends exact (schedule.h)."""
    low, high = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    grid = [(low + i / (N - 1) * (high - low)) ** rho for i in range(N)]
    grid[0], grid[-1] = sigma_min, sigma_max
    return np.array(grid)


# ---------------------------------------------------------------------------- parameterisations

class Coefficients:
    """f(x) = skip x + out F(in x, c_noise[, c_noise_target]) (consistency.h)."""

    def __init__(self, skip, out, scale_in, c_noise, c_noise_target=None):
        self.skip, self.out, self.scale_in = skip, out, scale_in
        self.c_noise, self.c_noise_target = c_noise, c_noise_target

    def __repr__(self):
        return (f"Coefficients(skip={self.skip!r}, out={self.out!r}, in={self.scale_in!r}, "
                f"c_noise={self.c_noise!r}, c_noise_target={self.c_noise_target!r})")


def consistency_ve(sigma, sigma_data=0.5, sigma_min=0.002):
    """[CM] VE: c_skip = sd^2 / ((sigma - smin)^2 + sd^2), c_out = sd (sigma - smin) /
    sqrt(sd^2 + sigma^2), c_in = 1 / sqrt(sigma^2 + sd^2), c_noise = log(sigma) / 4."""
    sd2, gap = sigma_data * sigma_data, sigma - sigma_min
    return Coefficients(sd2 / (gap * gap + sd2), sigma_data * gap / math.sqrt(sd2 + sigma * sigma),
                        1.0 / math.sqrt(sigma * sigma + sd2), 0.25 * math.log(sigma))


def consistency_lhw(schedule, t, sigma_data=0.5):
    """[LHW] VP at chain index t: f(x, t) = sqrt(abar_1) g(x / sqrt(abar_t), sigma_t), g the VE
    form with sigma_min = sigma_1: skip = c_skip sqrt(abar_1 / abar_t), out = sqrt(abar_1) c_out,
    in = c_in / sqrt(abar_t), in log space (f(x, 1) = x exactly)."""
    ve = consistency_ve(schedule.sigma[t], sigma_data, schedule.sigma[1])
    log_abar_1, log_abar_t = schedule.log_abar[1], schedule.log_abar[t]
    return Coefficients(ve.skip * math.exp(0.5 * (log_abar_1 - log_abar_t)),
                        math.exp(0.5 * log_abar_1) * ve.out,
                        ve.scale_in * math.exp(-0.5 * log_abar_t),
                        ve.c_noise)


def consistency_two_time(sigma, sigma_target, sigma_data=0.5):
    """cd2: g(x, t, s) = r x + (1 - r) D(x, t, s), r = s / t, D the EDM denoiser form (VE at
    sigma_min = 0) whose network also sees c_noise(s) = log(s) / 4."""
    d = consistency_ve(sigma, sigma_data, 0.0)
    r = sigma_target / sigma
    return Coefficients(r + (1.0 - r) * d.skip, (1.0 - r) * d.out, d.scale_in, d.c_noise,
                        0.25 * math.log(sigma_target))


# ---------------------------------------------------------------------------- the network

def fourier_embedding(c_noise, embed, max_frequency):
    """[B, E] = [sin(f_k c), cos(f_k c)] for k < E/2 (all sines, then all cosines), frequencies
    f_k = exp(k log(max_frequency) / (E/2 - 1)), geometric from 1 to max_frequency (f_0 = 1 when
    E = 2). Phases in float64 from the float32 c_noise the C network receives."""
    half = embed // 2
    log_step = math.log(max_frequency) / (half - 1) if half > 1 else 0.0
    frequency = np.exp(log_step * np.arange(half, dtype=np.float64))
    phase = np.asarray(c_noise, dtype=np.float64).reshape(-1, 1) * frequency
    return np.concatenate([np.sin(phase), np.cos(phase)], axis=1)


def silu(x):
    """x sigmoid(x), the sigmoid written with e = exp(-|x|) <= 1 (1 / (1 + e) for x >= 0,
    e / (1 + e) below) so that nothing overflows or cancels. Returns a new array."""
    e = np.abs(x)
    np.negative(e, out=e)
    np.exp(e, out=e)
    out = np.where(x >= 0, 1.0, e)
    e += 1.0
    out /= e
    out *= x
    return out


def mlp_layout(config):
    """[(OC, C)] of each layer: Linear(D + E or D + 2E -> W), depth - 1 x Linear(W -> W),
    Linear(W -> D)."""
    first = config.dim + config.embed * (2 if config.two_time else 1)
    inputs = [first] + [config.width] * config.depth
    outputs = [config.width] * config.depth + [config.dim]
    return list(zip(outputs, inputs))


def mlp_forward(layers, config, x_in, c_noise, c_noise_target=None):
    """F(x_in, c_noise[, c_noise_target]): [B, D] in float64. x_in is [B, D] (already scaled by
    c_in); c_noise [B] (or a scalar); input row = [x_in, embed(c_noise), embed(c_noise_target)];
    each hidden layer SiLU(h W^T + b), the last h W^T + b."""
    x_in = np.asarray(x_in, dtype=np.float64)
    B = x_in.shape[0]
    parts = [x_in, fourier_embedding(np.broadcast_to(c_noise, (B,)), config.embed,
                                     config.embed_max_frequency)]
    if config.two_time:
        if c_noise_target is None:
            raise ValueError("a two-time (cd2) network needs c_noise_target")
        parts.append(fourier_embedding(np.broadcast_to(c_noise_target, (B,)), config.embed,
                                       config.embed_max_frequency))
    h = np.concatenate(parts, axis=1)
    for index, (weight, bias) in enumerate(layers):
        h = h @ weight.T.astype(np.float64)
        h += bias
        if index + 1 < len(layers):
            h = silu(h)
    return h


def _f32(value):
    """value rounded to float32, returned as float64 (a value the C code stores as float)."""
    return np.asarray(value, dtype=np.float32).astype(np.float64)


# ---------------------------------------------------------------------------- models

class Model:
    """A cm model file: config, layers [(weight [OC, C], bias [OC]) float32], the data transform
    (x_model = (x - shift) / scale), the data source, the metadata, and the [LHW] schedule (lhw
    models; else None)."""

    def __init__(self, config, layers, shift, scale, data_source="", metadata=None,
                 format_version="1", path=None):
        self.config, self.layers = config, layers
        self.shift, self.scale = shift, scale
        self.data_source, self.metadata = data_source, dict(metadata or {})
        self.format_version, self.path = format_version, path
        self.schedule = (LhwSchedule(config.T, config.c0, config.c1)
                         if config.method == "lhw" else None)

    @property
    def dim(self):
        return self.config.dim

    def coefficients(self, level, target=None):
        """Coefficients of the consistency function at `level`: sigma (VE models), the chain
        index t (lhw), or for cd2 g(x, sigma, target) with target = sigma_min by default."""
        c = self.config
        if c.method == "lhw":
            t = int(level)
            if t != level or not 1 <= t <= c.T:
                raise ValueError(f"lhw level {level} is not a chain index in [1, {c.T}]")
            return consistency_lhw(self.schedule, t, c.sigma_data)
        if c.method == "cd2":
            return consistency_two_time(level, c.sigma_min if target is None else target,
                                        c.sigma_data)
        if c.method == "dsm":
            raise ValueError("a dsm model is a denoiser, not a consistency function")
        return consistency_ve(level, c.sigma_data, c.sigma_min)

    def apply(self, x, coefficients):
        """skip x + out F(in x, c_noise[, c_noise_target]) on x [B, D] in model units, in float64
        from the float32 values the C code computes with: the coefficients and c_noise are rounded
        to float32 (cm_coefficients_store) and so is in * x (a float product in C)."""
        x = np.asarray(x, dtype=np.float64)
        k = coefficients
        skip, out, scale_in = _f32(k.skip), _f32(k.out), _f32(k.scale_in)
        x_in = _f32(scale_in * _f32(x))
        target = None if k.c_noise_target is None else _f32(k.c_noise_target)
        F = mlp_forward(self.layers, self.config, x_in, _f32(k.c_noise), target)
        return skip * x + out * F

    def denoise(self, x, sigma):
        """The denoiser D(x, sigma) of a dsm model on x [B, D] in model units (EDM's
        preconditioning: the VE coefficients at sigma_min = 0, consistency.h), from the float32
        inputs cm's evaluator computes with (cm_evaluator_denoise)."""
        if self.config.method != "dsm":
            raise ValueError(f"a {self.config.method} model is a consistency function, not a "
                             "denoiser")
        if not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"denoiser level {sigma} must be finite and > 0")
        return self.apply(x, consistency_ve(float(sigma), self.config.sigma_data, 0.0))

    def consistency(self, x, level, target=None):
        """f(x, level) in model (standardised) units; cd2: g(x, level, target)."""
        return self.apply(x, self.coefficients(level, target))

    def to_data(self, x):
        """Model units -> data units: x scale + shift (cm_transform_invert)."""
        return np.asarray(x, dtype=np.float64) * self.scale + self.shift

    def from_data(self, x):
        """Data units -> model units: (x - shift) / scale (cm_transform_apply)."""
        return (np.asarray(x, dtype=np.float64) - self.shift) / self.scale


def _transform(text, dim, name):
    root = _strict_json(text, f"{name}: cm.transform")
    if not isinstance(root, dict):
        raise CmFormatError(f"{name}: cm.transform is not a JSON object")
    vectors = []
    for key in ("shift", "scale"):
        values = root.get(key)
        if (not isinstance(values, list) or len(values) != dim or
                not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                        for v in values)):
            raise CmFormatError(f"{name}: transform \"{key}\" must be an array of {dim} finite "
                                "numbers")
        vectors.append(np.array(values, dtype=np.float64))
    if not np.all(vectors[1] > 0):
        raise CmFormatError(f"{name}: transform scale must be > 0")
    return vectors


def _float32_tensor(tensor, tensor_name, name):
    """A F32 or F64 tensor as float32 (what cm computes with), refusing other dtypes and values
    that are not finite in float32 (cm reads F64 by converting it, refusing overflow)."""
    if tensor.dtype not in (np.dtype("<f4"), np.dtype("<f8")):
        raise CmFormatError(f"{name}: tensor {tensor_name} has dtype {tensor.dtype} (F32 or F64)")
    with np.errstate(over="ignore"):
        values = tensor.astype(np.float32)
    if not np.all(np.isfinite(values)):
        raise CmFormatError(f"{name}: tensor {tensor_name} has a non-finite value")
    return values


def _model_from(tensors, metadata, name):
    version = metadata.get("cm.format_version")
    if version is None or "cm.config" not in metadata or "cm.transform" not in metadata:
        raise CmFormatError(f"{name}: not a cm model (metadata cm.* missing)")
    if version not in MODEL_FORMAT_VERSIONS:
        raise CmFormatError(f"{name}: model format version {version} (this reader reads "
                            f"{', '.join(MODEL_FORMAT_VERSIONS)})")
    try:
        config = parse_config(metadata["cm.config"], version)
    except CmFormatError as error:
        raise CmFormatError(f"{name}: {error}") from None
    layers = []
    for index, (outputs, inputs) in enumerate(mlp_layout(config)):
        pair = []
        for part, shape in (("weight", (outputs, inputs)), ("bias", (outputs,))):
            tensor = tensors.get(f"mlp.{index}.{part}")
            if tensor is None:
                raise CmFormatError(f"{name}: no tensor named 'mlp.{index}.{part}'")
            if tensor.shape != shape:
                raise CmFormatError(f"{name}: tensor mlp.{index}.{part} has the wrong shape for the"
                                    f" stored config ({list(tensor.shape)}, expected "
                                    f"{list(shape)})")
            pair.append(_float32_tensor(tensor, f"mlp.{index}.{part}", name))
        layers.append(tuple(pair))
    shift, scale = _transform(metadata["cm.transform"], config.dim, name)
    return Model(config, layers, shift, scale, metadata.get("cm.data", ""), metadata, version, name)


def load_model(path):
    """The model in a cm model file (model.safetensors, or a checkpoint's model part)."""
    tensors, metadata = read_safetensors(path)
    return _model_from(tensors, metadata, str(path))


# ---------------------------------------------------------------------------- sampling

def sampler_levels(model, sigmas=None, times=None):
    """(levels used, chain indices or None): the checks and mapping of cm_sampler_levels. VE
    models: the sigmas themselves (default: [sigma_max]); lhw: each sigma mapped to the chain
    index whose sigma_t is nearest in log scale, or `times` given directly (default: [T])."""
    c = model.config
    if c.method == "dsm":
        raise ValueError("a dsm model is a denoiser, not a consistency function: sample it with a "
                         "diffusion sampler")
    if sigmas is not None and times is not None:
        raise ValueError("give sigmas or times, not both")
    is_lhw = c.method == "lhw"
    if times is not None:
        if not is_lhw:
            raise ValueError(f"times apply to lhw models; this one is {c.method}")
        for t in times:
            if t != int(t) or not 1 <= t <= c.T:
                raise ValueError(f"times: {t} is not an integer in [1, T = {c.T}]")
        sigmas = [model.schedule.sigma[int(t)] for t in times]
    if sigmas is None or len(sigmas) == 0:
        return ([model.schedule.sigma[c.T]], [c.T]) if is_lhw else ([c.sigma_max], None)
    if len(sigmas) > SAMPLER_MAX_LEVELS:
        raise ValueError(f"{len(sigmas)} noise levels: at most {SAMPLER_MAX_LEVELS}")
    floor = 0.0 if is_lhw else c.sigma_min
    used, indices = [], []
    for i, level in enumerate(float(s) for s in sigmas):
        if not math.isfinite(level) or not level > floor:
            raise ValueError(f"noise level {level:g} must be finite and > {floor:g}")
        if i > 0 and not level < float(sigmas[i - 1]):
            raise ValueError(f"noise levels must decrease ({float(sigmas[i - 1]):g} then "
                             f"{level:g})")
        if is_lhw:
            t = model.schedule.nearest(level)
            if i > 0 and t >= indices[-1]:
                raise ValueError(f"noise levels map to chain indices {indices[-1]} and {t}: they "
                                 f"must decrease (T = {c.T})")
            if i > 0 and t < 2:
                raise ValueError(f"noise level {level:g} maps to t = 1, where f is the identity")
            indices.append(t)
            used.append(model.schedule.sigma[t])
        else:
            used.append(level)
    return used, (indices if is_lhw else None)


def sample_noise(n, dim, seed=0, stages=1):
    """float32 [stages, n, dim]: the noise `cm sample --seed seed` draws, point i of stage s from
    cm_rng_fork(cm_rng_fork(cm_rng_fork(cm_rng_init(seed), sample stream), s), i) (sampler.h)."""
    sample_stream = Rng(seed).fork(STREAMS["sample"])
    out = np.empty((stages, n, dim), dtype=np.float32)
    for s in range(stages):
        stage_key = sample_stream.fork(s).key
        for first in range(0, n, SAMPLER_ROWS):
            rows = min(SAMPLER_ROWS, n - first)
            out[s, first:first + rows] = point_normals_f32(stage_key, first, rows, dim)
    return out


def sample(model, n, seed=0, sigmas=None, times=None, noise=None):
    """n samples [n, D] in data units (float64), as `cm sample --model M --n n --seed seed
    [--sigmas ... | --times ...]` draws them: [CM] Algorithm 1, x = f(sigma_0 z_0, sigma_0),
    then x = f(x + sqrt(tau^2 - sigma_min^2) z, tau) (VE); lhw: x = f(z_0, t_0), then
    x = f(sqrt(abar_t / abar_1) x + sqrt(1 - abar_t / abar_1) z, t). `noise` replaces the
    seeded draws: standard normals [stages, n, D] (or [n, D] for one stage), rounded to float32
    as cm's noise buffer is."""
    c = model.config
    if int(n) != n or n < 1:
        raise ValueError(f"number of samples {n} must be an integer >= 1")
    n = int(n)
    used, indices = sampler_levels(model, sigmas, times)
    stages = len(used)
    if noise is None:
        noise = sample_noise(n, c.dim, seed, stages)
    noise = np.asarray(noise)
    if noise.ndim == 2 and stages == 1:
        noise = noise[None]
    if noise.shape != (stages, n, c.dim):
        raise ValueError(f"noise has shape {noise.shape}, expected {(stages, n, c.dim)}")
    noise = noise.astype(np.float32)  # the C sampler's noise buffer is float
    out = np.empty((n, c.dim), dtype=np.float64)
    for first in range(0, n, SAMPLER_ROWS):
        rows = slice(first, min(n, first + SAMPLER_ROWS))
        x = None
        for s in range(stages):
            level = indices[s] if indices else used[s]
            keep, add = _renoise(model, used, indices, s)
            z = noise[s, rows].astype(np.float64)
            noisy = _f32(add * z if s == 0 else keep * x + add * z)
            x = model.consistency(noisy, level)
        out[rows] = x
    return model.to_data(out)


def _renoise(model, used, indices, s):
    """(keep, add) of stage s: the noise scale of the first stage, then the re-noising x_hat =
    keep x + add z of [CM] Algorithm 1 (VE) or of the [LHW] VP chain (sampler.c)."""
    c = model.config
    if s == 0:
        return 0.0, (1.0 if indices else used[0])
    if indices:
        log_ratio = model.schedule.log_abar[indices[s]] - model.schedule.log_abar[1]
        return math.exp(0.5 * log_ratio), math.sqrt(-math.expm1(log_ratio))
    return 1.0, math.sqrt(used[s] * used[s] - c.sigma_min * c.sigma_min)


# ---------------------------------------------------------------------------- checkpoints

_TRAIN_TENSORS = ("train.params", "train.adam.m", "train.adam.v", "train.target")


class Checkpoint:
    """A cm training checkpoint (docs/checkpoints.md): `model` (the evaluation weights, a Model),
    step, adam_step, stage, the random streams (`streams`: name -> Rng), curriculum
    ({"levels", "target_decay"}), data_file ({"rows", "cols", "fnv1a64"} or None), the flat
    training tensors params, adam_m, adam_v, target (float32 [P]; target None when the method has
    none), and the program's settings (`cli`: cm.cli.* strings)."""

    def layers(self, flat):
        """[(weight, bias)] views of a flat [P] parameter vector (nn.h: per layer, weight [OC, C]
        row-major, then bias [OC])."""
        out, offset = [], 0
        for outputs, inputs in mlp_layout(self.model.config):
            weight = flat[offset:offset + outputs * inputs].reshape(outputs, inputs)
            offset += outputs * inputs
            out.append((weight, flat[offset:offset + outputs]))
            offset += outputs
        return out


def _has_target(config):
    teacher = config.fields.get("teacher", "online")
    return config.method in ("ct", "cd", "cd2") or (config.method == "lhw" and
                                                    teacher == "sequential")


def _metadata_count(metadata, key, name):
    text = metadata.get(key)
    if text is None:
        raise CmFormatError(f"{name}: metadata {key} missing")
    if not text.isascii() or not text.isdigit():
        raise CmFormatError(f"{name}: metadata {key} = '{text[:32]}' is not a decimal integer")
    return int(text)


def _metadata_object(metadata, key, name):
    if key not in metadata:
        raise CmFormatError(f"{name}: metadata {key} missing")
    root = _strict_json(metadata[key], f"{name}: {key}")
    if not isinstance(root, dict):
        raise CmFormatError(f"{name}: metadata {key} is not a JSON object")
    return root


def _stream(entry, stream, name):
    """An Rng of {"key": [k0, k1], "position": "decimal", "spare": null | "hex float"}."""
    try:
        key, position, spare = entry["key"], entry["position"], entry["spare"]
        ok = (len(key) == 2 and all(_is_count(k) and k < 2 ** 32 for k in key) and
              isinstance(position, str) and position.isascii() and position.isdigit() and
              int(position) < 2 ** 64 and (spare is None or isinstance(spare, str)))
        value = None if spare is None else float.fromhex(spare)
        ok = ok and (value is None or math.isfinite(value))
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise CmFormatError(f"{name}: random stream \"{stream}\" missing or malformed in "
                            "cm.checkpoint.rng")
    return Rng.from_state(key, int(position), value)


def load_checkpoint(path):
    """The checkpoint at `path` (DIR/checkpoint.safetensors or DIR/checkpoints/step-N...)."""
    name = str(path)
    tensors, metadata = read_safetensors(path)
    version = metadata.get("cm.checkpoint.version")
    if version is None:
        raise CmFormatError(f"{name}: not a checkpoint (no cm.checkpoint.version; a model file?)")
    if version not in CHECKPOINT_VERSIONS:
        raise CmFormatError(f"{name}: checkpoint version '{version[:16]}' (this reader reads "
                            f"{', '.join(CHECKPOINT_VERSIONS)})")
    ck = Checkpoint()
    ck.path, ck.version, ck.metadata = name, version, metadata
    ck.model = _model_from(tensors, metadata, name)
    P = sum(o * i + o for o, i in mlp_layout(ck.model.config))
    flat = {}
    for tensor in _TRAIN_TENSORS:
        if tensor == "train.target" and not _has_target(ck.model.config):
            flat[tensor] = None
            continue
        array = tensors.get(tensor)
        if array is None:
            raise CmFormatError(f"{name}: no tensor named '{tensor}'")
        if array.shape != (P,):
            raise CmFormatError(f"{name}: tensor {tensor} must have shape [{P}], the parameter "
                                "count of the stored config")
        flat[tensor] = _float32_tensor(array, tensor, name)
    ck.params, ck.adam_m, ck.adam_v, ck.target = (flat[t] for t in _TRAIN_TENSORS)
    ck.step = _metadata_count(metadata, "cm.checkpoint.step", name)
    ck.adam_step = _metadata_count(metadata, "cm.checkpoint.adam_step", name)
    ck.stage = _metadata_count(metadata, "cm.checkpoint.stage", name)
    rng = _metadata_object(metadata, "cm.checkpoint.rng", name)
    ck.streams = {s: _stream(rng.get(s), s, name) for s in STREAMS}
    ck.curriculum = _metadata_object(metadata, "cm.checkpoint.curriculum", name)
    if not _is_count(ck.curriculum.get("levels")) or not isinstance(
            ck.curriculum.get("target_decay"), (int, float)):
        raise CmFormatError(f"{name}: cm.checkpoint.curriculum is malformed")
    ck.data_file = None
    if "cm.checkpoint.data_file" in metadata:
        ck.data_file = _metadata_object(metadata, "cm.checkpoint.data_file", name)
        digest = ck.data_file.get("fnv1a64")
        if (not _is_count(ck.data_file.get("rows")) or not _is_count(ck.data_file.get("cols")) or
                not isinstance(digest, str) or len(digest) != 16 or
                any(ch not in "0123456789abcdef" for ch in digest)):
            raise CmFormatError(f"{name}: cm.checkpoint.data_file is malformed")
    ck.cli = {k: v for k, v in metadata.items() if k.startswith("cm.cli.")}
    return ck


# ---------------------------------------------------------------------------- samples

def read_samples(path):
    """A sample or data file as float64 [rows, cols]: .npy ('<f4' or '<f8', C order; 1-D read as
    one column) or .csv (comma-separated numbers, an optional header line of names, blank lines
    allowed), refusing non-finite values and ragged rows like cm's readers."""
    name = str(path)
    if name.endswith(".npy"):
        with open(path, "rb") as file:
            values = _parse_npy(file.read(), name)
    elif name.endswith(".csv"):
        with open(path, "rb") as file:
            raw = file.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CmFormatError(f"{name}: not UTF-8 text") from None
        values = _parse_csv(text, name)
    else:
        raise CmFormatError(f"{name}: unknown extension (expected .npy or .csv)")
    if not np.all(np.isfinite(values)):
        raise CmFormatError(f"{name}: holds a non-finite value")
    return values


def _parse_npy(data, name):
    """An NPY image (format 1.0-3.0, '<f4' or '<f8', C order, 1-D or 2-D) as float64 [rows, cols],
    parsed here rather than by np.load so that the shape is checked against the bytes before
    anything is allocated and every malformed header is a CmFormatError."""
    if len(data) < 10 or data[:6] != b"\x93NUMPY" or data[6] not in (1, 2, 3):
        raise CmFormatError(f"{name}: not an NPY file (magic or version)")
    size_bytes = 2 if data[6] == 1 else 4
    start = 8 + size_bytes
    (length,) = struct.unpack("<H" if size_bytes == 2 else "<I", data[8:start])
    if length > 1 << 20 or start + length > len(data):
        raise CmFormatError(f"{name}: NPY header length {length} exceeds the file or 1 MB")
    try:
        header = ast.literal_eval(data[start:start + length].decode("latin1" if data[6] < 3
                                                                     else "utf-8"))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError, UnicodeDecodeError):
        raise CmFormatError(f"{name}: NPY header is not a Python literal") from None
    ok = (isinstance(header, dict) and header.get("descr") in ("<f4", "<f8") and
          header.get("fortran_order") is False and isinstance(header.get("shape"), tuple) and
          len(header["shape"]) in (1, 2) and all(_is_count(d) for d in header["shape"]))
    if not ok:
        raise CmFormatError(f"{name}: NPY header must describe a 1-D or 2-D '<f4' or '<f8' array "
                            "in C order")
    shape = header["shape"]
    body = memoryview(data)[start + length:]
    if math.prod(shape) * int(header["descr"][2]) != len(body):
        raise CmFormatError(f"{name}: {len(body)} data bytes for shape {shape} of "
                            f"{header['descr']}")
    values = np.frombuffer(body, dtype=header["descr"]).astype(np.float64)
    return values.reshape(shape[0], shape[1] if len(shape) == 2 else 1)


def _parse_csv(text, name):
    rows, first_line = [], True
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = [float(cell) for cell in line.split(",")]
        except ValueError:
            if first_line:  # the optional header line of names
                first_line = False
                continue
            raise CmFormatError(f"{name}: line {number} is not a row of numbers") from None
        first_line = False
        if rows and len(row) != len(rows[0]):
            raise CmFormatError(f"{name}: line {number} has {len(row)} columns, the first row "
                                f"{len(rows[0])}")
        rows.append(row)
    if not rows:
        raise CmFormatError(f"{name}: no rows")
    return np.array(rows, dtype=np.float64)


def max_relative_difference(a, b):
    """max |a - b| / max |b| over all entries: the difference relative to the samples' scale (an
    entrywise ratio is meaningless at coordinates near 0)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
