# Minimal safetensors reader/writer (json + struct + numpy only; no safetensors package).
# Used by the PyTorch reference to exchange tensors with anetrain.
# Self-test: /usr/bin/python3 tests/reference/st.py
import json
import struct
import sys

import numpy as np

_SIZES = {"F32": 4, "F16": 2, "BF16": 2}


def _decode(dtype, raw, shape):
    if dtype == "F32":
        a = np.frombuffer(raw, dtype="<f4")
    elif dtype == "F16":
        a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    elif dtype == "BF16":
        # bf16 is the top half of an f32, so widening is an exact shift.
        a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    else:
        raise ValueError("unsupported dtype %r" % dtype)
    return a.astype(np.float32).reshape(shape)


def _encode(dtype, arr):
    a = np.ascontiguousarray(arr, dtype=np.float32)
    if dtype == "F32":
        return a.astype("<f4").tobytes()
    if dtype == "F16":
        return a.astype("<f2").tobytes()
    if dtype == "BF16":
        # Round to nearest even rather than truncating, so that a BF16 file
        # holds the closest representable value (NaN is not expected here).
        u = a.view(np.uint32).astype(np.uint64)
        u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
        return u.astype("<u2").tobytes()
    raise ValueError("unsupported dtype %r" % dtype)


def load(path):
    """Return {name: float32 ndarray}; 0-d tensors come back with shape ()."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError("%s: too short for a safetensors file" % path)
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError("%s: header length %d exceeds file size" % (path, n))
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = memoryview(blob)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, shape = info["dtype"], list(info["shape"])
        begin, end = info["data_offsets"]
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if end - begin != count * _SIZES[dtype] or end > len(data):
            raise ValueError("%s: bad data_offsets for %s" % (path, name))
        out[name] = _decode(dtype, bytes(data[begin:end]), shape)
    return out


def save(path, tensors, dtype="F32", metadata=None):
    """Write {name: array-like} with every tensor stored as `dtype`."""
    if dtype not in _SIZES:
        raise ValueError("unsupported dtype %r" % dtype)
    header, chunks, off = {}, [], 0
    # Sorted names make the file deterministic regardless of dict order.
    for name in sorted(tensors):
        arr = np.asarray(tensors[name])
        raw = _encode(dtype, arr)
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # Pad with spaces to 8 bytes so the data section is aligned, as the
    # reference implementation does; readers must not depend on it.
    hj += b" " * (-len(hj) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for c in chunks:
            f.write(c)


def _selftest():
    import os
    import tempfile
    rng = np.random.default_rng(0)
    t = {"a": rng.standard_normal((3, 5)).astype(np.float32),
         "s": np.array(2.5, dtype=np.float32),
         "v": rng.standard_normal(7).astype(np.float32)}
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "x.safetensors")
        save(p, t, metadata={"format": "pt"})
        r = load(p)
        assert set(r) == set(t)
        for k in t:
            assert r[k].shape == t[k].shape and np.array_equal(r[k], t[k]), k
        assert r["s"].shape == ()
        for dt, tol in (("F16", 1e-3), ("BF16", 4e-3)):
            save(p, t, dtype=dt)
            r = load(p)
            for k in t:
                err = np.max(np.abs(r[k] - t[k]) / (np.abs(t[k]) + 1e-30))
                assert err <= tol, (dt, k, err)
        # bf16 bit pattern check: 1.0 is 0x3F80, and rounding is to nearest even.
        save(p, {"x": np.array([1.0, 1.00390625, 1.01171875], np.float32)}, "BF16")
        with open(p, "rb") as f:
            raw = f.read()
        assert raw[-6:] == struct.pack("<3H", 0x3F80, 0x3F80, 0x3F82), raw[-6:].hex()
    print("st.py self-test OK")


if __name__ == "__main__":
    _selftest()
    sys.exit(0)
