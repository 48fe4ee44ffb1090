# Malformed training data through `anetrain train`: every case must exit with status 1 (a handled
# error: not a crash, not a signal, not training on garbage) and say what is wrong.
#  * token id ≥ the model's vocabulary (raw uint16 shard, anetrain 4-byte shard, validation shard):
#    the message names the shard path and the byte offset of the bad id;
#  * a shard shorter than seq+1 tokens (and the boundary: exactly seq+1 tokens trains fine);
#  * an odd-length raw uint16 file; anetrain shards with a bad magic, a truncated header, a wrong
#    version, id width 3, or fewer ids than the header claims; a missing file;
#  * an unknown --backend: the message lists the backends (cpu, ref).
# Also: a well-formed anetrain shard (id width 4) trains, and gives the same losses as the same ids
# in a raw uint16 shard.
#
# Run: /usr/bin/python3 tests/train/test_bad_data.py --anetrain BIN --assets DIR --workdir DIR
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_shards as ms  # noqa: E402
from make_shards import check, fail  # noqa: E402

SEQ = 32
VOCAB = 512


def base_args(model, out):
    return ["--model", model, "--seq", str(SEQ), "--batch", "2", "--steps", "2", "--threads", "2",
            "--warmup", "1", "--out", out]


def found(want, text):
    """A number must appear as a whole number (so "20" does not match "2048"); other strings as is."""
    if want.isdigit():
        return re.search(r"(?<![0-9])%s(?![0-9])" % want, text) is not None
    return want in text


class Cases:
    def __init__(self, a, model):
        self.a, self.model, self.n, self.fails, self.notes = a, model, 0, [], []

    def expect_error(self, what, data_args, want=(), soft=(), extra=()):
        """train must exit 1; its stderr must contain every string in want (and, ideally, soft)."""
        self.n += 1
        out = os.path.join(self.a.workdir, "run_%02d" % self.n)
        ms.rmtree(out)
        r = ms.run([self.a.anetrain, "train"] + base_args(self.model, out) + list(data_args) + list(extra),
                   timeout=120)
        msg = (r.err.strip() or r.out.strip()).replace("\n", " | ")
        if r.returncode != 1:
            self.fails.append("%s: exit status %d (want 1); output: %s %s" % (what, r.returncode, r.out[-500:], r.err[-500:]))
            print("FAIL %s: exit %d" % (what, r.returncode))
        else:
            missing = [w for w in want if not found(w, r.err)]
            if missing:
                self.fails.append("%s: stderr lacks %r: %s" % (what, missing, msg))
                print("FAIL %s: stderr lacks %r: %s" % (what, missing, msg))
            else:
                print("ok   %s: %s" % (what, msg[:300]))
            miss_soft = [w for w in soft if not found(w, r.err)]
            if miss_soft:
                self.notes.append("%s: message does not contain %r: %s" % (what, miss_soft, msg))
        ms.rmtree(out)
        return r

    def expect_ok(self, what, data_args, extra=()):
        self.n += 1
        out = os.path.join(self.a.workdir, "run_%02d" % self.n)
        ms.rmtree(out)
        r = ms.run([self.a.anetrain, "train"] + base_args(self.model, out) + list(data_args) + list(extra),
                   timeout=120)
        if r.returncode != 0:
            self.fails.append("%s: exit %d (want 0): %s" % (what, r.returncode, r.err[-1000:]))
            print("FAIL %s: exit %d: %s" % (what, r.returncode, r.err.strip()[-300:]))
            return None
        losses = [e["loss"] for e in ms.step_events(ms.telemetry(out))]
        print("ok   %s: trains (losses %s)" % (what, losses))
        ms.rmtree(out)
        return losses


def main():
    a = ms.common_args(None, "train_bad_data").parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    w = a.workdir

    def body():
        model = ms.write_config(os.path.join(w, "v512.json"), vocab_size=VOCAB)
        rng = np.random.default_rng(3)
        good = rng.integers(2, VOCAB, 4000)
        good[0] = 1
        c = Cases(a, model)

        p_good = os.path.join(w, "good.bin")
        ms.write_u16_shard(p_good, good)
        p_good_ant = os.path.join(w, "good.ants")
        ms.write_anetrain_shard(p_good_ant, good, id_width=4, vocab_size=VOCAB)
        l_raw = c.expect_ok("valid raw uint16 shard", ["--data", p_good])
        l_ant = c.expect_ok("valid anetrain shard (id width 4)", ["--data", p_good_ant])
        if l_raw is not None and l_ant is not None and l_raw != l_ant:
            c.fails.append("anetrain-format shard gives losses %s, raw shard of the same ids %s" % (l_ant, l_raw))

        # Token ≥ vocab, raw uint16: id at index 2345 → byte offset 4690.
        bad = good.copy()
        bad[2345] = VOCAB + 7
        p = os.path.join(w, "bad_token.bin")
        ms.write_u16_shard(p, bad)
        c.expect_error("raw shard, token %d ≥ vocab %d at byte 4690" % (VOCAB + 7, VOCAB), ["--data", p_good, p],
                       want=[p, "4690"])
        # Token ≥ vocab, anetrain 4-byte ids: index 1000 → byte 64 + 4000 = 4064.
        bad = good.copy()
        bad[1000] = 70000
        p = os.path.join(w, "bad_token.ants")
        ms.write_anetrain_shard(p, bad, id_width=4, vocab_size=VOCAB)
        c.expect_error("anetrain shard, token 70000 at byte 4064", ["--data", p], want=[p, "4064"])
        # ... in the validation shard: index 10 → byte 20.
        bad = good[:500].copy()
        bad[10] = 65535
        p = os.path.join(w, "bad_val.bin")
        ms.write_u16_shard(p, bad)
        c.expect_error("validation shard, token 65535 at byte 20", ["--data", p_good, "--val-data", p],
                       want=[p, "20"])
        # ... with --compact-vocab too (the check must not be skipped by compaction).
        bad = good.copy()
        bad[3999] = VOCAB
        p = os.path.join(w, "bad_last.bin")
        ms.write_u16_shard(p, bad)
        c.expect_error("token = vocab as the last id (byte 7998), --compact-vocab", ["--data", p],
                       want=[p, "7998"], extra=["--compact-vocab"])

        # Too short: seq tokens (need seq+1); exactly seq+1 trains.
        p = os.path.join(w, "short.bin")
        ms.write_u16_shard(p, good[:SEQ])
        c.expect_error("shard of %d tokens < seq+1" % SEQ, ["--data", p], soft=[p])
        p1 = os.path.join(w, "exact.bin")
        ms.write_u16_shard(p1, good[:SEQ + 1])
        c.expect_ok("shard of exactly seq+1 = %d tokens" % (SEQ + 1), ["--data", p1])
        p = os.path.join(w, "empty.bin")
        open(p, "wb").close()
        c.expect_error("empty shard", ["--data", p], soft=[p])
        p = os.path.join(w, "short.ants")
        ms.write_anetrain_shard(p, good[:10], id_width=4, vocab_size=VOCAB)
        c.expect_error("anetrain shard of 10 tokens", ["--data", p], soft=[p])
        p = os.path.join(w, "short_val.bin")
        ms.write_u16_shard(p, good[:5])
        c.expect_error("validation shard of 5 tokens", ["--data", p_good, "--val-data", p], soft=[p])

        # Odd length raw file.
        p = os.path.join(w, "odd.bin")
        with open(p, "wb") as f:
            f.write(good.astype("<u2").tobytes() + b"\x01")
        c.expect_error("odd-length raw uint16 file", ["--data", p], want=[p])

        # anetrain header problems.
        body_bytes = good.astype("<u4").tobytes()
        def write(name, blob):
            q = os.path.join(w, name)
            with open(q, "wb") as f:
                f.write(blob)
            return q
        hdr = ms.anetrain_shard_header(len(good), 4, VOCAB)
        p = write("badmagic.ants", b"ANTSHARQ" + hdr[8:] + body_bytes)
        c.expect_error("anetrain shard with bad magic 'ANTSHARQ'", ["--data", p], soft=[p])
        p = write("trunc_hdr.ants", hdr[:30])
        c.expect_error("anetrain shard truncated inside its 64-byte header", ["--data", p], want=[p])
        p = write("magic_only.ants", b"ANTSHARD")
        c.expect_error("anetrain shard of only its magic", ["--data", p], want=[p])
        p = write("version2.ants", ms.anetrain_shard_header(len(good), 4, VOCAB, version=2) + body_bytes)
        c.expect_error("anetrain shard version 2", ["--data", p], want=[p])
        p = write("width3.ants", ms.anetrain_shard_header(len(good), 3, VOCAB) + body_bytes)
        c.expect_error("anetrain shard id width 3", ["--data", p], want=[p])
        p = write("trunc_data.ants", hdr + body_bytes[:-4 * 100])
        c.expect_error("anetrain shard with 100 ids fewer than its header claims", ["--data", p], want=[p])
        p = os.path.join(w, "does-not-exist.bin")
        c.expect_error("missing shard file", ["--data", p], want=[p])

        # Unknown backend.
        c.expect_error("unknown --backend", ["--data", p_good], want=["cpu", "ref"], extra=["--backend", "nosuch"])

        print("%d cases run" % c.n)
        for n in c.notes:
            print("NOTE " + n)
        if c.fails:
            fail("%d of %d cases failed:\n  %s" % (len(c.fails), c.n, "\n  ".join(c.fails)))
        for f in os.listdir(w):
            if f.endswith((".bin", ".ants")):
                os.remove(os.path.join(w, f))

    ms.run_main("test_bad_data", body, a.anetrain)


if __name__ == "__main__":
    main()
