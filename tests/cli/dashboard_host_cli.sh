#!/usr/bin/env bash
# `--host` through the real binary, for both ways of serving the dashboard (`dashboard` and
# `train --dashboard`): an address other than the loopback gets the same warning from both, and
# the URL printed names where the server listens — for 0.0.0.0 not 127.0.0.1, which would hide
# that every interface answers. The loopback default prints no warning. Nothing here connects
# anywhere; the wildcard is bound only for the seconds the commands run.
# Usage: dashboard_host_cli.sh BIN ASSETS WORKDIR   (exit 77: built without the web page)
set -u
BIN=$1 ASSETS=$2 W=$3
rm -rf "$W" && mkdir -p "$W/run"
fails=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi; }
echo '{"event":"run_start","time":1}' > "$W/run/telemetry.jsonl"
WARNING="anyone who can reach this machine can read"

# `dashboard` until its banner is out, then Ctrl-C.
dashboard_banner() {
  "$BIN" dashboard "$W/run" --port 0 "$@" > "$W/dash.out" 2> "$W/dash.err" &
  local pid=$!
  for _ in $(seq 50); do grep -q "Ctrl-C" "$W/dash.out" 2>/dev/null && break; sleep 0.1; done
  kill -INT $pid 2>/dev/null
  wait $pid 2>/dev/null
  cat "$W/dash.out" "$W/dash.err"
}
out=$(dashboard_banner --host 0.0.0.0)
if [[ "$out" == *"without its web page"* ]]; then echo "skip: built without the web page"; exit 77; fi
check "dashboard --host 0.0.0.0 warns" '[[ "$out" == *"listening on 0.0.0.0"*"$WARNING"* ]]'
check "dashboard --host 0.0.0.0 prints no 127.0.0.1 URL" '[[ "$out" == *"dashboard: http://"* && "$out" != *"127.0.0.1"* ]]'
dash_host_out=$out
out=$(dashboard_banner)
check "dashboard on the loopback: 127.0.0.1 and no warning" '[[ "$out" == *"http://127.0.0.1:"* && "$out" != *"$WARNING"* ]]'

Z=$ASSETS/llama2c/tok512.bin
gzip -dc "$ASSETS/corpora/war-and-peace.txt.gz" | head -c 100000 > "$W/wp.txt"
"$BIN" prepare "$W/wp.txt" -z "$Z" -o "$W/data" >/dev/null 2>&1
train() {
  "$BIN" train --model stories260k --data "$W"/data/train_*.bin --seq 32 --batch 2 --steps 3 --threads 1 \
    --eval-every 0 --ckpt-every 1000 --out "$W/train_$1" --dashboard --port 0 "${@:2}" 2>&1
}
out=$(train wild --host 0.0.0.0)
check "train --dashboard --host 0.0.0.0 warns as dashboard does" '[[ "$out" == *"listening on 0.0.0.0"*"$WARNING"* ]]'
check "train --dashboard --host 0.0.0.0 prints no 127.0.0.1 URL" '[[ "$out" == *"dashboard: http://"* && "$out" != *"127.0.0.1"* ]]'
# The same warning line, word for word, from both commands.
w_dash=$(grep -F "$WARNING" <<<"$dash_host_out")
w_train=$(grep -F "$WARNING" <<<"$out")
check "the warning is the same line in both commands" '[[ -n "$w_dash" && "$w_dash" == "$w_train" ]]'
url_dash=$(grep -o 'http://[^ ]*' <<<"$dash_host_out" | head -1 | sed 's/:[0-9]*\/$//')
url_train=$(grep -o 'http://[^ ]*' <<<"$out" | head -1 | sed 's/:[0-9]*\/$//')
check "both name the same address ($url_dash)" '[[ -n "$url_dash" && "$url_dash" == "$url_train" ]]'
out=$(train local)
check "train --dashboard on the loopback: 127.0.0.1 and no warning" '[[ "$out" == *"http://127.0.0.1:"* && "$out" != *"$WARNING"* ]]'
[[ $fails -eq 0 ]]
