# Shared helpers for the `anetrain train` end-to-end tests: real-text token shards, the anetrain
# shard format, unigram entropies, and small process / telemetry / checkpoint utilities.
#
# Shards are cached in the work directory (keyed by corpus + tokenizer), so several tests can share
# one encoding pass. Run directly to build the War and Peace shards and print their statistics:
#   /usr/bin/python3 tests/train/make_shards.py --assets ../shared/assets --workdir DIR [--brown]
import argparse
import gzip
import hashlib
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_ASSETS = os.path.normpath(os.path.join(REPO, "..", "shared", "assets"))
DEFAULT_BIN = os.path.join(REPO, "build", "src", "anetrain")

BOS = 1
VAL_FRACTION = 0.05


class TestFailure(Exception):
    pass


def fail(msg):
    raise TestFailure(msg)


def check(cond, msg):
    if not cond:
        fail(msg)


def common_args(description, workdir_name):
    """argparse with the shared --anetrain/--assets/--workdir arguments (plus --keep)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--anetrain", default=DEFAULT_BIN)
    ap.add_argument("--assets", default=DEFAULT_ASSETS)
    ap.add_argument("--workdir", default=os.path.join(REPO, "build", "tests", "work", workdir_name))
    ap.add_argument("--keep", action="store_true", help="keep run directories after success")
    ap.add_argument("--backend", default="cpu", help="kernel backend the trainer runs on (cpu, ane-sim)")
    ap.add_argument("--precision", default=None, help="fp32 or bf16 (default: the trainer's own choice)")
    # CTest gives 1 to the runs it lets go beside each other on a 2-core machine (tests/CMakeLists.txt).
    ap.add_argument("--threads", type=int, default=2, help="the trainer's threads (default 2)")
    return ap


def precision_args(a):
    """--precision for the trainer when the test was given one."""
    return ["--precision", a.precision] if getattr(a, "precision", None) else []


def _mtime(path):
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def run_main(name, fn, anetrain=None):
    """Run fn(); print PASS/FAIL and exit with the right status. If the binary changes while the
    test runs (a rebuild in another shell), say so: results mixing two builds mean nothing."""
    t0 = time.time()
    m0 = _mtime(anetrain) if anetrain else None
    try:
        check(anetrain is None or m0 is not None, "no anetrain binary at %s" % anetrain)
        fn()
    except TestFailure as e:
        print("%s: FAIL: %s" % (name, e), flush=True)
        if anetrain and _mtime(anetrain) != m0:
            print("%s: WARNING: %s was rebuilt while the test ran; rerun it" % (name, anetrain), flush=True)
        sys.exit(1)
    print("%s: PASS (%.1f s)" % (name, time.time() - t0), flush=True)


# ---------------------------------------------------------------------------------------------
# Corpora → documents
# ---------------------------------------------------------------------------------------------

def war_and_peace_documents(assets):
    """The novel split into chapters; each document starts at its "CHAPTER ..." line."""
    with gzip.open(os.path.join(assets, "corpora", "war-and-peace.txt.gz"), "rt", encoding="utf-8") as f:
        text = f.read()
    starts = [m.start() for m in re.finditer(r"^CHAPTER [IVXLC]+", text, flags=re.M)]
    if not starts or starts[0] != 0:
        raise RuntimeError("war-and-peace.txt.gz does not start at a CHAPTER line")
    docs = [text[a:b].strip() for a, b in zip(starts, starts[1:] + [len(text)])]
    return [d for d in docs if d]


def brown_documents(assets, lines_per_doc=200):
    """Brown plain text has one sentence a line and no document marks; group fixed runs of lines."""
    with gzip.open(os.path.join(assets, "corpora", "brown-plain.txt.gz"), "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    return [" ".join(lines[i:i + lines_per_doc]) for i in range(0, len(lines), lines_per_doc)]


# ---------------------------------------------------------------------------------------------
# Shard writers / readers
# ---------------------------------------------------------------------------------------------

def write_u16_shard(path, ids):
    a = np.asarray(ids, dtype=np.int64)
    if a.size and (a.min() < 0 or a.max() > 0xFFFF):
        raise ValueError("ids do not fit uint16")
    tmp = path + ".part"
    a.astype("<u2").tofile(tmp)
    os.replace(tmp, path)


def read_u16_shard(path):
    return np.fromfile(path, dtype="<u2").astype(np.int64)


ANT_MAGIC = b"ANTSHARD"


def anetrain_shard_header(n_tokens, id_width=4, vocab_size=32000, fingerprint=0, magic=ANT_MAGIC, version=1):
    h = magic + struct.pack("<IIQIIQ", version, id_width, n_tokens, vocab_size, 0, fingerprint)
    return h + b"\0" * (64 - len(h))


def write_anetrain_shard(path, ids, id_width=4, vocab_size=32000, fingerprint=0):
    a = np.asarray(ids, dtype=np.int64)
    dt = {2: "<u2", 4: "<u4"}[id_width]
    with open(path + ".part", "wb") as f:
        f.write(anetrain_shard_header(len(a), id_width, vocab_size, fingerprint))
        f.write(a.astype(dt).tobytes())
    os.replace(path + ".part", path)


# ---------------------------------------------------------------------------------------------
# Encoding (cached)
# ---------------------------------------------------------------------------------------------

def _sha_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()[:16]


def encode_documents(docs, tokenizer_model):
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=tokenizer_model)
    out = []
    for ids in sp.encode(docs):
        out.append([BOS] + list(ids))
    return out


def make_corpus_shards(assets, workdir, corpus="war-and-peace", val_fraction=VAL_FRACTION):
    """Encode a corpus with the Llama 2 SentencePiece model into uint16 llama2.c shards.

    BOS=1 precedes every document; the last documents holding ~val_fraction of the tokens form the
    validation shard. Returns {"train": path, "val": path, "n_train": int, "n_val": int}. Cached."""
    tok = os.path.join(assets, "llama2c", "tokenizer.model")
    src = os.path.join(assets, "corpora", corpus + ".txt.gz")
    key = "%s-%s-%s-v%g" % (corpus, _sha_file(src), _sha_file(tok), val_fraction)
    d = os.path.join(workdir, "shards")
    os.makedirs(d, exist_ok=True)
    train, val, meta = (os.path.join(d, "%s.%s" % (key, s)) for s in ("train.bin", "val.bin", "json"))
    if os.path.exists(meta) and os.path.exists(train) and os.path.exists(val):
        with open(meta) as f:
            return json.load(f)
    docs = war_and_peace_documents(assets) if corpus == "war-and-peace" else brown_documents(assets)
    enc = encode_documents(docs, tok)
    total = sum(len(e) for e in enc)
    # Walk back from the end until the held-out documents reach val_fraction of all tokens.
    n_val_docs, acc = 0, 0
    while acc < val_fraction * total and n_val_docs < len(enc) - 1:
        n_val_docs += 1
        acc += len(enc[-n_val_docs])
    tr = [t for e in enc[:len(enc) - n_val_docs] for t in e]
    va = [t for e in enc[len(enc) - n_val_docs:] for t in e]
    write_u16_shard(train, tr)
    write_u16_shard(val, va)
    info = {"train": train, "val": val, "n_train": len(tr), "n_val": len(va), "n_docs": len(enc),
            "n_val_docs": n_val_docs, "corpus": corpus}
    with open(meta + ".part", "w") as f:
        json.dump(info, f)
    os.replace(meta + ".part", meta)
    return info


def prepared_war_and_peace(anetrain, assets, workdir, end):
    """Train and validation shards that `anetrain prepare` makes (tok512) of War and Peace's
    characters [40000, end): past the front matter; what the short ane-sim and report runs train on."""
    with gzip.open(os.path.join(assets, "corpora", "war-and-peace.txt.gz"), "rt", encoding="utf-8") as f:
        text = f.read(end)[40000:]
    src = os.path.join(workdir, "war-and-peace-part.txt")
    with open(src, "w", encoding="utf-8") as f:
        f.write(text)
    out = os.path.join(workdir, "shards")
    rmtree(out)
    run([anetrain, "prepare", src, "-z", os.path.join(assets, "llama2c", "tok512.bin"), "-o", out], check_rc=0)
    return os.path.join(out, "train_000.bin"), os.path.join(out, "val_000.bin")


def small_shard(workdir, n_tokens, assets, name="small"):
    """The first n_tokens of the War and Peace training shard as its own (cheap) shard."""
    info = make_corpus_shards(assets, workdir)
    path = os.path.join(workdir, "shards", "%s-%d.bin" % (name, n_tokens))
    if not os.path.exists(path):
        ids = read_u16_shard(info["train"])[:n_tokens]
        write_u16_shard(path, ids)
    return path


# ---------------------------------------------------------------------------------------------
# Unigram entropies
# ---------------------------------------------------------------------------------------------

def plain_entropy(ids):
    """−Σ p log p (nats) of the empirical token distribution of ids."""
    counts = np.bincount(np.asarray(ids, dtype=np.int64))
    counts = counts[counts > 0].astype(np.float64)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def unigram_cross_entropy(train_ids, val_ids, vocab_size=None):
    """Cross-entropy (nats/token) on val of the add-one-smoothed unigram model fit on train.

    The smoothing support is the vocabulary (vocab_size) or, if None, the union of ids seen."""
    train_ids = np.asarray(train_ids, dtype=np.int64)
    val_ids = np.asarray(val_ids, dtype=np.int64)
    size = int(max(train_ids.max(), val_ids.max())) + 1
    if vocab_size is not None:
        size = max(size, vocab_size)
    counts = np.bincount(train_ids, minlength=size).astype(np.float64)
    if vocab_size is None:
        support = np.union1d(np.unique(train_ids), np.unique(val_ids))
        counts = counts[support]
        idx = np.searchsorted(support, val_ids)
    else:
        idx = val_ids
    p = (counts + 1.0) / (counts.sum() + len(counts))
    return float(-np.log(p[idx]).mean())


def entropy_report(train_ids, val_ids, vocab_size=32000):
    both = np.concatenate([np.asarray(train_ids), np.asarray(val_ids)])
    return {
        "plain_train": plain_entropy(train_ids),
        "plain_val": plain_entropy(val_ids),
        "plain_all": plain_entropy(both),
        "xent_train_on_val_add1_vocab": unigram_cross_entropy(train_ids, val_ids, vocab_size),
        "xent_train_on_val_add1_seen": unigram_cross_entropy(train_ids, val_ids, None),
    }


# ---------------------------------------------------------------------------------------------
# Trainer helpers shared by the tests
# ---------------------------------------------------------------------------------------------

def write_config(path, **over):
    """A tiny llama-style model config JSON (fast on 2 cores)."""
    cfg = {"arch": "llama", "dim": 64, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "head_dim": 16,
           "hidden_dim": 128, "vocab_size": 32000, "max_seq_len": 256, "rope_theta": 10000.0,
           "rope_style": "interleaved", "norm_eps": 1e-5, "qk_norm": False, "tied_embeddings": True,
           "residual_scale": 1.0}
    cfg.update(over)
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)
    return path


def run(cmd, timeout=600, check_rc=None, env=None):
    """Run a command, capture output; optionally require an exit status."""
    t0 = time.time()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, env=env)
    r.wall = time.time() - t0
    r.out = r.stdout.decode("utf-8", "replace")
    r.err = r.stderr.decode("utf-8", "replace")
    if check_rc is not None and r.returncode != check_rc:
        fail("command exited %d (want %d): %s\n--- stdout ---\n%s\n--- stderr ---\n%s" %
             (r.returncode, check_rc, " ".join(cmd), r.out[-4000:], r.err[-4000:]))
    return r


def telemetry(run_dir):
    """Parsed telemetry.jsonl events. A torn final line (a writer killed mid-line) is skipped; any
    other malformed line is a failure."""
    path = os.path.join(run_dir, "telemetry.jsonl")
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        raw = f.read().decode("utf-8", "replace").split("\n")
    out = []
    for i, line in enumerate(raw):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            if i == len(raw) - 1:  # last line without newline: torn by SIGKILL
                continue
            fail("%s line %d is not JSON: %r" % (path, i + 1, line[:200]))
    return out


def step_events(events):
    return [e for e in events if e.get("event") == "step"]


def ckpt_dirs(run_dir):
    """Complete checkpoint dirs {step: path} (names step-NNNNNNNN without .tmp)."""
    d = os.path.join(run_dir, "ckpt")
    out = {}
    if not os.path.isdir(d):
        return out
    for name in os.listdir(d):
        m = re.fullmatch(r"step-(\d{8})", name)
        if m:
            out[int(m.group(1))] = os.path.join(d, name)
    return out


def inspect_ok(anetrain, path):
    r = run([anetrain, "inspect", path], timeout=120)
    return r.returncode == 0, (r.out + r.err).strip()


def export_tensors(anetrain, ckpt_or_run, outdir):
    """Export to HF safetensors and return {name: raw little-endian bytes} plus the config."""
    if os.path.exists(outdir):
        shutil.rmtree(outdir)
    run([anetrain, "export", ckpt_or_run, "-o", outdir], timeout=300, check_rc=0)
    st_path = os.path.join(outdir, "model.safetensors")
    check(os.path.exists(st_path), "export wrote no model.safetensors in %s" % outdir)
    with open(st_path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        check(info["dtype"] == "F32", "export: %s has dtype %s (want F32)" % (name, info["dtype"]))
        b, e = info["data_offsets"]
        tensors[name] = (tuple(info["shape"]), data[b:e])
    return tensors


def compare_tensors(a, b, what):
    """Bit-for-bit equality of two export_tensors() results; fail with the first difference."""
    check(sorted(a) == sorted(b), "%s: tensor names differ: %s vs %s" %
          (what, sorted(set(a) ^ set(b))[:5], ""))
    for name in sorted(a):
        sa, da = a[name]
        sb, db = b[name]
        check(sa == sb, "%s: %s shape %s vs %s" % (what, name, sa, sb))
        if da != db:
            x = np.frombuffer(da, "<f4")
            y = np.frombuffer(db, "<f4")
            diff = np.nonzero(x.view("<u4") != y.view("<u4"))[0]
            fail("%s: %s differs in %d of %d values (first at %d: %r vs %r, max |diff| %.3g)" %
                 (what, name, len(diff), len(x), diff[0], float(x[diff[0]]), float(y[diff[0]]),
                  float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64))))))


def all_finite(tensors):
    for name, (_, raw) in tensors.items():
        x = np.frombuffer(raw, "<f4")
        if not np.all(np.isfinite(x)):
            return False, name
    return True, None


def rmtree(path):
    if os.path.exists(path):
        shutil.rmtree(path, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--assets", default=DEFAULT_ASSETS)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--brown", action="store_true")
    a = ap.parse_args()
    for corpus in ["war-and-peace"] + (["brown-plain"] if a.brown else []):
        t0 = time.time()
        info = make_corpus_shards(a.assets, a.workdir, corpus)
        tr, va = read_u16_shard(info["train"]), read_u16_shard(info["val"])
        print("%s: %d docs (%d val), %d train + %d val tokens, %d distinct ids (%.1f s)" %
              (corpus, info["n_docs"], info["n_val_docs"], len(tr), len(va),
               len(np.union1d(np.unique(tr), np.unique(va))), time.time() - t0))
        for k, v in entropy_report(tr, va).items():
            print("  %-32s %.4f nats" % (k, v))


if __name__ == "__main__":
    main()
