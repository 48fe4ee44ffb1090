#!/usr/bin/env bash
# Every command refuses out-of-range option values by name, at parse time, with a non-zero exit
# that is not a crash — the hostile-input pass found `--threads 100000` SIGSEGV in libgomp
# (generate, grad), abort in prepare, and `-t nan` printing garbage with exit 0.
# Usage: options_cli.sh ANETRAIN WORKDIR
set -u
BIN=$1 W=$2
rm -rf "$W" && mkdir -p "$W"
fails=0
echo "1 2 3 4 5 6 7 8 9" > "$W/tokens.txt"
echo "some text" > "$W/doc.txt"

# refused "flag named in the message" cmd...
refused() {
  local want=$1
  shift
  local err rc
  err=$(timeout 60 "$@" 2>&1 >/dev/null)
  rc=$?
  if [[ $rc -eq 0 || $rc -ge 124 ]]; then
    echo "FAIL $*: exit status $rc (want a refusal)"; echo "  $err"; fails=$((fails + 1)); return
  fi
  if [[ "$err" != *"$want"* ]]; then
    echo "FAIL $*: message lacks '$want'"; echo "  $err"; fails=$((fails + 1)); return
  fi
  echo "ok   $*"
}

too_many=$((4 * $(nproc) + 1))
for threads in 100000 5000 "$too_many" -1 nan; do
  refused --threads "$BIN" generate stories260k -n 2 --threads "$threads"
  refused --threads "$BIN" grad stories260k --tokens "$W/tokens.txt" -o "$W/g.st" --threads "$threads"
  refused --threads "$BIN" fit-batch stories260k --tokens "$W/tokens.txt" --seq 8 -o "$W/f.st" --threads "$threads"
  refused --threads "$BIN" prepare "$W/doc.txt" -z none -o "$W/p" --threads "$threads"
  refused --threads "$BIN" train --data "$W/none.bin" --out "$W/run" --threads "$threads"
  refused --threads "$BIN" bench generate stories260k --peer none --threads "$threads"
  refused --threads "$BIN" bench train stories260k --threads "$threads"
done
# Forced, a count past 4 per core is allowed (and runs).
if ANETRAIN_FORCE_THREADS=1 "$BIN" grad stories260k --tokens "$W/tokens.txt" -o "$W/g.st" --threads "$too_many" >/dev/null 2>"$W/err"; then
  echo "ok   ANETRAIN_FORCE_THREADS=1 allows --threads $too_many"
else
  echo "FAIL ANETRAIN_FORCE_THREADS=1 --threads $too_many: $(cat "$W/err")"; fails=$((fails + 1))
fi

refused --temperature "$BIN" generate stories260k -n 2 -t nan
refused --temperature "$BIN" generate stories260k -n 2 -t -1
refused --top-p "$BIN" generate stories260k -n 2 -p 0
refused --top-p "$BIN" generate stories260k -n 2 -p 1.5
refused --top-k "$BIN" generate stories260k -n 2 -k -1
refused --steps "$BIN" generate stories260k -n -1
refused --batch "$BIN" grad stories260k --tokens "$W/tokens.txt" -o "$W/g.st" --batch 0
refused --lr "$BIN" fit-batch stories260k --tokens "$W/tokens.txt" --seq 8 -o "$W/f.st" --lr nan
refused --beta2 "$BIN" fit-batch stories260k --tokens "$W/tokens.txt" --seq 8 -o "$W/f.st" --beta2 1
refused --eps "$BIN" fit-batch stories260k --tokens "$W/tokens.txt" --seq 8 -o "$W/f.st" --eps 0
refused --coverage "$BIN" tokenizer train "$W/doc.txt" --vocab 300 -o "$W/t.json" --coverage 0
refused --rounds "$BIN" bench generate stories260k --peer none --rounds 0
refused --recompute "$BIN" train --data "$W/none.bin" --out "$W/run" --recompute layers
refused --recompute "$BIN" fit-batch stories260k --tokens "$W/tokens.txt" --seq 8 -o "$W/f.st" --recompute layers
refused --recompute "$BIN" bench train stories260k --recompute layers
for flags in "--lr nan" "--wd nan" "--beta1 nan" "--beta2 2" "--time-budget nan" "--clip nan" "--eval-batches -1" \
             "--sample-tokens -1" "--stop-at -1" "--warmup -1" "--keep -1" "--loss-scale nan"; do
  # shellcheck disable=SC2086
  refused "${flags%% *}" "$BIN" train --data "$W/none.bin" --out "$W/run" $flags
done
# Without --data, `train` runs the built-in default job: an option that job would ignore (a model,
# adapters, a shape) is refused by name before anything is fetched or written.
refused "--model needs --data" "$BIN" train --model stories260k --out "$W/run"
refused "--lora" "$BIN" train --model stories260k --lora 4 --out "$W/run"
refused "--seq" "$BIN" train --seq 64 --out "$W/run"
[[ -e "$W/run" ]] && { echo "FAIL a refused train created its run folder"; fails=$((fails + 1)); }

echo "$fails failed"
[[ $fails -eq 0 ]]
