"""anetrain from Python, over the engine's C API (include/anetrain.h):

    import anetrain
    m = anetrain.load("stories260K.bin")          # any format anetrain reads; tokenizer found next to it
    print(m.generate("Once upon a time", n=64, temperature=0))
    logits, loss = m.forward(tokens, targets)      # numpy in, numpy out (the engine writes into the array)

    t = anetrain.Trainer(out="runs/a", model="stories260k", data=["data/train_000.bin"], steps=200)
    for _ in range(200):
        loss = t.step()
    t.save()

    y = anetrain.mil_run("woFwd.mil", x, backend="ane-sim")   # a MIL program: numpy fp32 in and out

Errors are raised as anetrain.Error with the engine's message. Each Model, Trainer and MilProgram
may be shared between threads: its calls run one at a time (a lock per object); for calls that
run in parallel, give each thread its own object.
"""
import ctypes
import json
import os

import numpy as np

from ._lib import ERR_BUFFER, Closable, Error, ModelInfo, Sampling, TOKEN_CALLBACK, call, lib, serialized
from ._mil import MilProgram, mil_run

__all__ = ["Error", "MilProgram", "Model", "Trainer", "load", "mil_run", "version", "set_threads"]


def version():
    """The engine's version and commit, e.g. '0.1.0 (4e950af0bd92)'."""
    return lib.anetrain_version().decode()


def set_threads(n):
    """Threads the engine uses (0 = all cores); process-wide."""
    call(lib.anetrain_set_threads, int(n))


def _batch(tokens, targets):
    """tokens (B, T) or (T,) and targets of the same size (or None) as int32 (B, T) arrays."""
    t = _int32_array(tokens, "tokens")
    if t.ndim == 1:
        t = t[None, :]
    if t.ndim != 2:
        raise ValueError("tokens must be (B, T) or (T,)")
    if targets is None:
        return t, None
    if np.size(targets) != t.size:
        raise ValueError(f"targets must have the shape of tokens {t.shape}")
    return t, _int32_array(targets, "targets").reshape(t.shape)


def _int32_array(x, name):
    a = np.ascontiguousarray(x, dtype=np.int32)  # no copy when already contiguous int32
    if a.size == 0:
        raise ValueError(f"{name} is empty")
    return a


class Model(Closable):
    """A model and its tokenizer. Use `load()`; close() (or a with-block) frees it early."""

    def __init__(self, path, tokenizer=None, backend="cpu"):
        self._model = ctypes.c_void_p()
        self._tok = ctypes.c_void_p()
        call(lib.anetrain_model_load, str(path).encode(), backend.encode() if backend else None,
             ctypes.byref(self._model))
        try:
            call(lib.anetrain_tokenizer_load, str(tokenizer).encode() if tokenizer else None, self._model,
                 ctypes.byref(self._tok))
        except Error:
            self.close()
            raise
        info = ModelInfo()
        call(lib.anetrain_model_get_info, self._model, ctypes.byref(info))
        #: The model's shape: vocab_size, dim, n_layers, n_heads, n_kv_heads, hidden_dim, max_seq_len,
        #: params, arch, kind.
        self.info = {f: getattr(info, f) for f, _ in ModelInfo._fields_}
        self.info["arch"] = info.arch.decode()
        self.info["kind"] = info.kind.decode()
        bos, eos, vocab = ctypes.c_int32(), ctypes.c_int32(), ctypes.c_int32()
        call(lib.anetrain_tokenizer_special, self._tok, ctypes.byref(bos), ctypes.byref(eos), ctypes.byref(vocab))
        self.bos_id, self.eos_id = bos.value, eos.value

    @serialized
    def close(self):
        lib.anetrain_tokenizer_free(self._tok)
        lib.anetrain_model_free(self._model)
        self._tok = ctypes.c_void_p()
        self._model = ctypes.c_void_p()

    def __del__(self):  # a constructor that failed leaves no handle to free
        if getattr(self, "_model", None) is not None:
            self.close()

    @property
    def vocab_size(self):
        return self.info["vocab_size"]

    @serialized
    def encode(self, text, bos=True):
        """Text → token ids (numpy int32), with BOS first when asked and the tokenizer has one."""
        data = text.encode("utf-8")
        n = ctypes.c_size_t(len(data) + 2)
        for _ in range(2):  # a size estimate, then the exact size the engine asked for
            ids = np.empty(n.value, dtype=np.int32)
            if call(lib.anetrain_encode, self._tok, data, len(data), int(bos), ids.ctypes.data, ctypes.byref(n),
                    allow=(ERR_BUFFER,)) == 0:
                return ids[: n.value]
        raise Error(ERR_BUFFER, "encode: the size changed between calls")

    @serialized
    def decode(self, ids):
        """Token ids → text."""
        a = np.ascontiguousarray(ids, dtype=np.int32)
        n = ctypes.c_size_t(4 * a.size + 16)
        for _ in range(2):
            buf = ctypes.create_string_buffer(n.value + 1)
            n = ctypes.c_size_t(len(buf))
            if call(lib.anetrain_decode, self._tok, a.ctypes.data, a.size, buf, ctypes.byref(n),
                    allow=(ERR_BUFFER,)) == 0:
                return buf.raw[: n.value].decode("utf-8", "replace")
        raise Error(ERR_BUFFER, "decode: the size changed between calls")

    @serialized
    def generate(self, prompt, n=256, temperature=0.8, top_p=0.9, top_k=0, seed=0, stop_at_eos=True, on_token=None):
        """Continues `prompt` by up to n tokens (temperature 0 = greedy) and returns the new text.
        on_token(id, text) is called for each token; returning True stops."""
        s = Sampling()
        lib.anetrain_sampling_default(ctypes.byref(s))
        s.temperature, s.top_p, s.top_k, s.seed = temperature, top_p, int(top_k), int(seed)
        s.max_tokens, s.stop_at_eos = int(n), int(bool(stop_at_eos))
        pieces = []
        raised = []

        def cb(_user, token, piece, length):
            text = ctypes.string_at(piece, length).decode("utf-8", "replace")
            pieces.append(text)
            try:
                return 1 if on_token is not None and on_token(token, text) else 0
            except BaseException as e:  # never unwind through C: stop, and re-raise below
                raised.append(e)
                return 1

        call(lib.anetrain_generate, self._model, self._tok, prompt.encode("utf-8"), ctypes.byref(s),
             TOKEN_CALLBACK(cb), None, None)
        if raised:
            raise raised[0]
        return "".join(pieces)

    @serialized
    def forward(self, tokens, targets=None):
        """The training forward pass. tokens: (B, T) or (T,) ids. Returns (logits (B, T, V) float32,
        loss) — loss is the mean cross-entropy against targets, or None without them."""
        t, y = _batch(tokens, targets)
        B, T = t.shape
        logits = np.empty((B, T, self.vocab_size), dtype=np.float32)
        loss = ctypes.c_double()
        call(lib.anetrain_forward, self._model, t.ctypes.data, y.ctypes.data if y is not None else None, B, T,
             logits.ctypes.data, ctypes.byref(loss) if y is not None else None)
        return logits, (loss.value if y is not None else None)

    @serialized
    def tensors(self):
        """The parameter table: [(Hugging Face name, shape, offset in floats)], in storage order."""
        count, params = ctypes.c_size_t(), ctypes.c_size_t()
        call(lib.anetrain_model_tensor_count, self._model, ctypes.byref(count), ctypes.byref(params))
        out = []
        for i in range(count.value):
            name = ctypes.create_string_buffer(256)
            n = ctypes.c_size_t(len(name))
            shape = (ctypes.c_int64 * 2)()
            rank, offset = ctypes.c_int32(), ctypes.c_size_t()
            call(lib.anetrain_model_tensor, self._model, i, name, ctypes.byref(n), shape, ctypes.byref(rank),
                 ctypes.byref(offset))
            out.append((name.value.decode(), tuple(shape[: rank.value]), offset.value))
        self._params = params.value
        return out

    @serialized
    def backward(self, tokens, targets):
        """One forward and backward pass: returns (loss, {name: gradient}) — the gradients of the
        mean cross-entropy, each a view into one float32 array the engine wrote (no copies)."""
        if targets is None:
            raise ValueError("backward needs targets")
        t, y = _batch(tokens, targets)
        B, T = t.shape
        table = self.tensors()
        flat = np.empty(self._params, dtype=np.float32)
        loss = ctypes.c_double()
        call(lib.anetrain_backward, self._model, t.ctypes.data, y.ctypes.data, B, T, flat.ctypes.data, flat.size,
             ctypes.byref(loss))
        grads = {name: flat[off:off + int(np.prod(shape))].reshape(shape) for name, shape, off in table}
        return loss.value, grads


class Trainer(Closable):
    """A training run stepped from Python. Options are the keys of a run's run.json, as
    `anetrain train` writes it: model, data (token shard paths), out (the run directory), and
    optionally val_data / val_frac, seq, batch, accum, steps, lr, min_lr, warmup, wd, clip, seed,
    eval_batches, precision ("fp32" by default here), threads, backend, ... Telemetry goes to
    out/telemetry.jsonl, so `anetrain dashboard out` shows the run."""

    def __init__(self, out, model, data, **options):
        options.update(out=str(out), model=str(model), data=[str(d) for d in data])
        if "val_data" in options:
            options["val_data"] = [str(d) for d in options["val_data"]]
        self._t = ctypes.c_void_p()
        self._out = options["out"]
        call(lib.anetrain_trainer_create, json.dumps(options).encode(), ctypes.byref(self._t))

    @classmethod
    def resume(cls, run_dir):
        """Continues a run (from Python or `anetrain train`) at its latest checkpoint, bit-exactly."""
        self = cls.__new__(cls)
        self._t = ctypes.c_void_p()
        self._out = os.fspath(run_dir)
        call(lib.anetrain_trainer_resume, self._out.encode(), ctypes.byref(self._t))
        return self

    @serialized
    def step(self):
        """One optimizer step; returns its loss (NaN when non-finite: the update was skipped)."""
        loss = ctypes.c_double()
        call(lib.anetrain_trainer_step, self._t, ctypes.byref(loss), None)
        return loss.value

    @serialized
    def evaluate(self):
        """The validation loss over the run's fixed validation batches."""
        v = ctypes.c_double()
        call(lib.anetrain_trainer_evaluate, self._t, ctypes.byref(v))
        return v.value

    @serialized
    def save(self):
        """Writes a checkpoint (out/ckpt/step-N) and returns its directory."""
        buf = ctypes.create_string_buffer(len(self._out.encode()) + 4096)  # room for out/ckpt/step-N
        n = ctypes.c_size_t(len(buf))
        call(lib.anetrain_trainer_checkpoint, self._t, buf, ctypes.byref(n))
        return buf.value.decode()

    @serialized
    def _progress(self):
        s, t = ctypes.c_int64(), ctypes.c_int64()
        call(lib.anetrain_trainer_progress, self._t, ctypes.byref(s), ctypes.byref(t))
        return s.value, t.value

    @property
    def step_count(self):
        return self._progress()[0]

    @property
    def total_steps(self):
        return self._progress()[1]

    @serialized
    def close(self):
        """Ends the run's telemetry ("done" after the last step, else "paused")."""
        if getattr(self, "_t", None):
            lib.anetrain_trainer_free(self._t)
            self._t = ctypes.c_void_p()


def load(path, tokenizer=None, backend="cpu"):
    """Loads a model (llama2.c .bin, GGUF, safetensors / HF folder, anetrain checkpoint or run
    directory) and its tokenizer (found next to it unless given)."""
    return Model(path, tokenizer, backend)
