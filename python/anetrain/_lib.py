"""ctypes declarations of include/anetrain.h, and the call wrapper that turns a status into an
exception carrying the engine's message."""
import ctypes
import ctypes.util
import functools
import os
import sys
import threading

API_VERSION = 2

OK, ERR_ARGUMENT, ERR_HANDLE, ERR_INPUT, ERR_BUFFER, ERR_INTERNAL, ERR_UNSUPPORTED = range(7)


class Error(Exception):
    """An error from the engine. `status` is the C API's status code; str() is its message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class ModelInfo(ctypes.Structure):
    _fields_ = [("vocab_size", ctypes.c_int32), ("dim", ctypes.c_int32), ("n_layers", ctypes.c_int32),
                ("n_heads", ctypes.c_int32), ("n_kv_heads", ctypes.c_int32), ("hidden_dim", ctypes.c_int32),
                ("max_seq_len", ctypes.c_int32), ("params", ctypes.c_int64), ("arch", ctypes.c_char * 16),
                ("kind", ctypes.c_char * 16)]


class Sampling(ctypes.Structure):
    _fields_ = [("temperature", ctypes.c_float), ("top_p", ctypes.c_float), ("top_k", ctypes.c_int32),
                ("seed", ctypes.c_uint64), ("max_tokens", ctypes.c_int32), ("stop_at_eos", ctypes.c_int32)]


TOKEN_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int32, ctypes.POINTER(ctypes.c_char),
                                  ctypes.c_size_t)


LIBRARY = "libanetrain.dylib" if sys.platform == "darwin" else "libanetrain.so"  # as setup.py names it


def _load():
    here = os.path.dirname(os.path.abspath(__file__))
    for path in (os.environ.get("ANETRAIN_LIB"), os.path.join(here, LIBRARY),
                 ctypes.util.find_library("anetrain")):
        if path and (os.path.exists(path) or not os.path.isabs(path)):
            try:
                return ctypes.CDLL(path)
            except OSError as e:
                last = e
                continue
    raise ImportError(f"anetrain: cannot load {LIBRARY} (set ANETRAIN_LIB, or reinstall the package "
                      "after building the engine)" + (f": {last}" if "last" in locals() else ""))


lib = _load()
P = ctypes.POINTER
c_void_pp = P(ctypes.c_void_p)
_sigs = {
    "anetrain_api_version": ([], ctypes.c_int),
    "anetrain_version": ([], ctypes.c_char_p),
    "anetrain_last_error": ([], ctypes.c_char_p),
    "anetrain_set_threads": ([ctypes.c_int], ctypes.c_int),
    "anetrain_model_load": ([ctypes.c_char_p, ctypes.c_char_p, c_void_pp], ctypes.c_int),
    "anetrain_model_free": ([ctypes.c_void_p], None),
    "anetrain_model_get_info": ([ctypes.c_void_p, P(ModelInfo)], ctypes.c_int),
    "anetrain_tokenizer_load": ([ctypes.c_char_p, ctypes.c_void_p, c_void_pp], ctypes.c_int),
    "anetrain_tokenizer_free": ([ctypes.c_void_p], None),
    "anetrain_tokenizer_special": ([ctypes.c_void_p, P(ctypes.c_int32), P(ctypes.c_int32), P(ctypes.c_int32)],
                                   ctypes.c_int),
    "anetrain_encode": ([ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p,
                         P(ctypes.c_size_t)], ctypes.c_int),
    "anetrain_decode": ([ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, P(ctypes.c_size_t)],
                        ctypes.c_int),
    "anetrain_sampling_default": ([P(Sampling)], None),
    "anetrain_generate": ([ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p, P(Sampling), TOKEN_CALLBACK,
                           ctypes.c_void_p, P(ctypes.c_int32)], ctypes.c_int),
    "anetrain_trainer_create": ([ctypes.c_char_p, c_void_pp], ctypes.c_int),
    "anetrain_trainer_resume": ([ctypes.c_char_p, c_void_pp], ctypes.c_int),
    "anetrain_trainer_free": ([ctypes.c_void_p], None),
    "anetrain_trainer_step": ([ctypes.c_void_p, P(ctypes.c_double), P(ctypes.c_int64)], ctypes.c_int),
    "anetrain_trainer_evaluate": ([ctypes.c_void_p, P(ctypes.c_double)], ctypes.c_int),
    "anetrain_trainer_checkpoint": ([ctypes.c_void_p, ctypes.c_char_p, P(ctypes.c_size_t)], ctypes.c_int),
    "anetrain_trainer_progress": ([ctypes.c_void_p, P(ctypes.c_int64), P(ctypes.c_int64)], ctypes.c_int),
    "anetrain_forward": ([ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32,
                          ctypes.c_void_p, P(ctypes.c_double)], ctypes.c_int),
    "anetrain_model_tensor_count": ([ctypes.c_void_p, P(ctypes.c_size_t), P(ctypes.c_size_t)], ctypes.c_int),
    "anetrain_model_tensor": ([ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, P(ctypes.c_size_t),
                               P(ctypes.c_int64), P(ctypes.c_int32), P(ctypes.c_size_t)], ctypes.c_int),
    "anetrain_backward": ([ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32,
                           ctypes.c_void_p, ctypes.c_size_t, P(ctypes.c_double)], ctypes.c_int),
    "anetrain_mil_compile": ([ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, c_void_pp], ctypes.c_int),
    "anetrain_mil_free": ([ctypes.c_void_p], None),
    "anetrain_mil_shape": ([ctypes.c_void_p, ctypes.c_int, P(ctypes.c_int64), P(ctypes.c_size_t), P(ctypes.c_size_t)],
                           ctypes.c_int),
    "anetrain_mil_run": ([ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, P(ctypes.c_size_t)],
                         ctypes.c_int),
}
for _name, (_args, _res) in _sigs.items():
    _f = getattr(lib, _name)
    _f.argtypes = _args
    _f.restype = _res

if lib.anetrain_api_version() != API_VERSION:
    raise ImportError(f"anetrain: libanetrain.so speaks C API {lib.anetrain_api_version()}, "
                      f"this package {API_VERSION}: reinstall the package")


def call(fn, *args, allow=()):
    """Calls a C API function; raises Error unless it returns OK (or a status in `allow`)."""
    status = fn(*args)
    if status != OK and status not in allow:
        raise Error(status, lib.anetrain_last_error().decode("utf-8", "replace"))
    return status


class Closable:
    """The base of every object that holds engine handles (Model, Trainer, MilProgram): `with`
    blocks and garbage collection both end in the subclass's close(), and calls on one object are
    serialised. The engine's handles are one-thread-at-a-time and ctypes lets go of the GIL inside
    each call, so two Python threads sharing an object would otherwise run inside the engine at
    once (and get wrong results). The lock is re-entrant: a generate() callback may use its model."""

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        self._lock = threading.RLock()  # here, not in __init__: Trainer.resume() bypasses __init__
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()


def serialized(method):
    """Runs a Closable's method under the object's lock (see Closable)."""

    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return locked
