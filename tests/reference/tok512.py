# Python re-implementation of the llama2.c tokenizer.bin encoder/decoder (BPE by merge score).
# Used to make real token ids for the stories260K parity case.
# Self-test: /usr/bin/python3 tests/reference/tok512.py [path/to/tok512.bin]
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PATH = os.path.join(HERE, "..", "..", "..", "shared", "assets", "llama2c", "tok512.bin")
BOS, EOS = 1, 2


class Tokenizer:
    def __init__(self, path=DEFAULT_PATH):
        with open(path, "rb") as f:
            blob = f.read()
        (self.max_token_length,) = struct.unpack_from("<i", blob, 0)
        off = 4
        self.pieces, self.scores = [], []
        while off < len(blob):
            score, n = struct.unpack_from("<fi", blob, off)
            off += 8
            self.pieces.append(blob[off:off + n])
            self.scores.append(score)
            off += n
        # run.c resolves a string with bsearch over a sorted copy; with
        # duplicates that would be ambiguous, so insist there are none.
        self.ids = {}
        for i, p in enumerate(self.pieces):
            if p in self.ids:
                raise ValueError("duplicate piece %r (ids %d, %d)" % (p, self.ids[p], i))
            self.ids[p] = i

    @property
    def vocab_size(self):
        return len(self.pieces)

    def encode(self, text, bos=True, eos=False):
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        # As in run.c, BOS and the dummy prefix sit in the same list the merges
        # scan, so " " can merge with the first word.
        work = [BOS] if bos else []
        # SentencePiece's add_dummy_prefix: a leading space, only for non-empty text.
        if data:
            work.append(self.ids[b" "])
        i = 0
        while i < len(data):
            # One UTF-8 codepoint = a lead byte plus its 0b10xxxxxx continuation
            # bytes (run.c caps this at 4 bytes).
            j = i + 1
            while j < len(data) and (data[j] & 0xC0) == 0x80 and j - i < 4:
                j += 1
            cp = data[i:j]
            if cp in self.ids:
                work.append(self.ids[cp])
            else:
                # byte fallback: ids 0..2 are <unk>, <s>, </s>, so byte b is b + 3
                work.extend(b + 3 for b in cp)
            i = j
        while True:
            best, best_id, best_i = None, -1, -1
            for k in range(len(work) - 1):
                m = self.ids.get(self.pieces[work[k]] + self.pieces[work[k + 1]])
                # strict '>' keeps the first pair on ties, as run.c does
                if m is not None and (best is None or self.scores[m] > best):
                    best, best_id, best_i = self.scores[m], m, k
            if best_i < 0:
                break
            work[best_i:best_i + 2] = [best_id]
        if eos:
            work.append(EOS)
        return work

    def decode_piece(self, prev, tok):
        p = self.pieces[tok]
        # After BOS, SentencePiece strips the dummy-prefix space.
        if prev == BOS and p.startswith(b" "):
            p = p[1:]
        if len(p) == 6 and p.startswith(b"<0x") and p.endswith(b">"):
            try:
                return bytes([int(p[3:5], 16)])
            except ValueError:
                pass
        return p

    def decode(self, toks, prev=None):
        """Concatenate pieces of toks (with prev as the token before toks[0])."""
        out = b""
        for t in toks:
            out += self.decode_piece(prev, t)
            prev = t
        return out.decode("utf-8", errors="replace")


def _selftest(path):
    tok = Tokenizer(path)
    assert tok.vocab_size == 512, tok.vocab_size
    assert tok.pieces[BOS] == b"\n<s>\n" and tok.pieces[EOS] == b"\n</s>\n"
    got = tok.encode("Once upon a time", bos=True)
    assert got == [1, 403, 407, 261, 378], got
    assert tok.encode("", bos=True) == [1]
    assert tok.encode("", bos=False) == []
    # Non-ASCII falls back to bytes and must round-trip through decode.
    s = "Lily said: \u00e9t\u00e9 \u2603!"
    ids = tok.encode(s, bos=True)
    assert tok.decode(ids[1:], prev=BOS) == s, tok.decode(ids[1:], prev=BOS)
    sent = "Once upon a time, there was a little girl named Lily."
    ids = tok.encode(sent)
    assert tok.decode(ids[1:], prev=BOS) == sent
    print("tok512 self-test OK:", got, "|", len(ids), "ids for", repr(sent))


if __name__ == "__main__":
    _selftest(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_PATH)
