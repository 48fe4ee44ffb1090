# A run folder stands on its own: the tokenizer a run was trained with is copied into it at the
# start (RUN/tokenizer/, named in run.json with its fingerprint), so `generate`, `export` and
# `convert` of the run, a step folder or a model.anck find it after the original file is gone; -z
# still wins; a resume keeps the copy; a run that fine-tunes a model file records it as
# "base_model"; a run given no --tokenizer takes the one its shards' prepare.json names.
#
# Run: /usr/bin/python3 tests/train/test_run_tokenizer.py --anetrain BIN --assets DIR --workdir DIR
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys

PROMPT = "Once upon a time"


class Failure(Exception):
    pass


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg, flush=True)
    if not cond:
        raise Failure(msg)


def run(a, *args, rc=0):
    cmd = [a.anetrain] + [str(x) for x in args]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    r.out, r.err = r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")
    if rc is not None and r.returncode != rc:
        raise Failure("exit %d (want %d): %s\n%s%s" % (r.returncode, rc, " ".join(cmd), r.out[-2000:], r.err[-2000:]))
    return r


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run_json(run_dir):
    with open(os.path.join(run_dir, "run.json")) as f:
        return json.load(f)


def greedy(a, model, *extra, rc=0):
    """Greedy text of 12 tokens after PROMPT (the generated part, the prompt stripped)."""
    r = run(a, "generate", model, "-i", PROMPT, "-n", 12, "--temperature", 0, "--threads", 2, *extra, rc=rc)
    return r if rc != 0 else r.out


def train(a, out, data, *extra):
    return run(a, "train", "--data", data, "--seq", 32, "--batch", 2, "--steps", 4, "--ckpt-every", 2, "--threads", 2,
               "--log-every", 0, "--precision", "fp32", "--out", out, *extra)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--anetrain", required=True)
    ap.add_argument("--assets", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    a.anetrain = os.path.abspath(a.anetrain)
    w = os.path.abspath(a.workdir)
    shutil.rmtree(w, ignore_errors=True)
    os.makedirs(w)
    tok512 = os.path.join(a.assets, "llama2c", "tok512.bin")
    base = os.path.abspath(os.path.join(a.assets, "llama2c", "stories260K.bin"))

    # The tokenizer the runs use is a temporary copy, deleted once they have started.
    tmp_tok_dir = os.path.join(w, "tmp_tok")
    os.makedirs(tmp_tok_dir)
    tmp_tok = os.path.join(tmp_tok_dir, "tokenizer.bin")
    shutil.copyfile(tok512, tmp_tok)
    text = os.path.join(w, "stories.txt")
    with open(text, "w") as f:
        for i in range(300):
            f.write("Once upon a time there was a little girl named Lily. She had %d red balls and a cat.\n" % i)
    data_dir = os.path.join(w, "data")
    run(a, "prepare", text, "-z", tmp_tok, "-o", data_dir, "--doc-per-line", "--val-frac", 0)
    data = os.path.join(data_dir, "train_000.bin")

    # A fine-tuning run given --tokenizer.
    run1 = os.path.join(w, "run1")
    train(a, run1, data, "--model", base, "--tokenizer", tmp_tok)
    j = run_json(run1)
    copy = os.path.join(run1, "tokenizer", "tokenizer.bin")
    check(j.get("tokenizer_copy") == "tokenizer/tokenizer.bin", "run.json names the copy: %r" % j.get("tokenizer_copy"))
    check(os.path.isfile(copy) and sha(copy) == sha(tok512), "the copy holds the tokenizer's bytes")
    fp = j.get("tokenizer_fingerprint", "")
    check(len(fp) == 16 and all(c in "0123456789abcdef" for c in fp), "run.json records the fingerprint %r" % fp)
    check(j.get("base_model") == base, "run.json records base_model %r" % j.get("base_model"))
    check(j.get("tokenizer") == tmp_tok, "the settings still name the tokenizer as given")

    # A run from a preset, given no --tokenizer: the shards' prepare.json names it.
    run2 = os.path.join(w, "run2")
    train(a, run2, data, "--model", "stories260k")
    j2 = run_json(run2)
    check(j2.get("tokenizer_copy") == "tokenizer/tokenizer.bin" and j2.get("tokenizer_fingerprint") == fp,
          "without --tokenizer, the one prepare.json names is copied (same fingerprint)")
    check("base_model" not in j2, "a run from a preset has no base_model")

    shutil.rmtree(tmp_tok_dir)
    with_z = greedy(a, run1, "-z", tok512)
    check(PROMPT in with_z and len(with_z.strip()) > len(PROMPT), "generate RUN -z TOK works: %r" % with_z.strip())
    for model in (run1, os.path.join(run1, "ckpt", "step-00000004"), os.path.join(run1, "ckpt", "step-00000004", "model.anck")):
        got = greedy(a, model)
        check(got == with_z, "generate %s without -z, original tokenizer deleted: same text as with -z"
              % os.path.relpath(model, w))
    check(greedy(a, run2) == greedy(a, run2, "-z", tok512), "generate RUN2 (tokenizer from prepare.json)")

    # -z wins over the run's copy: a tokenizer the model cannot use is refused, naming it.
    big = os.path.join(a.assets, "llama2c", "tokenizer.bin")
    r = greedy(a, run1, "-z", big, rc=None)
    check(r.returncode != 0 and big in r.err and "vocab size" in r.err,
          "-z TOKENIZER overrides the copy (the 32000-token file is refused for a 512-token model): %s"
          % r.err.strip().splitlines()[-1:])
    bad = os.path.join(w, "bad_tok.bin")
    with open(bad, "wb") as f:
        f.write(b"\x07\x00")
    r = greedy(a, run1, "-z", bad, rc=None)
    check(r.returncode != 0 and "bad_tok.bin" in r.err, "-z of a broken file is an error naming it")

    # export and convert to an HF folder carry the run's tokenizer.
    exp = os.path.join(w, "exp")
    run(a, "export", run1, "-o", exp)
    check(sha(os.path.join(exp, "tokenizer.bin")) == sha(tok512), "export RUN writes the run's tokenizer.bin")
    check(greedy(a, exp) == with_z, "generate from the exported folder, no -z: same text")
    hf = os.path.join(w, "hf")
    run(a, "convert", os.path.join(run1, "ckpt", "step-00000004"), hf)
    check(sha(os.path.join(hf, "tokenizer.bin")) == sha(tok512), "convert STEP_DIR HF writes the run's tokenizer.bin")
    gguf = os.path.join(w, "m.gguf")
    run(a, "convert", run1, gguf)
    check(greedy(a, gguf) == with_z, "convert RUN m.gguf embeds the run's tokenizer: same text, no -z")

    # A resume keeps the copy (the original is gone by now).
    run(a, "train", "--resume", run1, "--steps", 6, "--threads", 2, "--log-every", 0)
    j = run_json(run1)
    check(j.get("tokenizer_copy") == "tokenizer/tokenizer.bin" and j.get("tokenizer_fingerprint") == fp and
          sha(copy) == sha(tok512) and j.get("base_model") == base and j["checkpoints"][-1] == 6,
          "resume keeps the copy, its fingerprint and base_model")
    check(greedy(a, run1) == greedy(a, run1, "-z", tok512), "generate after the resume, no -z")

    # The copy gone: a clear error, not another tokenizer found by the search.
    os.remove(copy)
    r = greedy(a, run1, rc=None)
    check(r.returncode != 0 and "copy of its tokenizer is missing" in r.err and "-z" in r.err,
          "a missing copy is an error with a hint: %s" % r.err.strip().splitlines()[:1])
    print("run tokenizer: all checks passed")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        print("FAIL: %s" % e)
        sys.exit(1)
