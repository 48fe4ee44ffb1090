#!/usr/bin/env bash
# What `train --dashboard` costs the training it serves: the same short run alternately without
# and with the dashboard (a client following its event stream, as an open page does), median
# tokens/s of the steps after warm-up from each run's telemetry. Rounds alternate because this
# machine's speed drifts within minutes. Then the server's own CPU time, which is what it costs.
# Usage: bench/dashboard_cost.sh BIN ASSETS [ROUNDS] [MODEL]
set -euo pipefail
BIN=$1 ASSETS=$2 ROUNDS=${3:-3} MODEL=${4:-stories15m}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
{ gzip -dc "$ASSETS/corpora/war-and-peace.txt.gz" || true; } | head -c 2000000 > "$W/wp.txt"
"$BIN" prepare "$W/wp.txt" -z "$ASSETS/llama2c/tokenizer.bin" -o "$W/data" >/dev/null 2>&1
run() {  # run NAME [extra train flags]: prints the median tokens/s of steps 6..
  local name=$1; shift
  "$BIN" train --model "$MODEL" --data "$W"/data/train_*.bin --seq 256 --batch 4 --steps 30 --eval-every 0 \
    --ckpt-every 1000 --log-every 1000 --out "$W/$name" "$@" > "$W/$name.log" 2>&1 &
  local pid=$! url=""
  if [[ $# -gt 0 ]]; then
    for _ in $(seq 100); do url=$(grep -o 'http://127.0.0.1:[0-9]*/' "$W/$name.log" || true); [[ -n $url ]] && break; sleep 0.1; done
    curl -s -N "${url}api/stream" > /dev/null &
  fi
  wait $pid
  /usr/bin/python3 - "$W/$name/telemetry.jsonl" <<'PY'
import json, statistics, sys
tps = [e["tokens_per_s"] for e in map(json.loads, open(sys.argv[1])) if e["event"] == "step" and e["step"] > 5]
print(f"{statistics.median(tps):.0f}")
PY
}
off=() on=()
for r in $(seq "$ROUNDS"); do
  # Which goes first alternates too, so a drift within a round favours neither.
  if ((r % 2)); then
    off+=("$(run "off$r")")
    on+=("$(run "on$r" --dashboard --port 0)")
  else
    on+=("$(run "on$r" --dashboard --port 0)")
    off+=("$(run "off$r")")
  fi
  echo "round $r: without ${off[-1]} tokens/s, with --dashboard and a page open ${on[-1]} tokens/s"
  pkill -f "curl -s -N http://127.0.0.1" || true
done
/usr/bin/python3 -c "
import statistics, sys
a = [float(x) for x in '${off[*]}'.split()]; b = [float(x) for x in '${on[*]}'.split()]
print(f'median without {statistics.median(a):.0f}, with {statistics.median(b):.0f} tokens/s: ratio {statistics.median(b)/statistics.median(a):.3f}')"
# The server's own CPU time, which the ratio above is too noisy to resolve: the same work in a
# separate `anetrain dashboard` process following a training run with a page's stream open.
"$BIN" dashboard "$W/cpu" --port 0 > "$W/dash.log" 2>&1 &
DASH=$!
for _ in $(seq 100); do url=$(grep -o 'http://127.0.0.1:[0-9]*/' "$W/dash.log" || true); [[ -n $url ]] && break; sleep 0.1; done
curl -s -N "${url}api/stream" > /dev/null &
CURL=$!
t0=$(date +%s.%N)
run cpu > /dev/null
t1=$(date +%s.%N)
ticks=$(awk '{print $14 + $15}' "/proc/$DASH/stat")
kill "$CURL" "$DASH" 2>/dev/null || true
/usr/bin/python3 -c "
import os
cpu = $ticks / os.sysconf('SC_CLK_TCK'); wall = $t1 - $t0
print(f'dashboard server CPU time while following the run: {cpu:.2f} s over {wall:.1f} s of training = {100*cpu/wall:.2f}% of one core')"

