#!/usr/bin/env bash
# Samples in the telemetry and `anetrain metrics` through the real binary: a 30-step stories260K
# run on War and Peace with --sample-every 10 writes `sample` events (greedy and sampled text,
# made of the tokenizer's pieces), and `metrics --csv` gives one row per step with the loss, the
# phases and the validation loss; a wrong tokenizer is refused before any step runs.
# Usage: metrics_cli.sh BIN ASSETS WORKDIR
set -u
BIN=$1 ASSETS=$2 W=$3
rm -rf "$W" && mkdir -p "$W"
fails=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi; }
Z=$ASSETS/llama2c/tok512.bin
gzip -dc "$ASSETS/corpora/war-and-peace.txt.gz" | head -c 400000 > "$W/wp.txt"
"$BIN" prepare "$W/wp.txt" -z "$Z" -o "$W/data" >/dev/null 2>&1
train=("$BIN" train --model stories260k --data "$W"/data/train_*.bin --val-data "$W"/data/val_*.bin --seq 64
       --batch 4 --eval-every 10 --eval-batches 2 --log-every 10 --ckpt-every 100 --threads 2)
"${train[@]}" --steps 30 --out "$W/run" -z "$Z" --sample-every 10 --sample-prompt "The prince" >/dev/null 2>"$W/err.txt"
check "a 30-step run with samples finishes" '[[ $? -eq 0 ]]'
T=$W/run/telemetry.jsonl
check "three sample events (steps 10, 20, 30)" '[[ $(grep -c "\"event\":\"sample\"" "$T") -eq 3 ]]'
check "a sample holds its prompt, greedy and sampled text" \
  '/usr/bin/python3 -c "import json,sys; s=[json.loads(l) for l in open(sys.argv[1]) if \"\\\"sample\\\"\" in l][-1]; sys.exit(0 if s[\"prompt\"]==\"The prince\" and len(s[\"greedy\"])>10 and len(s[\"sampled\"])>10 and s[\"step\"]==30 else 1)" "$T"'
"$BIN" metrics "$W/run" --csv > "$W/m.csv" 2>"$W/m_err.txt"
check "metrics --csv: a header and 30 rows" '[[ $(wc -l < "$W/m.csv") -eq 31 ]]'
check "columns include loss, phases and val_loss" 'head -1 "$W/m.csv" | grep -q "^step,.*loss,.*phase_ms.forward.*val_loss"'
check "row 10 has a validation loss" '/usr/bin/python3 -c "import csv,sys; r=list(csv.DictReader(open(sys.argv[1]))); sys.exit(0 if r[9][\"val_loss\"] and not r[8][\"val_loss\"] else 1)" "$W/m.csv"'
"$BIN" metrics "$W/run" -o "$W/m2.csv" 2>/dev/null
check "-o writes the same table" 'cmp -s "$W/m.csv" "$W/m2.csv"'
err=$("$BIN" metrics "$W/nothing" 2>&1); rc=$?
check "a missing run is an error naming it" '[[ $rc -ne 0 && "$err" == *"nothing"* ]]'
"$BIN" tokenizer train "$W/wp.txt" --vocab 512 -o "$W/other.json" >/dev/null 2>&1
err=$("${train[@]}" --steps 5 --out "$W/run2" -z "$W/other.json" --sample-every 5 2>&1); rc=$?
check "samples with another tokenizer than the data's are refused before training" \
  '[[ $rc -ne 0 && "$err" == *"prepared with"* && ! -e "$W/run2/telemetry.jsonl" ]]'
err=$("${train[@]}" --steps 5 --out "$W/run3" --sample-every 5 2>&1); rc=$?
check "--sample-every without a tokenizer is refused" '[[ $rc -ne 0 && "$err" == *"--tokenizer"* ]]'
[[ $fails -eq 0 ]]
