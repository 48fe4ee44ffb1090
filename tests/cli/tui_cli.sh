#!/usr/bin/env bash
# `anetrain dashboard --tui` under tmux, on a live run: the pane shows the run, its step moving,
# the loss chart and the latest sample; a resize redraws within the new width; q quits and the
# session ends. Refusals: no terminal, two runs, a bad port for the web page. A run whose telemetry
# carries terminal escape sequences (retitle, clear) in its model, CPU and sample text is drawn
# with them escaped, and the pane keeps its title. Skipped (with a note) without tmux.
# Usage: tui_cli.sh BIN ASSETS WORKDIR
set -u
BIN=$1 ASSETS=$2 W=$3
rm -rf "$W" && mkdir -p "$W"
fails=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi; }
Z=$ASSETS/llama2c/tok512.bin
gzip -dc "$ASSETS/corpora/war-and-peace.txt.gz" | head -c 300000 > "$W/wp.txt"
"$BIN" prepare "$W/wp.txt" -z "$Z" -o "$W/data" >/dev/null 2>&1

err=$("$BIN" dashboard --tui "$W/none" 2>&1 </dev/null); rc=$?
check "dashboard without a terminal is refused" '[[ $rc -ne 0 && "$err" == *"terminal"* ]]'
err=$("$BIN" dashboard --tui "$W/a" "$W/b" 2>&1 </dev/null); rc=$?
check "dashboard --tui with two runs is refused" '[[ $rc -ne 0 && "$err" == *"one run"* ]]'
err=$("$BIN" dashboard "$W/none" --port 70000 2>&1); rc=$?
check "the web dashboard refuses a port out of range" '[[ $rc -ne 0 && "$err" == *"--port"* ]]'

if ! command -v tmux >/dev/null; then
  echo "skip the live view (no tmux)"
  [[ $fails -eq 0 ]]
  exit
fi
S=anetrain_tui_$$
export TMUX_TMPDIR=$W  # a private tmux server
# A live run: stories260K from scratch, slowed to ~20 steps/s by its size, samples every 20 steps.
"$BIN" train --model stories260k --data "$W"/data/train_*.bin --val-data "$W"/data/val_*.bin --seq 64 --batch 8 \
  --steps 100000 --eval-every 50 --eval-batches 2 --log-every 50 --ckpt-every 100000 --threads 1 \
  --out "$W/run" -z "$Z" --sample-every 20 --sample-prompt "The prince" >/dev/null 2>&1 &
TRAIN=$!
for _ in $(seq 50); do [[ -s "$W/run/telemetry.jsonl" ]] && break; sleep 0.2; done
tmux new-session -d -s "$S" -x 100 -y 30 "'$BIN' dashboard --tui '$W/run'"
sleep 3
a=$(tmux capture-pane -p -t "$S")
sleep 3
b=$(tmux capture-pane -p -t "$S")
step() { grep -o '^step [0-9]*' <<<"$1" | head -1 | cut -d' ' -f2; }
check "the pane shows the run and its loss chart" '[[ "$a" == *"anetrain $W/run"* && "$a" == *"loss (dots"* && "$a" == *"q quits"* ]]'
check "the step moves while the run trains ($(step "$a") → $(step "$b"))" '[[ -n "$(step "$a")" && "$(step "$b")" -gt "$(step "$a")" ]]'
check "the latest sample is shown" '[[ "$b" == *"sample at step"* && "$b" == *"The prince"* ]]'
tmux resize-window -t "$S" -x 60 -y 20 2>/dev/null || tmux resize-pane -t "$S" -x 60 -y 20
sleep 1.5
c=$(tmux capture-pane -p -t "$S")
wide=$(/usr/bin/python3 -c 'import sys; print(max(len(l) for l in sys.stdin.read().splitlines()))' <<<"$c")
check "after a resize to 60 columns nothing is wider ($wide)" '[[ $wide -le 60 && "$c" == *"q quits"* ]]'
kill "$TRAIN" 2>/dev/null
wait "$TRAIN" 2>/dev/null
tmux send-keys -t "$S" q
sleep 1.5
check "q quits" '! tmux has-session -t "$S" 2>/dev/null'

# Hostile text: OSC 0 (set the title), CSI 2J (clear the screen), C1 CSI, a DCS string.
mkdir -p "$W/evil"
OSC='\u001b]0;pwned\u0007' CLR='\u001b[2J'
cat > "$W/evil/telemetry.jsonl" <<JSON
{"event":"run_start","options":{"model":"m$OSC$CLR","steps":10},"backend":"cpu\u009b2J","cpu":"Xeon$OSC"}
{"event":"step","step":1,"loss":5.0}
{"event":"step","step":2,"loss":4.5}
{"event":"sample","step":2,"prompt":"Once$OSC","greedy":" upon$CLR\u001bP1\$r\u001b\\\\ a time"}
JSON
E=anetrain_tui_evil_$$
tmux new-session -d -s "$E" -x 160 -y 30 "printf '\033]2;clean-title\007'; '$BIN' dashboard --tui '$W/evil'"
sleep 2
d=$(tmux capture-pane -p -t "$E")
title=$(tmux display-message -p -t "$E" '#{pane_title}')
want_model='model m\x1b]0;pwned\x07\x1b[2J' want_cpu='Xeon\x1b]0;pwned\x07' want_c1='cpu\u009b2J'
want_sample='Once\x1b]0;pwned\x07 upon\x1b[2J\x1bP1$r\x1b\ a time'
check "the model name is drawn escaped" '[[ "$d" == *"$want_model"* ]]'
check "the CPU and the C1 control are drawn escaped" '[[ "$d" == *"$want_cpu"* && "$d" == *"$want_c1"* ]]'
check "the sample is drawn escaped" '[[ "$d" == *"$want_sample"* ]]'
check "the pane keeps its title ($title)" '[[ "$title" == "clean-title" ]]'
tmux send-keys -t "$E" q
sleep 1
tmux kill-server 2>/dev/null
[[ $fails -eq 0 ]]
