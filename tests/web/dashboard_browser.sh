#!/usr/bin/env bash
# The web dashboard in a real browser (Debian's chromium, headless, driven by puppeteer-core from
# tests/web/package-lock.json): the page of a live run served by `train --dashboard`, then two
# runs overlaid by `anetrain dashboard A B`, then the x/y toggles; the log panel on the live run. Screenshots go to WORKDIR.
# Skipped (77) without chromium or `npm ci --prefix tests/web`, except under scripts/test.sh
# (ANETRAIN_REQUIRE_BROWSER=1), which installs both: there a missing one is a failure.
# Usage: dashboard_browser.sh BIN ASSETS WORKDIR
set -u
BIN=$1 ASSETS=$2 W=$3
HERE=$(cd "$(dirname "$0")" && pwd)
rm -rf "$W" && mkdir -p "$W"
missing=""
[[ -x /usr/bin/chromium ]] || missing="chromium (apt-get install chromium)"
[[ -d "$HERE/node_modules/puppeteer-core" ]] || missing="puppeteer-core (npm ci --prefix tests/web)"
if [[ -n "$missing" ]]; then
  if [[ -n "${ANETRAIN_REQUIRE_BROWSER:-}" ]]; then echo "FAIL: $missing is missing"; exit 1; fi
  echo "skip: $missing is not installed"; exit 77
fi
fails=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi; }
Z=$ASSETS/llama2c/tok512.bin
gzip -dc "$ASSETS/corpora/war-and-peace.txt.gz" | head -c 300000 > "$W/wp.txt"
"$BIN" prepare "$W/wp.txt" -z "$Z" -o "$W/data" >/dev/null 2>&1
train() {  # (exec: $! is the trainer itself) stories260K from scratch on one thread: ~25 ms a step here, samples every 20 steps
  local out=$1 steps=$2; shift 2
  exec "$BIN" train --model stories260k --data "$W"/data/train_*.bin --val-data "$W"/data/val_*.bin --seq 64 --batch 8 \
    --steps "$steps" --eval-every 25 --eval-batches 2 --log-every 100 --ckpt-every 100 --threads 1 --lr 1e-3 \
    --out "$out" -z "$Z" --sample-every 20 "$@"
}
url_of() { for _ in $(seq 100); do grep -o 'http://127.0.0.1:[0-9]*/' "$1" 2>/dev/null && return; sleep 0.1; done; }

# 1. A finished run, to overlay later.
(train "$W/short" 150) >/dev/null 2>&1
# 2. A live run serving its own page.
train "$W/live" 100000 --dashboard --port 0 > "$W/live.log" 2>&1 &
TRAIN=$!
URL=$(url_of "$W/live.log")
check "train --dashboard prints its URL ($URL)" '[[ -n "$URL" ]]'
for _ in $(seq 100); do [[ $(grep -c '"sample"' "$W/live/telemetry.jsonl" 2>/dev/null) -ge 1 ]] && break; sleep 0.2; done
node "$HERE/dashboard_page.mjs" "$URL" "$W/dashboard-live.png" --live --samples --log; rc=$?
check "the live run's page and its log panel (screenshot dashboard-live.png)" '[[ $rc -eq 0 ]]'

# 3. Both runs overlaid by the dashboard command, while the live one keeps training.
"$BIN" dashboard "$W/live" "$W/short" --port 0 > "$W/dash.log" 2>&1 &
DASH=$!
URL2=$(url_of "$W/dash.log")
node "$HERE/dashboard_page.mjs" "$URL2" "$W/dashboard-two-runs.png" --live --runs 2 --samples --toggles; rc=$?
check "two runs overlaid, toggles work (screenshots dashboard-two-runs*.png)" '[[ $rc -eq 0 ]]'

kill "$TRAIN" 2>/dev/null
wait "$TRAIN" 2>/dev/null
# 4. The dashboard keeps serving after the run stopped and its directory disappeared.
rm -rf "$W/live"
sleep 1
code=$(curl -s -o /dev/null -w '%{http_code}' "${URL2}api/runs")
check "the dashboard still answers after a run directory was deleted ($code)" '[[ $code == 200 ]]'
kill -0 "$DASH" 2>/dev/null; rc=$?
check "and is still running" '[[ $rc -eq 0 ]]'
kill -INT "$DASH"
wait "$DASH"; rc=$?
check "Ctrl-C stops it cleanly (exit $rc)" '[[ $rc -eq 0 ]]'
[[ $fails -eq 0 ]]
