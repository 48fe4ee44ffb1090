# Llama2cTokenizer vs python3-sentencepiece on the Llama 2 vocabulary: ids must agree exactly
# (with and without BOS/EOS), and decode(encode(x)) must give x back, on corpus lines, hand-made
# edge cases and seeded random strings. Run: /usr/bin/python3 sp_parity.py --anetrain BIN --assets DIR
import argparse
import gzip
import json
import os
import random
import subprocess
import sys

import sentencepiece as spm

EDGE = [
    "", " ", "  ", "   ", "a", " a", "a ", "  a  ", "a  b", "a   b    c", "\n", "\n\n", "a\nb", " \n ",
    "line one\nline two\n", "\t", "a\tb", "\t\tindented", "\r\n", "x\ry", "12345", "3.14159 and 2,718",
    "1999-12-31", "café naïve résumé", "Ünïcödé", "ǅ ǈ", "e\u0301", "日本語のテキスト", "中文 文本",
    "한국어", "😀", "👍🏽 family: 👨‍👩‍👧", "a😀b", "\x00", "x\x00y", "\x01\x02\x7f", "\u00a0nbsp",
    "\u200bzero width", "\ufeffbom", "\ufffd", "\U0010ffff", "\u2028", "<s>", "</s>", "<unk>",
    "\n<s>\n", "<0x41>", "<0x0A>", " ⁇ ", "Hello, World!", "HELLO world", "  leading", "trailing  ",
    "many     spaces     here", " " * 40, "x" + " " * 17 + "y", "- - - - -", "....", "!!!???",
    "it's don't won't", "\"quoted\"", "http://example.com/a?b=c", "a_b_c", "CamelCaseWord",
    "Ελληνικά", "Русский текст", "עברית", "العربية", "हिन्दी", "ไทย", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
]

# Input whose '▁' sentencepiece reads as a space: ids must agree, decode cannot give '▁' back.
NOT_INVERTIBLE = ["▁", "a▁b", "▁▁x", "▁ ▁"]

# Malformed UTF-8 goes through the plain (non-JSON) mode as raw bytes: ids only.
BAD_UTF8 = [b"\xff", b"a\xffb", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe6\x97",
            b"a\xe6\x97", b"\xf0\x9f\x98", b"\x80\x80 x", b"\xf8\x88\x80\x80\x80", b"ok \xe2\x96"]


def corpus_lines(path, want):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    step = max(1, len(lines) // want)
    picked = lines[::step][:want]
    # A few multi-line slices keep newlines inside one string.
    picked += ["\n".join(lines[i:i + 5]) for i in range(0, len(lines), len(lines) // 20)][:20]
    return picked, lines


def random_strings(n, seed=1234):
    pool = list("abcdeXYZ019 ,.!?'\"-\t\n") + [" ", "  ", "é", "ß", "ñ", "中", "語", "の", "😀", "\u0301",
                                                 "\x00", "\x7f", "\u00a0", "\U0001f9ea", "ǅ", "\ufffd"]
    rng = random.Random(seed)
    return ["".join(rng.choice(pool) for _ in range(rng.randint(0, 40))) for _ in range(n)]


def run(cmd, data):
    p = subprocess.run(cmd, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        sys.exit("sp_parity: %s failed (%d): %s" % (" ".join(cmd), p.returncode, p.stderr.decode(errors="replace")))
    return p.stdout.decode("utf-8").split("\n")[:-1]


def ids_of(lines):
    return [[int(t) for t in line.split()] for line in lines]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--anetrain", required=True)
    ap.add_argument("--assets", required=True)
    a = ap.parse_args()
    sp = spm.SentencePieceProcessor(model_file=os.path.join(a.assets, "llama2c", "tokenizer.model"))
    tok = os.path.join(a.assets, "llama2c", "tokenizer.bin")
    corp = os.path.join(a.assets, "corpora")

    wp, wp_all = corpus_lines(os.path.join(corp, "war-and-peace.txt.gz"), 1200)
    br, _ = corpus_lines(os.path.join(corp, "brown-plain.txt.gz"), 1200)
    long_line = " ".join(wp_all[1000:4000])  # ~150 KB in one string
    texts = wp + br + EDGE + random_strings(400) + [long_line, "x" * 20000, "日本" * 5000, " " * 3000]
    texts += NOT_INVERTIBLE
    print("sp_parity: %d texts (%d war-and-peace, %d brown), longest %d chars" %
          (len(texts), len(wp), len(br), max(map(len, texts))))

    enc = [a.anetrain, "tokenizer", "encode", "-z", tok, "--json"]
    payload = "".join(json.dumps(t) + "\n" for t in texts).encode()
    ours = ids_of(run(enc, payload))
    ours_be = ids_of(run(enc + ["--bos", "--eos"], payload))
    failures = 0
    for t, got, got_be in zip(texts, ours, ours_be):
        want = sp.encode(t)
        want_be = sp.encode(t, add_bos=True, add_eos=True)
        if got != want or got_be != want_be:
            failures += 1
            if failures <= 10:
                print("MISMATCH %r\n  sp   %s\n  ours %s" % (t[:200], want[:40], got[:40]))
    if len(ours) != len(texts):
        failures += 1
        print("encode printed %d lines for %d texts" % (len(ours), len(texts)))

    # Round trip through our decoder, and agreement with sentencepiece's own decoder.
    dec = [a.anetrain, "tokenizer", "decode", "-z", tok, "--json"]
    back = [json.loads(s) for s in run(dec, "".join(" ".join(map(str, i)) + "\n" for i in ours_be).encode())]
    invertible = len(texts) - len(NOT_INVERTIBLE)
    for k, (t, ids, d) in enumerate(zip(texts, ours_be, back)):
        want = t if k < invertible else sp.decode(ids)
        if d != want or d != sp.decode(ids):
            failures += 1
            if failures <= 20:
                print("ROUND TRIP %r -> %r (sp decodes to %r)" % (t[:200], d[:200], sp.decode(ids)[:200]))

    raw = run([a.anetrain, "tokenizer", "encode", "-z", tok], b"".join(b + b"\n" for b in BAD_UTF8))
    for b, got in zip(BAD_UTF8, ids_of(raw)):
        if got != sp.encode(b):
            failures += 1
            print("MISMATCH (malformed UTF-8) %r\n  sp   %s\n  ours %s" % (b, sp.encode(b), got))

    total = 2 * len(texts) + len(BAD_UTF8)
    if failures:
        sys.exit("sp_parity: %d failures" % failures)
    print("sp_parity: OK — %d encodings identical to sentencepiece, %d round trips exact" % (total, len(texts)))


if __name__ == "__main__":
    main()
