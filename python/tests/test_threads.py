"""One object, several Python threads. The engine's handles are one-thread-at-a-time
(docs/api.md) and ctypes lets go of the GIL inside every call, so the package serialises the calls
on each Model, Trainer and MilProgram with a lock of its own: every thread must get exactly what a
single thread gets. A race shows only when two calls meet inside the engine, so the shared-object
tests repeat rounds of concurrent calls for a few seconds: before the lock every run of the model
test found wrong losses within 6 s (in 6 of 6 runs, most in the first second)."""
import os
import threading
import time

import numpy as np
import pytest

import anetrain

HERE = os.path.dirname(os.path.abspath(__file__))
ASSETS = os.environ.get("ANETRAIN_ASSETS", os.path.join(HERE, "..", "..", "..", "shared", "assets"))
MODEL = os.path.join(ASSETS, "llama2c", "stories260K.bin")
TOK = os.path.join(ASSETS, "llama2c", "tok512.bin")
WO_FWD = os.path.join(ASSETS, "..", "reference", "mil", "tiny-mha", "woFwd.mil")
THREADS, CALLS = 6, 10


def rounds_until_wrong(seconds, one_round):
    """Repeats one_round() (a list of wrong results) until one is non-empty or `seconds` pass."""
    end = time.monotonic() + seconds
    while True:
        wrong = one_round()
        if wrong or time.monotonic() > end:
            return wrong


def run_threads(work):
    """Runs work(k) on THREADS threads at once (a barrier lines up their first calls); returns
    every thread's results and re-raises the first exception one of them raised."""
    start = threading.Barrier(THREADS)
    results, errors = [[] for _ in range(THREADS)], []

    def body(k):
        try:
            start.wait()
            results[k] = work(k)
        except BaseException as e:  # surfaced below, in the test's own thread
            errors.append(e)

    threads = [threading.Thread(target=body, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def test_threads_sharing_a_model_get_the_single_threaded_losses():
    rng = np.random.default_rng(21)
    with anetrain.load(MODEL, tokenizer=TOK) as m:
        # Batches of different lengths, so that a call running into another's buffers shows.
        batches = [rng.integers(1, m.vocab_size, size=(16, 17 + 8 * i)).astype(np.int32) for i in range(5)]
        want = [m.forward(b[:, :-1], b[:, 1:]) for b in batches]

        def work(k):
            return [(j, m.forward(batches[j][:, :-1], batches[j][:, 1:]))
                    for j in ((k + i) % len(batches) for i in range(CALLS))]

        # Exact: each call is the same computation on the same weights, serialised, with the
        # engine's thread count unchanged, so it repeats bit for bit.
        def one_round():
            return [(j, loss, want[j][1]) for per_thread in run_threads(work) for j, (logits, loss) in per_thread
                    if loss != want[j][1] or not np.array_equal(logits, want[j][0])]

        wrong = rounds_until_wrong(8, one_round)
        assert not wrong, f"{len(wrong)} of {THREADS * CALLS} calls differ from one thread's: {wrong[:3]}"


def test_threads_sharing_a_mil_program_get_the_single_threaded_output():
    x = np.linspace(-1, 1, 64 * 96, dtype=np.float32).reshape(1, 64, 1, 96)
    with anetrain.MilProgram(WO_FWD) as p:
        want = [p.run(x), p.run(2 * x)]

        def one_round():
            outputs = run_threads(lambda k: [p.run(x * (1 + k % 2)) for _ in range(CALLS)])
            return [k for k, outs in enumerate(outputs) for y in outs if not np.array_equal(y, want[k % 2])]

        wrong = rounds_until_wrong(3, one_round)
        assert not wrong, f"{len(wrong)} of {THREADS * CALLS} runs differ from one thread's"


def test_threads_sharing_a_trainer_take_one_step_at_a_time(tmp_path):
    anetrain_bin = os.environ.get("ANETRAIN_BIN")
    if not anetrain_bin:
        pytest.skip("ANETRAIN_BIN (the anetrain CLI, to prepare shards) is not set")
    import gzip
    import subprocess
    with gzip.open(os.path.join(ASSETS, "corpora", "war-and-peace.txt.gz"), "rb") as f:
        (tmp_path / "wp.txt").write_bytes(f.read(100_000))
    subprocess.run([anetrain_bin, "prepare", str(tmp_path / "wp.txt"), "-z", TOK, "-o", str(tmp_path / "shards")],
                   check=True, capture_output=True)
    shard = sorted((tmp_path / "shards").glob("train_*.bin"))[0]
    steps = THREADS * 2
    opts = dict(seq=32, batch=4, steps=steps, lr=1e-3, warmup=2, threads=1, seed=3)
    with anetrain.Trainer(tmp_path / "serial", "stories260k", [shard], **opts) as t:
        serial = [t.step() for _ in range(steps)]
    with anetrain.Trainer(tmp_path / "shared", "stories260k", [shard], **opts) as t:
        shared = run_threads(lambda k: [t.step() for _ in range(2)])
        assert t.step_count == steps
    # Which thread took which step is up to the scheduler; the losses of the steps are not.
    assert sorted(loss for per_thread in shared for loss in per_thread) == sorted(serial)
