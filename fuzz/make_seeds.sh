#!/usr/bin/env bash
# Seed corpora for the fuzz targets: small valid (or nearly valid) inputs, one folder per target.
#
#   fuzz/make_seeds.sh ANETRAIN_BIN OUT_DIR [ASSETS_DIR]
#
# Always writes our own seeds (made by the anetrain binary and by the inline Python below) into
# OUT_DIR/<target>/. Those are what fuzz/corpus/ holds, regenerated with
#   fuzz/make_seeds.sh build/src/anetrain fuzz/corpus
# With ASSETS_DIR (../shared/assets) it also writes seeds cut from the shared test assets
# (shared-*); those are not ours to commit, so CI makes them at run time into its build folder.
# Every seed stays under 100 KB.
set -euo pipefail
[[ $# -ge 2 ]] || { echo "usage: $0 ANETRAIN_BIN OUT_DIR [ASSETS_DIR]" >&2; exit 2; }
ANETRAIN=$(realpath "$1")
OUT=$2
ASSETS=${3:-}
[[ -x $ANETRAIN ]] || { echo "make_seeds: $ANETRAIN is not an executable" >&2; exit 2; }
PY=${PYTHON:-python3}

work=$(mktemp -d "${TMPDIR:-/tmp}/anetrain-seeds.XXXXXX")
trap 'rm -rf "$work"' EXIT
for t in safetensors llama2c anck tokenizer_json tokenizer_bin gguf mil npy; do mkdir -p "$OUT/$t"; done

# ---- a tiny model, a tiny corpus, a tokenizer trained on it, a two-step training run ----
cat > "$work/tiny.json" <<'EOF'
{"arch": "llama", "dim": 8, "n_layers": 1, "n_heads": 2, "n_kv_heads": 1, "head_dim": 4,
 "hidden_dim": 16, "vocab_size": 360, "max_seq_len": 16, "rope_theta": 10000.0,
 "rope_style": "interleaved", "norm_eps": 1e-5, "qk_norm": false, "tied_embeddings": true,
 "residual_scale": 1.0}
EOF
"$PY" - "$work/text.txt" <<'EOF'
import random, sys
r = random.Random(1)
words = ("the a cat dog sat on mat ran far away quick brown fox jumps over lazy little girl boy "
         "played with ball in park sun was bright and warm they were happy don't it's café naïve").split()
paras = []
for _ in range(20):
    sents = [" ".join(r.choice(words) for _ in range(r.randint(4, 10))).capitalize() + r.choice(".!?")
             for _ in range(r.randint(3, 6))]
    paras.append(" ".join(sents))
open(sys.argv[1], "w", encoding="utf-8").write("\n\n".join(paras) + "\n")
EOF
mkdir -p "$work/tok"
"$ANETRAIN" tokenizer train "$work/text.txt" --vocab 360 -o "$work/tok/tokenizer.json" >/dev/null 2>&1
"$ANETRAIN" prepare "$work/text.txt" -z "$work/tok/tokenizer.json" -o "$work/shards" --val-frac 0.1 >/dev/null 2>&1
"$ANETRAIN" train --model "$work/tiny.json" --data "$work/shards/train_000.bin" --seq 8 --batch 2 --steps 2 \
  --warmup 1 --ckpt-every 2 --eval-every 100 --threads 1 --out "$work/run" >/dev/null 2>&1
step="$work/run/ckpt/step-00000002"

# ---- safetensors: gradients (f32, with a scalar loss) and exported weights in each dtype ----
echo "1 5 9 13 17 21 25 29 33 37" > "$work/tokens.txt"
"$ANETRAIN" grad "$work/tiny.json" --tokens "$work/tokens.txt" --batch 1 --seq 9 --threads 1 \
  -o "$OUT/safetensors/grad.safetensors" >/dev/null 2>&1
for dt in f32 f16 bf16; do
  "$ANETRAIN" export "$step" -o "$work/export_$dt" --dtype $dt >/dev/null 2>&1
  cp "$work/export_$dt/model.safetensors" "$OUT/safetensors/export_$dt.safetensors"
done

# ---- anck: the model and the training-state checkpoint of the run ----
cp "$step/model.anck" "$OUT/anck/model.anck"
cp "$step/state.anck" "$OUT/anck/state.anck"

# ---- tokenizers: what `anetrain tokenizer train` wrote, plus byte-level tokenizer.json files ----
cp "$work/tok/tokenizer.json" "$OUT/tokenizer_json/sp_bpe.json"
cp "$work/tok/tokenizer.bin" "$OUT/tokenizer_bin/trained.bin"
"$PY" - "$OUT/tokenizer_json" <<'EOF'
import json, sys
out = sys.argv[1]
# GPT-2's byte → printable character table.
bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
cs = bs[:]
n = 0
for b in range(256):
    if b not in bs:
        bs.append(b); cs.append(256 + n); n += 1
b2u = {b: chr(c) for b, c in zip(bs, cs)}
vocab = {b2u[b]: i for i, b in enumerate(range(256))}
merges = []
for a, b in [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("a", "t"), ("Ġ", "c"), ("Ġc", "at"), ("i", "n"), ("Ġ", "a")]:
    vocab.setdefault(a + b, len(vocab)); merges.append([a, b])
qwen = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
eot = len(vocab)
qwen_style = {
    "version": "1.0",
    "added_tokens": [
        {"id": eot, "content": "<|endoftext|>", "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True},
        {"id": eot + 1, "content": "<|im_start|>", "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True},
    ],
    "normalizer": {"type": "NFC"},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": qwen}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]},
    "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
    "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
    "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
              "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
              "vocab": vocab, "merges": merges},
}
json.dump(qwen_style, open(f"{out}/bytelevel_qwen.json", "w"), ensure_ascii=False, separators=(",", ":"))
# GPT-2 style: ByteLevel does the regex split itself, merges as "a b" strings, a template post-processor.
gpt2 = json.loads(json.dumps(qwen_style))
gpt2["normalizer"] = None
gpt2["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
gpt2["model"]["merges"] = [a + " " + b for a, b in merges]
gpt2["model"]["ignore_merges"] = True
gpt2["post_processor"] = {"type": "TemplateProcessing",
                          "single": [{"SpecialToken": {"id": "<|im_start|>", "type_id": 0}},
                                     {"Sequence": {"id": "A", "type_id": 0}}],
                          "pair": [], "special_tokens": {}}
json.dump(gpt2, open(f"{out}/bytelevel_gpt2.json", "w"), ensure_ascii=False, separators=(",", ":"))
EOF

# ---- llama2.c model files (version 0): tied and untied tiny models written here ----
"$PY" - "$OUT/llama2c" <<'EOF'
import struct, sys
out = sys.argv[1]
def write(name, dim, hidden, layers, heads, kv_heads, vocab, seq):
    V = abs(vocab); D = dim; F = hidden; L = layers; hd = dim // heads; kv = kv_heads * hd
    n = V*D + L*D + L*D*D + 2*L*kv*D + L*D*D + L*D + 3*L*F*D + D + seq*(hd//2)*2 + (V*D if vocab < 0 else 0)
    with open(f"{out}/{name}", "wb") as f:
        f.write(struct.pack("<7i", dim, hidden, layers, heads, kv_heads, vocab, seq))
        f.write(struct.pack(f"<{n}f", *[((i * 7919) % 23 - 11) / 64.0 for i in range(n)]))
write("tied.bin", 8, 16, 1, 2, 1, 32, 8)
write("untied.bin", 8, 12, 2, 2, 2, -16, 4)

# Versions 1 (fp32) and 2 (Q8_0) as llama2.c's export.py writes them: a 256-byte "ak42" header
# (version, the 7 ints, shared-classifier byte, v2's group size), norms first, then the matrices;
# v2 stores each matrix as int8 values followed by one fp32 scale per group.
def write_ak42(name, version, dim, hidden, layers, heads, kv_heads, vocab, seq, shared, gs=8):
    D, F, L, V = dim, hidden, layers, vocab
    kv = kv_heads * (dim // heads)
    header = struct.pack("<Ii7iB", 0x616B3432, version, dim, hidden, layers, heads, kv_heads, vocab, seq, shared)
    if version == 2:
        header += struct.pack("<i", gs)
    body = b""
    val = lambda n: [((i * 7919) % 23 - 11) / 64.0 for i in range(n)]
    for n in [D] * L + [D] * L + [D]:  # attn norms, ffn norms, final norm
        body += struct.pack(f"<{n}f", *val(n))
    mats = [V * D] + [D * D] * L + [kv * D] * L + [kv * D] * L + [D * D] * L + [F * D] * L + [D * F] * L + [F * D] * L
    if not shared:
        mats.append(V * D)
    for n in mats:
        if version == 1:
            body += struct.pack(f"<{n}f", *val(n))
        else:
            body += bytes(((i * 37) % 255) - 127 & 0xFF for i in range(n)) + struct.pack(f"<{n // gs}f", *val(n // gs))
    with open(f"{out}/{name}", "wb") as f:
        f.write(header.ljust(256, b"\0") + body)
write_ak42("v1.bin", 1, 8, 16, 1, 2, 1, 32, 8, shared=1)
write_ak42("v2_q80.bin", 2, 8, 16, 1, 2, 1, 32, 8, shared=0)
EOF

# ---- GGUF: the run converted by `anetrain convert` (with each kind of vocabulary), and small
# hand-built files for what convert never writes (version 1, Q8_0, every metadata value type) ----
"$ANETRAIN" convert "$step" "$OUT/gguf/convert_f32_llama_vocab.gguf" --dtype f32 -z "$work/tok/tokenizer.bin" >/dev/null 2>&1
"$ANETRAIN" convert "$step" "$OUT/gguf/convert_f16_gpt2_vocab.gguf" --dtype f16 \
  -z "$OUT/tokenizer_json/bytelevel_qwen.json" >/dev/null 2>&1
"$ANETRAIN" convert "$step" "$OUT/gguf/convert_bf16.gguf" --dtype bf16 >/dev/null 2>&1
"$PY" - "$OUT/gguf" <<'EOF'
import struct, sys
out = sys.argv[1]
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
def gguf(version, kvs, tensors, align=32):
    wide = version >= 2
    cnt = (lambda n: struct.pack("<Q", n)) if wide else (lambda n: struct.pack("<I", n))
    s = lambda x: cnt(len(x.encode())) + x.encode()
    def val(t, v):
        if t == STR: return s(v)
        if t == ARR:
            et, items = v
            return struct.pack("<I", et) + cnt(len(items)) + b"".join(val(et, i) for i in items)
        return struct.pack("<" + {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "?",
                                  U64: "Q", I64: "q", F64: "d"}[t], v)
    b = b"GGUF" + struct.pack("<I", version) + cnt(len(tensors)) + cnt(len(kvs))
    for k, t, v in kvs:
        b += s(k) + struct.pack("<I", t) + val(t, v)
    data, offs = b"", []
    for name, shape, typ, raw in tensors:
        data += b"\0" * (-len(data) % align)
        offs.append(len(data))
        data += raw
    for (name, shape, typ, raw), off in zip(tensors, offs):
        b += s(name) + struct.pack("<I", len(shape))
        for d in reversed(shape):
            b += struct.pack("<Q" if wide else "<I", d)
        b += struct.pack("<IQ", typ, off)
    b += b"\0" * (-len(b) % align)
    return b + data
vals = lambda n: [((i * 7919) % 23 - 11) / 64.0 for i in range(n)]
f32 = lambda n: struct.pack(f"<{n}f", *vals(n))
f16 = lambda n: struct.pack(f"<{n}e", *vals(n))
q80 = lambda n: b"".join(struct.pack("<e", 0.01) + bytes((i * 37 + k) % 256 for k in range(32)) for i in range(n // 32))
# A complete llama model (dim 32, 1 layer, vocab 32) with Q8_0, F16 and F32 matrices.
D, F, V, KV = 32, 64, 32, 16
kvs = [("general.architecture", STR, "llama"), ("general.alignment", U32, 32), ("general.name", STR, "fuzz-seed"),
       ("llama.context_length", U32, 16), ("llama.embedding_length", U32, D), ("llama.block_count", U32, 1),
       ("llama.feed_forward_length", U32, F), ("llama.attention.head_count", U32, 4),
       ("llama.attention.head_count_kv", U32, 2), ("llama.attention.layer_norm_rms_epsilon", F32, 1e-5),
       ("llama.rope.freq_base", F32, 10000.0), ("llama.rope.dimension_count", U32, 8),
       ("tokenizer.ggml.model", STR, "llama"),
       ("tokenizer.ggml.tokens", ARR, (STR, ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % i for i in range(8)] +
                                       ["\u2581" + c for c in "abcdefghijklmnopqrstu"])),
       ("tokenizer.ggml.scores", ARR, (F32, [0.0] * 11 + [-float(i) for i in range(21)])),
       ("tokenizer.ggml.token_type", ARR, (I32, [2, 3, 3] + [6] * 8 + [1] * 21)),
       ("tokenizer.ggml.bos_token_id", U32, 1), ("tokenizer.ggml.eos_token_id", U32, 2),
       ("tokenizer.ggml.unknown_token_id", U32, 0), ("tokenizer.ggml.add_bos_token", BOOL, True)]
tensors = [("token_embd.weight", [V, D], 8, q80(V * D)), ("output_norm.weight", [D], 0, f32(D)),
           ("blk.0.attn_norm.weight", [D], 0, f32(D)), ("blk.0.ffn_norm.weight", [D], 0, f32(D)),
           ("blk.0.attn_q.weight", [D, D], 8, q80(D * D)), ("blk.0.attn_k.weight", [KV, D], 1, f16(KV * D)),
           ("blk.0.attn_v.weight", [KV, D], 1, f16(KV * D)), ("blk.0.attn_output.weight", [D, D], 8, q80(D * D)),
           ("blk.0.ffn_gate.weight", [F, D], 8, q80(F * D)), ("blk.0.ffn_down.weight", [D, F], 8, q80(D * F)),
           ("blk.0.ffn_up.weight", [F, D], 0, f32(F * D))]
open(f"{out}/q8_0_llama.gguf", "wb").write(gguf(3, kvs, tensors))
# Every metadata value type, nested arrays; v3 and the version-1 layout (u32 counts and dims); no model.
every = [("u8", U8, 200), ("i8", I8, -5), ("u16", U16, 60000), ("i16", I16, -300), ("u32", U32, 4000000000),
         ("i32", I32, -7), ("f32", F32, 0.5), ("bool", BOOL, True), ("str", STR, "caf\u00e9"),
         ("u64", U64, 2**63 + 1), ("i64", I64, -2**40), ("f64", F64, 1e-300),
         ("arr.u8", ARR, (U8, [1, 2, 3])), ("arr.str", ARR, (STR, ["a", "", "bc"])),
         ("arr.nested", ARR, (ARR, [(I16, [1, -1]), (F64, [2.5])])), ("arr.empty", ARR, (F32, []))]
open(f"{out}/v3_every_type.gguf", "wb").write(gguf(3, every, [("t", [2, 3], 0, f32(6))]))
open(f"{out}/v1_every_type.gguf", "wb").write(gguf(1, every, [("t", [4], 30, struct.pack("<4H", 1, 2, 3, 4))]))
EOF

# ---- MIL programs (ours) and .npy arrays ----
cat > "$OUT/mil/dynamic_matmul.mil" <<'EOF'
program(1.3)
[buildInfo = dict<string, string>({{"coremlc-component-MIL", "3510.2.1"}, {"coremlc-version", "3505.4.1"}, {"coremltools-component-milinternal", ""}, {"coremltools-version", "9.0"}})]
{
    func main<ios18>(tensor<fp16, [1, 4, 1, 5]> x) {
        tensor<int32, [4]> c_0 = const()[name=string("c_0"), val=tensor<int32, [4]>([0,0,0,0])];
        tensor<int32, [4]> c_1 = const()[name=string("c_1"), val=tensor<int32, [4]>([1,4,1,2])];
        tensor<fp16, [1,4,1,2]> act = slice_by_size(x=x,begin=c_0,size=c_1)[name=string("act")];
        tensor<int32, [4]> c_2 = const()[name=string("c_2"), val=tensor<int32, [4]>([0,0,0,2])];
        tensor<int32, [4]> c_3 = const()[name=string("c_3"), val=tensor<int32, [4]>([1,4,1,3])];
        tensor<fp16, [1,4,1,3]> w = slice_by_size(x=x,begin=c_2,size=c_3)[name=string("w")];
        tensor<int32, [4]> c_4 = const()[name=string("c_4"), val=tensor<int32, [4]>([1,1,4,2])];
        tensor<fp16, [1,1,4,2]> act2 = reshape(shape=c_4,x=act)[name=string("act2")];
        tensor<int32, [4]> c_5 = const()[name=string("c_5"), val=tensor<int32, [4]>([0,1,3,2])];
        tensor<fp16, [1,1,2,4]> xt = transpose(perm=c_5,x=act2)[name=string("xt")];
        tensor<int32, [4]> c_6 = const()[name=string("c_6"), val=tensor<int32, [4]>([1,1,4,3])];
        tensor<fp16, [1,1,4,3]> w2 = reshape(shape=c_6,x=w)[name=string("w2")];
        bool c_7 = const()[name=string("c_7"), val=bool(false)];
        tensor<fp16, [1,1,2,3]> y = matmul(transpose_x=c_7,transpose_y=c_7,x=xt,y=w2)[name=string("y")];
        tensor<fp16, [1,1,3,2]> yt = transpose(perm=c_5,x=y)[name=string("yt")];
        tensor<int32, [4]> c_8 = const()[name=string("c_8"), val=tensor<int32, [4]>([1,3,1,2])];
        tensor<fp16, [1,3,1,2]> out = reshape(shape=c_8,x=yt)[name=string("out")];
    } -> (out);
}
EOF
cat > "$OUT/mil/elementwise_softmax.mil" <<'EOF'
program(1.3)
[buildInfo = dict<string, string>({})]
{
    func main<ios18>(tensor<fp16, [1, 4, 1, 3]> x, tensor<fp32, [1, 4, 1, 3]> y) {
        tensor<fp16, [1,1,1,3]> mask = const()[name=string("mask"), val=tensor<fp16, [1,1,1,3]>([0,-65504,0])];
        tensor<fp16, [1,4,1,3]> m = add(x=x,y=mask)[name=string("m")];
        int32 ax = const()[name=string("ax"), val=int32(-1)];
        tensor<fp16, [1,4,1,3]> p = softmax(axis=ax,x=m)[name=string("p")];
        tensor<int32, [1]> rax = const()[name=string("rax"), val=tensor<int32, [1]>([1])];
        bool kd = const()[name=string("kd"), val=bool(true)];
        tensor<fp16, [1,1,1,3]> s = reduce_sum(x=p,axes=rax,keep_dims=kd)[name=string("s")];
        fp16 h = const()[name=string("h"), val=fp16(-0.5)];
        tensor<fp16, [1,1,1,3]> r = pow(x=s,y=h)[name=string("r")];
        tensor<fp16, [1,4,1,3]> g = sigmoid(x=p)[name=string("g")];
        tensor<fp16, [1,4,1,3]> d = sub(x=g,y=r)[name=string("d")];
        string t = const()[name=string("t"), val=string("fp16")];
        tensor<fp16, [1,4,1,3]> y16 = cast(dtype=t,x=y)[name=string("y16")];
        fp16 sc = const()[name=string("sc"), val=fp16(0x1p-3)];
        string i8 = const()[name=string("i8"), val=string("int8")];
        tensor<int8, [1,4,1,3]> q = quantize(input=y16,output_dtype=i8,scale=sc)[name=string("q")];
        tensor<fp16, [1,4,1,3]> dq = dequantize(input=q,scale=sc)[name=string("dq")];
        int32 cax = const()[name=string("cax"), val=int32(1)];
        bool il = const()[name=string("il"), val=bool(false)];
        tensor<fp16, [1,8,1,3]> out = concat(axis=cax,interleave=il,values=(d,dq))[name=string("out")];
    } -> (out, p);
}
EOF
"$PY" - "$OUT/npy" <<'EOF'
# Written by hand (no numpy needed): magic, version 1.0, header dict padded to 64 bytes, data.
import struct, sys
out = sys.argv[1]
def npy(name, descr, shape, data):
    dims = ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "")
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, dims)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open("%s/%s.npy" % (out, name), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data)
npy("f16", "<f2", (1, 4, 1, 6), struct.pack("<24e", *range(24)))
npy("f32", "<f4", (3, 4), struct.pack("<12f", *[i / 11 - 0.5 for i in range(12)]))
npy("i32_scalar", "<i4", (), struct.pack("<i", 7))
npy("bool", "|b1", (2,), b"\x01\x00")
npy("empty", "<f2", (0, 3), b"")
EOF

# ---- seeds cut from the shared assets (generated at CI time, never committed) ----
if [[ -n $ASSETS ]]; then
  [[ -d $ASSETS ]] || { echo "make_seeds: assets folder $ASSETS not found" >&2; exit 2; }
  # The real stories260K header (and the first KBs of its weights): a truncated file.
  head -c 4096 "$ASSETS/llama2c/stories260K.bin" > "$OUT/llama2c/shared-stories260k-truncated.bin"
  # An "ak42" version-1 header (the q80 export), which the reader must refuse by name.
  head -c 256 "$ASSETS/llama2c/stories260K_q80.bin" > "$OUT/llama2c/shared-stories260k-q80-head.bin"
  cat "$ASSETS/llama2c/tok512.bin" > "$OUT/tokenizer_bin/shared-tok512.bin"  # cat: not its read-only mode
  # The metadata and first tensor infos of the two GGUF assets (v3 with a 32000-token vocab; v1).
  head -c 65536 "$ASSETS/gguf/llama-2-tiny-random.gguf" > "$OUT/gguf/shared-llama2-tiny-random-head.gguf"
  head -c 32768 "$ASSETS/gguf/tinyllamas-stories-260k-f32.gguf" > "$OUT/gguf/shared-stories260k-v1-head.gguf"
  # The seed's own MIL programs (tiny configs), rendered from its generators.
  for cfg in tiny-gqa static-tiny-mha; do
    for f in "$ASSETS/../reference/mil/$cfg"/*.mil; do cat "$f" > "$OUT/mil/shared-$cfg-$(basename "$f")"; done
  done
fi

big=$(find "$OUT" -type f -size +100k)
[[ -z $big ]] || { echo "make_seeds: seeds over 100 KB: $big" >&2; exit 1; }
echo "make_seeds: $(find "$OUT" -type f | wc -l) seeds in $OUT"
