"""Signals in a Python process that calls the engine. Each call holds the process's signals until
it returns (oneDNN's f32 GEMM kernels point the stack pointer at the heap while they run, so a
handler run inside one corrupts the heap — core/signal_shield.h): a Ctrl-C must still raise
KeyboardInterrupt at the call's end, and at once inside a token callback; a handler of the host's
must still run, and the engine's results must not change under a storm of signals.

Each case runs in a child process, so the signals never reach pytest."""
import os
import signal
import subprocess
import sys
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ASSETS = os.environ.get("ANETRAIN_ASSETS", os.path.join(HERE, "..", "..", "..", "shared", "assets"))
MODEL = os.path.join(ASSETS, "llama2c", "stories260K.bin")
TOK = os.path.join(ASSETS, "llama2c", "tok512.bin")

CHILD = textwrap.dedent(
    """
    import signal, sys, time
    import numpy as np
    import anetrain
    # Started from a test, SIGINT may be ignored (as in a shell's background job): a user's
    # interactive Python has this handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    usr1 = [0]
    signal.signal(signal.SIGUSR1, lambda *_: usr1.__setitem__(0, usr1[0] + 1))
    m = anetrain.load(sys.argv[1], tokenizer=sys.argv[2])
    tokens, targets = [[1] + list(range(2, 200))], [list(range(2, 201))]
    first_logits, first_loss = m.forward(tokens, targets)
    print("ready", flush=True)
    calls = 0
    try:
        while True:
            logits, loss = m.forward(tokens, targets)
            assert loss == first_loss and np.array_equal(logits, first_logits), "a forward pass changed under signals"
            calls += 1
    except KeyboardInterrupt:
        print("interrupted forward after %d calls, %d SIGUSR1 handled" % (calls, usr1[0]), flush=True)
    made = []
    def on_token(token, piece):
        made.append(token)
        if len(made) == 5:
            print("generating", flush=True)
        time.sleep(0.01)
    try:
        m.generate("Once upon a time", n=400, stop_at_eos=False, on_token=on_token)
        print("generation ended uninterrupted", flush=True)
    except KeyboardInterrupt:
        print("interrupted generate after %d tokens" % len(made), flush=True)
    """
)


def wait_line(p, want, timeout=60):
    end = time.monotonic() + timeout
    lines = []
    while time.monotonic() < end:
        line = p.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
        if line.startswith(want):
            return line.strip()
    p.kill()
    raise AssertionError("child never printed %r; it printed %r; stderr: %s" % (want, lines, p.stderr.read()[-2000:]))


def test_ctrl_c_and_host_handlers_work_around_engine_calls():
    p = subprocess.Popen([sys.executable, "-c", CHILD, MODEL, TOK], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    try:
        wait_line(p, "ready")
        # A storm of the host's own signal during the calls: its handler runs, results stay.
        end = time.monotonic() + 1.0
        sent = 0
        while time.monotonic() < end:
            p.send_signal(signal.SIGUSR1)
            sent += 1
            time.sleep(0.0005)
        p.send_signal(signal.SIGINT)
        line = wait_line(p, "interrupted forward")
        handled = int(line.split(",")[1].split()[0])
        assert handled > 0, "the host's SIGUSR1 handler never ran (%d sent): %s" % (sent, line)
        wait_line(p, "generating")
        p.send_signal(signal.SIGINT)
        line = wait_line(p, "interrupted generate")
        tokens = int(line.split()[3])
        assert tokens < 100, "Ctrl-C waited for the generation's end: %s" % line
        assert p.wait(timeout=30) == 0, p.stderr.read()[-2000:]
    finally:
        if p.poll() is None:
            p.kill()
