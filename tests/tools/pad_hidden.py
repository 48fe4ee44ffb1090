#!/usr/bin/python3
"""Writes a llama2.c version-0 model equal to IN with its FFN hidden width zero-padded to H.

The padded units compute silu(0)·0 = 0, so the model's function is unchanged; what changes is
that every matrix row becomes a whole number of Q8_0 groups. llama2.c's runq.c assumes that
(its matmul walks groups row by row), and stories260K's hidden width of 172 breaks it.
usage: pad_hidden.py IN.bin OUT.bin H
"""
import struct
import sys

import numpy as np


def main():
    src, dst, new_hidden = sys.argv[1], sys.argv[2], int(sys.argv[3])
    raw = open(src, "rb").read()
    dim, hidden, layers, heads, kv_heads, vocab, seq = struct.unpack("7i", raw[:28])
    if new_hidden < hidden:
        sys.exit(f"{src}: hidden {hidden} > {new_hidden}")
    shared = vocab > 0
    vocab = abs(vocab)
    w = np.frombuffer(raw[28:], dtype=np.float32)
    head_dim = dim // heads
    kv_dim = kv_heads * head_dim
    sizes = [("emb", vocab * dim), ("rms_att", layers * dim), ("wq", layers * dim * dim),
             ("wk", layers * kv_dim * dim), ("wv", layers * kv_dim * dim), ("wo", layers * dim * dim),
             ("rms_ffn", layers * dim), ("w1", layers * hidden * dim), ("w2", layers * dim * hidden),
             ("w3", layers * hidden * dim), ("rms_final", dim), ("rope", seq * head_dim)]
    if not shared:
        sizes.append(("wcls", vocab * dim))
    parts, at = {}, 0
    for name, n in sizes:
        parts[name] = w[at:at + n]
        at += n
    if at != w.size:
        sys.exit(f"{src}: {w.size - at} floats left over; not a llama2.c v0 file for its header")
    pad = new_hidden - hidden
    # w1, w3: (layers, hidden, dim) → zero rows; w2: (layers, dim, hidden) → zero columns.
    for name in ("w1", "w3"):
        m = parts[name].reshape(layers, hidden, dim)
        parts[name] = np.concatenate([m, np.zeros((layers, pad, dim), np.float32)], axis=1).ravel()
    m = parts["w2"].reshape(layers, dim, hidden)
    parts["w2"] = np.concatenate([m, np.zeros((layers, dim, pad), np.float32)], axis=2).ravel()
    with open(dst, "wb") as f:
        f.write(struct.pack("7i", dim, new_hidden, layers, heads, kv_heads, vocab if shared else -vocab, seq))
        for name, _ in sizes:
            f.write(parts[name].astype(np.float32).tobytes())


if __name__ == "__main__":
    main()
