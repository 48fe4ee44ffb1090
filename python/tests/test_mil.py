"""anetrain.MilProgram / mil_run on the seed's woFwd (shared/reference/mil): inputs on a 1/16 grid
make every product and sum exact, so the output must be exactly fp16(x_actᵀ · W) as numpy
computes it; ane-fake gives ane-sim's bits; errors carry the C API's status."""
import os

import numpy as np
import pytest

import anetrain
from anetrain._lib import ERR_ARGUMENT, ERR_HANDLE, ERR_INPUT, ERR_UNSUPPORTED

HERE = os.path.dirname(os.path.abspath(__file__))
ASSETS = os.environ.get("ANETRAIN_ASSETS", os.path.join(HERE, "..", "..", "..", "shared", "assets"))
WO_FWD = os.path.join(ASSETS, "..", "reference", "mil", "tiny-mha", "woFwd.mil")


def grid_input():
    c, w = np.meshgrid(np.arange(64), np.arange(96), indexing="ij")
    return (((c * 7 + w * 3) % 31 - 15) / 16.0).astype(np.float32).reshape(1, 64, 1, 96)


def test_wo_fwd_is_exact_fp16_of_the_product():
    x = grid_input()
    with anetrain.MilProgram(WO_FWD) as p:
        assert p.input_shape == (1, 64, 1, 96) and p.output_shape == (1, 64, 1, 32)
        y = p.run(x)
    a, w = x[0, :, 0, :32].astype(np.float64), x[0, :, 0, 32:].astype(np.float64)
    want = (w.T @ a).astype(np.float16).astype(np.float32)  # y[o, t] = Σ_c x[c, t]·x[c, 32+o]
    assert y.dtype == np.float32 and y.shape == (1, 64, 1, 32)
    assert np.array_equal(y[0, :, 0, :], want)
    assert (want != (w.T @ a)).sum() > 100  # the rounding itself is checked, not only the sums


def test_ane_fake_gives_ane_sims_bits():
    x = np.sin(np.arange(64 * 96, dtype=np.float32)).reshape(1, 64, 1, 96)
    assert np.array_equal(anetrain.mil_run(WO_FWD, x), anetrain.mil_run(WO_FWD, x, backend="ane-fake"))


def test_errors_carry_the_status():
    with pytest.raises(anetrain.Error) as e:
        anetrain.MilProgram(WO_FWD, backend="tpu")
    assert e.value.status == ERR_ARGUMENT and "'tpu'" in str(e.value)
    with pytest.raises(anetrain.Error) as e:
        anetrain.MilProgram("/nonexistent/p.mil")
    assert e.value.status == ERR_INPUT and "/nonexistent/p.mil" in str(e.value)
    if os.uname().sysname != "Darwin":
        with pytest.raises(anetrain.Error) as e:
            anetrain.MilProgram(WO_FWD, backend="ane")
        assert e.value.status == ERR_UNSUPPORTED
    p = anetrain.MilProgram(WO_FWD)
    with pytest.raises(ValueError, match="6144"):
        p.run(np.zeros(100, np.float32))
    p.close()
    with pytest.raises(anetrain.Error) as e:
        p.run(grid_input())
    assert e.value.status == ERR_HANDLE
