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
for t in safetensors llama2c anck tokenizer_json tokenizer_bin; do mkdir -p "$OUT/$t"; done

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
EOF

# ---- seeds cut from the shared assets (generated at CI time, never committed) ----
if [[ -n $ASSETS ]]; then
  [[ -d $ASSETS ]] || { echo "make_seeds: assets folder $ASSETS not found" >&2; exit 2; }
  # The real stories260K header (and the first KBs of its weights): a truncated file.
  head -c 4096 "$ASSETS/llama2c/stories260K.bin" > "$OUT/llama2c/shared-stories260k-truncated.bin"
  # An "ak42" version-1 header (the q80 export), which the reader must refuse by name.
  head -c 256 "$ASSETS/llama2c/stories260K_q80.bin" > "$OUT/llama2c/shared-stories260k-q80-head.bin"
  cat "$ASSETS/llama2c/tok512.bin" > "$OUT/tokenizer_bin/shared-tok512.bin"  # cat: not its read-only mode
fi

big=$(find "$OUT" -type f -size +100k)
[[ -z $big ]] || { echo "make_seeds: seeds over 100 KB: $big" >&2; exit 1; }
echo "make_seeds: $(find "$OUT" -type f | wc -l) seeds in $OUT"
