"""MIL programs over the C API's anetrain_mil_* (one input, one output; fp32 numpy arrays)."""
import ctypes

import numpy as np

from ._lib import Closable, call, lib, serialized


class MilProgram(Closable):
    """A MIL program compiled on "ane-sim", "ane-fake" or "ane" (macOS builds). Compile once, run
    many times: every compile counts toward the process's budget of about 119."""

    def __init__(self, path, backend="ane-sim", weights_dir=None):
        self._m = ctypes.c_void_p()
        call(lib.anetrain_mil_compile, backend.encode(), str(path).encode(),
             str(weights_dir).encode() if weights_dir else None, ctypes.byref(self._m))
        #: Shapes of the program's input and output, as tuples.
        self.input_shape, self.output_shape = self._shape(0), self._shape(1)

    @serialized
    def _shape(self, which):
        dims = (ctypes.c_int64 * 8)()
        rank = ctypes.c_size_t(8)
        call(lib.anetrain_mil_shape, self._m, which, dims, ctypes.byref(rank), None)
        return tuple(dims[i] for i in range(rank.value))

    @serialized
    def run(self, x):
        """One evaluation. x: any array with the input's element count (reshaped row-major; rounded
        to fp16 where the program's input is fp16). Returns a new float32 array of the output shape."""
        a = np.ascontiguousarray(x, dtype=np.float32)
        want = int(np.prod(self.input_shape))
        if a.size != want:
            raise ValueError(f"the input {self.input_shape} has {want} elements, got an array of {a.size}")
        out = np.empty(self.output_shape, dtype=np.float32)
        n = ctypes.c_size_t(out.size)
        call(lib.anetrain_mil_run, self._m, a.ctypes.data, a.size, out.ctypes.data, ctypes.byref(n))
        return out

    @serialized
    def close(self):
        if getattr(self, "_m", None):
            lib.anetrain_mil_free(self._m)
            self._m = ctypes.c_void_p()


def mil_run(path, x, backend="ane-sim", weights_dir=None):
    """Compiles the program at `path`, runs it once on x, and frees it."""
    with MilProgram(path, backend, weights_dir) as p:
        return p.run(x)
