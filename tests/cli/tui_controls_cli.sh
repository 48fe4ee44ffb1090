#!/usr/bin/env bash
# `anetrain dashboard --tui`'s keys under tmux, on real stories260K runs (one thread each):
#   g: the running trainer writes a sample event now (the run's --sample-every is far away);
#   ↑/End: the log panel scrolls back (and holds its lines while steps arrive), then follows again;
#   p: the trainer checkpoints and exits 0 (run_end "paused"); p again: the dashboard resumes it
#      (`train --resume`, its output in RUN/train.log under anetrain's header line);
#   r: a pause and a resume from that checkpoint; q on a trainer it started asks, s stops it;
#   --tui --train ARGS: starts the run with ARGS verbatim, which completes; q then quits at once.
# Skipped (77) without tmux. Usage: tui_controls_cli.sh BIN ASSETS WORKDIR
set -u
BIN=$1 ASSETS=$2 W=$3
rm -rf "$W" && mkdir -p "$W"
command -v tmux >/dev/null || { echo "skip: no tmux"; exit 77; }
fails=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi; }
# wait_for SECONDS CONDITION: polls every 0.1 s.
wait_for() { local n=$(($1 * 10)); for _ in $(seq "$n"); do eval "$2" && return 0; sleep 0.1; done; return 1; }
count() { grep -c "\"event\":\"$1\"" "$2/telemetry.jsonl" 2>/dev/null || true; }
Z=$ASSETS/llama2c/tok512.bin
gzip -dc "$ASSETS/corpora/war-and-peace.txt.gz" | head -c 100000 > "$W/wp.txt"
"$BIN" prepare "$W/wp.txt" -z "$Z" -o "$W/data" >/dev/null 2>&1
ARGS=(--model stories260k --data "$W"/data/train_*.bin --seq 64 --batch 8 --log-every 50 --threads 1 -z "$Z"
      --sample-every 100000 --ckpt-every 100000 --sample-prompt "The prince")
export TMUX_TMPDIR=$W  # a private tmux server
S=anetrain_tuictl_$$
pane() { tmux capture-pane -p -t "$S"; }

# ---- a run started outside the dashboard ----
R=$W/run
"$BIN" train "${ARGS[@]}" --steps 100000 --out "$R" > "$W/train.out" 2>&1 &
TRAIN=$!
wait_for 10 '[[ $(count step "$R") -ge 1 ]]'
tmux new-session -d -s "$S" -x 120 -y 40 "'$BIN' dashboard --tui '$R'"
wait_for 5 '[[ "$(pane)" == *"g sample now"* ]]'
tmux send-keys -t "$S" g
wait_for 8 '[[ $(count sample "$R") -ge 1 ]]'
check "g: the trainer wrote a sample event ($(count sample "$R"))" '[[ $(count sample "$R") -eq 1 ]]'
wait_for 3 '[[ "$(pane)" == *"sample at step"*"The prince"* ]]'
check "the sample is drawn" '[[ "$(pane)" == *"sample at step"*"The prince"* ]] && grep -q "\"event\":\"sample\".*\"prompt\":\"The prince\"" "$R/telemetry.jsonl"'

tmux send-keys -t "$S" Up Up Up Up Up
sleep 0.6
a=$(pane)
sleep 1.2
b=$(pane)
last_log() { grep -E '^  [0-9:]{8} ' <<<"$1" | tail -1; }
check "↑ scrolls the log back" '[[ "$a" == *"newer lines below"* ]]'
check "a scrolled log keeps its lines while steps arrive ($(last_log "$b"))" '[[ -n "$(last_log "$a")" && "$(last_log "$a")" == "$(last_log "$b")" ]]'
tmux send-keys -t "$S" End
sleep 1.2
c=$(pane)
check "End follows the newest again" '[[ "$c" != *"newer lines below"* && "$(last_log "$c")" != "$(last_log "$a")" ]]'

tmux send-keys -t "$S" p
wait_for 10 '! kill -0 $TRAIN 2>/dev/null'
wait "$TRAIN"; rc=$?
check "p: the trainer stopped cleanly (exit $rc)" '[[ $rc -eq 0 ]]'
check "p: it checkpointed and recorded a pause" '[[ $(count checkpoint "$R") -ge 1 && "$(tail -1 "$R/telemetry.jsonl")" == *"\"status\":\"paused\""* && -d "$R/ckpt" ]]'
check "the request file is gone" '[[ ! -e "$R/control.json" ]]'
paused_at=$(grep '"event":"run_end"' "$R/telemetry.jsonl" | tail -1 | grep -o '"step":[0-9]*' | cut -d: -f2)
tmux send-keys -t "$S" p
wait_for 10 '[[ $(count run_start "$R") -ge 2 && $(count step "$R") -gt ${paused_at:-0} ]]'
check "p again: the run resumed from step $paused_at" 'grep -q "\"resumed_from_step\":$paused_at" "$R/telemetry.jsonl"'
check "its output goes to train.log under anetrain's first line" '[[ "$(head -1 "$R/train.log")" == "# anetrain train output"* ]]'

tmux send-keys -t "$S" r
wait_for 15 '[[ $(count run_start "$R") -ge 3 ]]'
check "r: paused and resumed from the new checkpoint ($(count run_end "$R") ends, $(count run_start "$R") starts)" '[[ $(count run_end "$R") -eq 2 && $(count run_start "$R") -eq 3 ]]'

wait_for 5 '[[ $(count step "$R") -gt $(($(grep -o "\"resumed_from_step\":[0-9]*" "$R/telemetry.jsonl" | tail -1 | cut -d: -f2) + 1)) ]]'
tmux send-keys -t "$S" q
wait_for 3 '[[ "$(pane)" == *"s stops it"* ]]'
check "q with a trainer the dashboard started asks first" '[[ "$(pane)" == *"s stops it"* ]] && tmux has-session -t "$S" 2>/dev/null'
tmux send-keys -t "$S" s
wait_for 10 '! tmux has-session -t "$S" 2>/dev/null'
check "s: the trainer checkpointed and stopped, the dashboard quit" '! tmux has-session -t "$S" 2>/dev/null && [[ $(count run_end "$R") -eq 3 && "$(tail -1 "$R/telemetry.jsonl")" == *"paused"* ]]'

# ---- --train: the dashboard starts the run ----
R2=$W/run2
# The trainer gets the words after --train as given, even a first option's value CLI11 reads
# itself ("++" ends a subcommand there): ARGS with its sample prompt first, as "++".
TARGS=(--sample-prompt ++ "${ARGS[@]:0:${#ARGS[@]}-2}" --steps 40 --out "$R2")
tmux new-session -d -s "$S" -x 120 -y 40 "$(printf '%q ' "$BIN" dashboard --tui --train "${TARGS[@]}")"
wait_for 20 '[[ "$(tail -1 "$R2/telemetry.jsonl" 2>/dev/null)" == *"\"status\":\"done\""* ]]'
check "--train: the run completed" '[[ "$(tail -1 "$R2/telemetry.jsonl" 2>/dev/null)" == *"\"status\":\"done\""* ]]'
wait_for 3 '[[ "$(pane)" == *"trainer exited (status 0)"* ]]'
check "the pane logs the end and the trainer's exit" '[[ "$(pane)" == *"ended at step 40: done"* && "$(pane)" == *"trainer exited (status 0)"* ]]'
check "its output is in run2/train.log" 'grep -q "anetrain train" "$R2/train.log" && [[ $(wc -l < "$R2/train.log") -ge 3 ]]'
check "the trainer got the words after --train verbatim" '[[ "$(sed -n 2p "$R2/train.log")" == *"(Unix time): anetrain train ${TARGS[*]}" ]]'
tmux send-keys -t "$S" q
wait_for 3 '! tmux has-session -t "$S" 2>/dev/null'
check "q quits at once when its trainer has ended" '! tmux has-session -t "$S" 2>/dev/null'
err=$("$BIN" dashboard --tui --train --steps 5 2>&1 </dev/null); rc=$?
check "--train without a terminal is refused" '[[ $rc -ne 0 && "$err" == *"terminal"* ]]'
tmux kill-server 2>/dev/null
[[ $fails -eq 0 ]]
