#!/usr/bin/env bash
# `anetrain generate` through the real CLI: llama2.c's golden greedy story for stories260K,
# stdout = prompt + generated text + "\n", seeded sampling reproducible, --chat on a Qwen3-vocab
# model, --chat refused for a vocabulary without ChatML markers. Usage: generate_cli.sh BIN ASSETS WORKDIR
set -u
BIN=$1 ASSETS=$2 W=$3
rm -rf "$W" && mkdir -p "$W"
fails=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi; }
M=$ASSETS/llama2c/stories260K.bin
Z=$ASSETS/llama2c/tok512.bin

out=$("$BIN" generate "$M" -z "$Z" -t 0 -n 60 -i "" 2>/dev/null)
check "greedy stories260K is llama2.c's golden story" '[[ "$out" == "Once upon a time, there was a little girl named Lily. She loved to play outside in the park."* ]]'
"$BIN" generate "$M" -z "$Z" -t 0 -n 20 -i "Once upon a time" > "$W/a.txt" 2>/dev/null
check "stdout starts with the prompt and ends with a newline" '[[ "$(head -c 16 "$W/a.txt")" == "Once upon a time" && "$(tail -c 1 "$W/a.txt" | od -An -c | tr -d " ")" == "\n" ]]'
a=$("$BIN" generate "$M" -z "$Z" -t 0.9 -p 0.9 -k 40 -s 7 -n 40 -i "One day" 2>/dev/null)
b=$("$BIN" generate "$M" -z "$Z" -t 0.9 -p 0.9 -k 40 -s 7 -n 40 -i "One day" 2>/dev/null)
c=$("$BIN" generate "$M" -z "$Z" -t 0.9 -p 0.9 -k 40 -s 8 -n 40 -i "One day" 2>/dev/null)
check "same seed, same sample" '[[ "$a" == "$b" ]]'
check "another seed, another sample" '[[ "$a" != "$c" ]]'
err=$("$BIN" generate "$M" -z "$Z" --chat --template chatml -i hi 2>&1 >/dev/null); rc=$?
check "--chat --template chatml refused without ChatML tokens" '[[ $rc -eq 1 && "$err" == *"<|im_start|>"* ]]'
err=$("$BIN" generate "$M" -z "$Z" --chat -i hi -n 4 2>&1 >/dev/null); rc=$?
check "--chat picks the plain template for tok512, as prepare --chat does" '[[ $rc -eq 0 && "$err" == *"chat template plain"* ]]'
err=$("$BIN" generate "$M" -z "$Z" --chat --no-think -i hi 2>&1 >/dev/null); rc=$?
check "--no-think is refused outside ChatML" '[[ $rc -eq 1 && "$err" == *"--no-think is ChatML"* ]]'
err=$("$BIN" generate "$M" -z "$Z" --system "Be brief." -i hi 2>&1 >/dev/null); rc=$?
check "--system without --chat is refused, not ignored" '[[ $rc -eq 1 && "$err" == *"go with --chat"* ]]'
cat > "$W/qwen_tiny.json" <<'JSON'
{"arch": "qwen3", "dim": 16, "n_layers": 1, "n_heads": 2, "n_kv_heads": 1, "head_dim": 8, "hidden_dim": 32,
 "vocab_size": 151936, "max_seq_len": 128, "rope_theta": 1000000.0, "rope_style": "half", "norm_eps": 1e-6,
 "qk_norm": true, "tied_embeddings": true, "residual_scale": 1.0}
JSON
out=$("$BIN" generate "$W/qwen_tiny.json" -z "$ASSETS/hf/qwen3/tokenizer.json" --chat --system "Be brief." -i "Hello there" -n 8 -t 0 2>"$W/err.txt"); rc=$?
check "--chat with the Qwen3 tokenizer runs (random weights)" '[[ $rc -eq 0 && "$out" == "Hello there"* ]]'
out=$("$BIN" generate "$W/qwen_tiny.json" -z "$ASSETS/hf/qwen3/tokenizer.json" --chat --no-think -i "Hello there" -n 8 -t 0 2>"$W/err2.txt"); rc=$?
check "--chat --no-think with the Qwen3 tokenizer: ChatML from its tokenizer_config.json" '[[ $rc -eq 0 && "$out" == "Hello there"* ]] && grep -q "chat template chatml (the chat_template of" "$W/err2.txt"'
check "timing goes to stderr" 'grep -q "tok/s" "$W/err.txt"'
# A GGUF carries its vocabulary: generate uses it with no -z, and -z accepts the GGUF file itself.
"$BIN" convert "$M" "$W/s.gguf" -z "$Z" >/dev/null 2>&1
gold=$("$BIN" generate "$M" -z "$Z" -t 0 -n 60 -i "Once upon a time" 2>/dev/null)
out=$("$BIN" generate "$W/s.gguf" -t 0 -n 60 -i "Once upon a time" 2>/dev/null)
check "generate s.gguf uses the tokenizer inside it" '[[ -n "$out" && "$out" == "$gold" ]]'
out=$("$BIN" generate "$M" -z "$W/s.gguf" -t 0 -n 60 -i "Once upon a time" 2>/dev/null)
check "-z s.gguf reads the GGUF's vocabulary" '[[ "$out" == "$gold" ]]'
"$BIN" convert "$M" "$W/bare.gguf" >/dev/null 2>&1
err=$("$BIN" generate "$M" -z "$W/bare.gguf" -t 0 -n 5 -i "Once" 2>&1 >/dev/null); rc=$?
check "-z a GGUF without a vocabulary names the file and the missing key" '[[ $rc -eq 1 && "$err" == *bare.gguf* && "$err" == *tokenizer.ggml.tokens* ]]'
# Prompt processing: --ids reports the prompt's rate, and bench generate --prompt-tokens reads a
# llama-bench peer's "| ppN | rate ± sd |" row from its stdout (a stand-in printing one here).
"$BIN" generate "$W/s.gguf" --ids -i "1 2 3 4 5 6 7" -n 2 -t 0 >/dev/null 2>"$W/ids_err.txt"
check "generate --ids reports the prompt's rate" 'grep -q "^prefill 7 tokens: [0-9.]* tok/s; decode 2 tokens" "$W/ids_err.txt"'
# bench generate starts the program itself (/proc/self/exe), which qemu-user cannot do for an
# emulated binary (no binfmt handler): test_arm64.sh's passes set ANETRAIN_QEMU_CPU and skip it.
if [[ -n ${ANETRAIN_QEMU_CPU:-} ]]; then
  echo "skip bench generate --prompt-tokens: under qemu-aarch64 the program cannot start itself"
else
  out=$("$BIN" bench generate "$W/s.gguf" --prompt-tokens 20 -n 0 --rounds 1 --threads 1 \
    --peer "printf '| pp{prompt_tokens} | 250.0 ± 1.0 |\\n'" 2>&1); rc=$?
  check "bench generate --prompt-tokens compares prompt rates with a llama-bench row" \
    '[[ $rc -eq 0 && "$out" == *"median prompt tokens/s"* && "$out" == *"peer             250.0 tok/s"* && "$out" =~ anetrain\ auto\ +[0-9.]+\ tok/s\ =\ [0-9.]+x ]]'
fi
out=$("$BIN" bench generate "$W/s.gguf" --prompt-tokens 20 -n 0 --rounds 1 --threads 1 --peer "printf 'nothing\\n'" 2>&1); rc=$?
check "a peer without a prompt rate is an error" '[[ $rc -ne 0 && "$out" == *"printed no prompt tokens/s"* ]]'
if [[ $fails -ne 0 ]]; then echo "$fails generate checks failed"; exit 1; fi
echo "all generate checks passed"
