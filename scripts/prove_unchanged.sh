#!/usr/bin/env bash
# Proof that a restructuring changed no result: the same fixed runs with two binaries — the one
# built here and one built from a base commit — must give the same bits.
#   training: 20 steps each of cpu fp32, cpu bf16 and ane-sim, on stories260K (llama2.c weights,
#             interleaved RoPE, tied classifier) and on a Qwen3-shaped model from scratch (QK-norm,
#             half RoPE, own classifier), 2 micro-batches: every step's loss, gradient norm and
#             learning rate, every validation loss, and the checkpoints' bytes (the run's random
#             id, its only intended difference, is blanked before comparing);
#   generation: greedy texts from f32, bf16 and Q8_0 weights (cpu) and through ane-sim's programs;
#   gradients: `grad`'s safetensors (loss, logits, every gradient) on cpu and ane-sim;
#   fit-batch on cpu (the fp16 backends' fit-batch gained loss scaling, so only cpu must agree).
# Thread counts are pinned: OpenMP reductions may group sums by thread.
#
# usage: scripts/prove_unchanged.sh [--base COMMIT | --base-binary PATH] [--binary PATH] [--keep]
#   --base COMMIT       build COMMIT's `anetrain` in a temporary worktree (default: HEAD~1)
#   --base-binary PATH  use an existing binary of the base instead of building one
#   --binary PATH       the binary under test (default: build/src/anetrain)
# Needs ../shared/assets (stories260K.bin, tok512.bin, a corpus). Exit 0 when all agree.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ASSETS=$ROOT/../shared/assets
BASE_COMMIT=HEAD~1 BASE_BIN="" NEW_BIN=$ROOT/build/src/anetrain KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --base) BASE_COMMIT=$2; shift 2 ;;
    --base-binary) BASE_BIN=$2; shift 2 ;;
    --binary) NEW_BIN=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "prove_unchanged: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for f in "$ASSETS/llama2c/stories260K.bin" "$ASSETS/llama2c/tok512.bin" "$ASSETS/corpora/war-and-peace.txt.gz"; do
  [ -f "$f" ] || { echo "prove_unchanged: missing $f (../shared/assets)" >&2; exit 2; }
done
[ -x "$NEW_BIN" ] || { echo "prove_unchanged: no binary at $NEW_BIN (build first)" >&2; exit 2; }
WORK=$(mktemp -d /tmp/prove_unchanged.XXXXXX)
cleanup() {
  if [ -n "${WORKTREE:-}" ]; then git -C "$ROOT" worktree remove --force "$WORKTREE" >/dev/null 2>&1 || true; fi
  if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

if [ -z "$BASE_BIN" ]; then
  WORKTREE=$WORK/base-src
  git -C "$ROOT" worktree add --detach "$WORKTREE" "$BASE_COMMIT" >/dev/null
  echo "building $(git -C "$WORKTREE" rev-parse --short HEAD) (the base) in $WORKTREE ..."
  cmake -S "$WORKTREE" -B "$WORK/base-build" -DANETRAIN_TESTS=OFF >"$WORK/base-build.log" 2>&1
  cmake --build "$WORK/base-build" -j"$(nproc)" --target anetrain >>"$WORK/base-build.log" 2>&1 ||
    { tail -30 "$WORK/base-build.log"; exit 2; }
  BASE_BIN=$WORK/base-build/src/anetrain
fi

# Shared inputs: token shards of a corpus slice, a Qwen3-shaped config, token files for grad.
mkdir -p "$WORK/in"
{ zcat "$ASSETS/corpora/war-and-peace.txt.gz" || true; } | head -c 300000 >"$WORK/in/text.txt"
"$NEW_BIN" prepare "$WORK/in/text.txt" -z "$ASSETS/llama2c/tok512.bin" -o "$WORK/in/data" >/dev/null
cat >"$WORK/in/qwen3-tiny.json" <<'JSON'
{"arch": "qwen3", "dim": 64, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "head_dim": 16,
 "hidden_dim": 96, "vocab_size": 512, "max_seq_len": 128, "rope_theta": 1000000.0,
 "rope_style": "half", "norm_eps": 1e-6, "qk_norm": true, "tied_embeddings": false, "residual_scale": 1.0}
JSON
python3 - "$WORK/in" <<'PY'
import random, sys
random.seed(3)
for name, rows in (("grad", 2), ("fit", 4)):
    with open(f"{sys.argv[1]}/{name}_tokens.txt", "w") as f:
        f.write(" ".join(str(random.randrange(1, 512)) for _ in range(rows * 33)) + "\n")
PY

# One scenario with one binary: everything it writes goes under $WORK/<side>/<scenario>.
run_all() {
  local bin=$1 out=$WORK/$2
  mkdir -p "$out"
  cd "$out"
  export OMP_NUM_THREADS=2
  local common=(--data "$WORK/in/data/train_000.bin" --val-data "$WORK/in/data/val_000.bin" --seq 32 --batch 2
                --accum 2 --steps 20 --warmup 5 --eval-every 10 --eval-batches 2 --ckpt-every 10 --keep 2
                --log-every 1 --threads 2 --seed 7)
  local model
  for model in stories260k qwen3; do
    local src=$ASSETS/llama2c/stories260K.bin
    [ $model = qwen3 ] && src=$WORK/in/qwen3-tiny.json
    "$bin" train --model "$src" "${common[@]}" --backend cpu --precision fp32 --out train-$model-fp32 >/dev/null
    "$bin" train --model "$src" "${common[@]}" --backend cpu --precision bf16 --out train-$model-bf16 >/dev/null
    "$bin" train --model "$src" "${common[@]}" --backend ane-sim --out train-$model-anesim >/dev/null
    "$bin" grad "$src" --tokens "$WORK/in/grad_tokens.txt" --batch 2 --threads 2 -o grad-$model-cpu.safetensors >/dev/null 2>&1
    "$bin" grad "$src" --tokens "$WORK/in/grad_tokens.txt" --batch 2 --threads 2 --backend ane-sim \
      -o grad-$model-anesim.safetensors >/dev/null 2>&1
  done
  "$bin" fit-batch "$ASSETS/llama2c/stories260K.bin" --tokens "$WORK/in/fit_tokens.txt" --seq 32 --accum 2 --steps 8 \
    --warmup 2 --threads 2 -o fit-cpu.safetensors >/dev/null 2>&1
  local dtype
  for dtype in f32 bf16 q8_0; do
    "$bin" generate "$ASSETS/llama2c/stories260K.bin" -z "$ASSETS/llama2c/tok512.bin" -i "Once upon a time" -n 60 \
      -t 0 --threads 2 --dtype $dtype >gen-$dtype.txt 2>/dev/null
  done
  "$bin" generate "$ASSETS/llama2c/stories260K.bin" -z "$ASSETS/llama2c/tok512.bin" -i "Once upon a time" -n 40 \
    -t 0 --threads 2 --backend ane-sim >gen-anesim.txt 2>/dev/null
  "$bin" generate "$out/train-qwen3-fp32" -z "$ASSETS/llama2c/tok512.bin" -i "The war" -n 40 -t 0 --threads 2 \
    >gen-qwen3-trained.txt 2>/dev/null
  cd "$ROOT"
}

echo "base: $BASE_BIN"
run_all "$BASE_BIN" base
echo "new:  $NEW_BIN"
run_all "$NEW_BIN" new

python3 - "$WORK/base" "$WORK/new" <<'PY'
import json, os, re, sys
base, new = sys.argv[1:]
failures, checked = [], 0

def events(path):
    # The numbers a run computes, in order; times, rates, memory and kernel timings are not results.
    keep = {"step": ("step", "loss", "lr", "grad_norm", "skipped", "loss_scale", "overflow"),
            "eval": ("step", "val_loss"), "checkpoint": ("step",)}
    out = []
    for line in open(path):
        e = json.loads(line)
        if e.get("event") in keep:
            out.append({k: e.get(k) for k in ("event",) + keep[e["event"]]})
    return out

def blank_run_id(data):
    # The header's crc32 (bytes 12..16, after the magic and the version) covers the run id too.
    data = re.sub(rb'"run_id":"[0-9a-f]+"', b'"run_id":"?"', data)
    return data[:12] + b"????" + data[16:] if b'"run_id"' in data[:4096] else data

for root, _, files in os.walk(base):
    for name in sorted(files):
        b = os.path.join(root, name)
        rel = os.path.relpath(b, base)
        n = os.path.join(new, rel)
        if name in ("run.lock", "run.json"):
            continue
        if not os.path.exists(n):
            failures.append(f"{rel}: missing from the new binary's output"); continue
        checked += 1
        if name == "telemetry.jsonl":
            eb, en = events(b), events(n)
            if not eb:
                failures.append(f"{rel}: no step events")
            if eb != en:
                first = next((i for i, (x, y) in enumerate(zip(eb, en)) if x != y), min(len(eb), len(en)))
                failures.append(f"{rel}: event {first} differs: base {eb[first] if first < len(eb) else None} "
                                f"new {en[first] if first < len(en) else None}")
        else:
            db, dn = open(b, "rb").read(), open(n, "rb").read()
            if name.endswith(".anck"):
                db, dn = blank_run_id(db), blank_run_id(dn)
            if not db:
                failures.append(f"{rel}: empty")
            if db != dn:
                failures.append(f"{rel}: bytes differ ({len(db)} vs {len(dn)} bytes)")
print(f"compared {checked} outputs")
for f in failures:
    print("DIFFERS:", f)
if failures or checked < 30:
    sys.exit(1)
print("all identical")
PY
