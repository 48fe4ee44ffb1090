"""The Python package against the engine itself: llama2.c's golden stories260K story, logits and
loss equal to `anetrain grad`'s for the same tokens, numpy arrays written in place, and the
engine's errors raised as anetrain.Error with its message. Needs ../shared/assets (ANETRAIN_ASSETS)
and the CLI (ANETRAIN_BIN) for the grad comparison."""
import json
import os
import struct
import subprocess

import numpy as np
import pytest

import anetrain

HERE = os.path.dirname(os.path.abspath(__file__))
ASSETS = os.environ.get("ANETRAIN_ASSETS", os.path.join(HERE, "..", "..", "..", "shared", "assets"))
MODEL = os.path.join(ASSETS, "llama2c", "stories260K.bin")
TOK = os.path.join(ASSETS, "llama2c", "tok512.bin")
GOLDEN = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park."


@pytest.fixture(scope="module")
def model():
    with anetrain.load(MODEL, tokenizer=TOK) as m:
        yield m


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32"
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=np.float32).reshape(t["shape"])
    return out


def test_generate_golden_story(model):
    text = model.generate("Once upon a time", n=64, temperature=0)
    assert ("Once upon a time" + text).startswith(GOLDEN)
    assert model.info["arch"] == "llama" and model.info["vocab_size"] == 512 and model.info["kind"] == "llama2c"


def test_on_token_sees_every_token_and_can_stop(model):
    seen = []
    text = model.generate("Once upon a time", n=64, temperature=0, on_token=lambda i, t: (seen.append((i, t)), len(seen) == 7)[1])
    assert len(seen) == 7
    assert text == "".join(t for _, t in seen)
    with pytest.raises(ZeroDivisionError):  # an exception in the callback stops generation and surfaces
        model.generate("Once upon a time", n=8, temperature=0, on_token=lambda i, t: 1 / 0)


def test_encode_decode_round_trip(model):
    ids = model.encode(GOLDEN)
    assert ids.dtype == np.int32 and ids[0] == model.bos_id == 1
    assert model.decode(ids[1:]) == GOLDEN
    assert model.decode(model.encode("ünïcödé and 中文", bos=False)) == "ünïcödé and 中文"


def grad_reference(model, tmp_path):
    """33 ids of the golden text and what `anetrain grad` writes for them (loss, logits, gradients)."""
    anetrain_bin = os.environ.get("ANETRAIN_BIN")
    if not anetrain_bin:
        pytest.skip("ANETRAIN_BIN (the anetrain CLI) is not set")
    ids = model.encode(GOLDEN * 2)[:33]
    (tmp_path / "tokens.txt").write_text(" ".join(map(str, ids)))
    subprocess.run([anetrain_bin, "grad", MODEL, "--tokens", str(tmp_path / "tokens.txt"), "--batch", "1", "--seq", "32",
                    "-o", str(tmp_path / "g.safetensors")], check=True, capture_output=True)
    return ids, read_safetensors(tmp_path / "g.safetensors")


def test_logits_and_loss_equal_anetrain_grad(model, tmp_path):
    ids, ref = grad_reference(model, tmp_path)
    logits, loss = model.forward(ids[:-1], ids[1:])
    assert logits.shape == (1, 32, 512)
    # Same engine, same backend, same order of operations: equal to the last bit is expected; 1e-6
    # relative leaves room only for a differently threaded reduction.
    np.testing.assert_allclose(logits, ref["logits"], rtol=1e-6, atol=1e-6)
    assert abs(loss - float(ref["loss"].reshape(-1)[0])) <= 1e-6 * abs(loss)


def test_gradients_equal_anetrain_grad_and_share_one_array(model, tmp_path):
    ids, ref = grad_reference(model, tmp_path)
    before, _ = model.forward(ids[:-1])
    loss, grads = model.backward(ids[:-1], ids[1:])
    assert abs(loss - float(ref["loss"].reshape(-1)[0])) <= 1e-6 * abs(loss)
    table = model.tensors()
    assert [name for name, _, _ in table] == list(grads) and len(grads) == len(ref) - 2  # minus loss, logits
    for name, g in grads.items():
        assert g.shape == ref[name].shape, name
        scale = float(np.max(np.abs(ref[name])))
        assert scale > 0, name  # every tensor of stories260K gets a gradient from 32 tokens
        np.testing.assert_allclose(g, ref[name], rtol=0, atol=1e-6 * scale, err_msg=name)
    # One array written by the engine; every gradient is a view into it, in the table's order.
    bases = {id(g.base) for g in grads.values()}
    assert len(bases) == 1 and all(not g.flags["OWNDATA"] for g in grads.values())
    # The weights are untouched: the forward pass gives the same logits afterwards.
    np.testing.assert_array_equal(model.forward(ids[:-1])[0], before)
    with pytest.raises(anetrain.Error, match="outside the vocabulary"):
        model.backward([1, 2, 99999], [2, 3, 4])


def test_forward_writes_into_a_numpy_array_and_batches(model):
    ids = model.encode(GOLDEN)[:17]
    batch = np.stack([ids[:-1], ids[:-1]])
    logits, loss = model.forward(batch, np.stack([ids[1:], ids[1:]]))
    assert logits.flags["C_CONTIGUOUS"] and logits.flags["OWNDATA"] and logits.dtype == np.float32
    # Equal rows give equal logits up to the summation order: a product's kernel may take a row
    # in another register tile (oneDNN's AVX2 kernels do), so exact equality is not promised;
    # measured 4e-7 of the largest logit (Zen 3), bound 2e-6 of it (~30 fp32 roundings of it).
    # The same holds for a row alone against the same row in a batch.
    bound = 2e-6 * np.abs(logits).max()
    np.testing.assert_allclose(logits[0], logits[1], rtol=0, atol=bound)
    single, loss1 = model.forward(ids[:-1], ids[1:])
    np.testing.assert_allclose(single[0], logits[0], rtol=0, atol=bound)
    assert loss == pytest.approx(loss1, rel=1e-6)
    # The model's greedy choice after the prompt is the argmax of the forward pass there.
    prompt = model.encode("Once upon a time")
    nxt = model.encode("Once upon a time" + model.generate("Once upon a time", n=1, temperature=0))[len(prompt)]
    assert int(np.argmax(model.forward(prompt)[0][0, -1])) == nxt


def test_errors_are_exceptions_with_the_engines_message(model, tmp_path):
    with pytest.raises(anetrain.Error, match="/nonexistent/model.bin") as e:
        anetrain.load("/nonexistent/model.bin")
    assert e.value.status == 3
    with pytest.raises(anetrain.Error, match="700"):
        model.forward(np.array([1, 2, 700, 3]))
    with pytest.raises(anetrain.Error, match="outside the vocabulary"):
        model.decode([5, 100000])
    with pytest.raises(anetrain.Error, match="top_p"):
        model.generate("x", top_p=0)
    with pytest.raises(anetrain.Error, match="tokenizer"):
        anetrain.load(MODEL, tokenizer=str(tmp_path / "missing.bin"))
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\x00" * 10)
    with pytest.raises(anetrain.Error, match="bad.bin"):
        anetrain.load(str(bad), tokenizer=TOK)
    with pytest.raises(ValueError):
        model.forward(np.zeros((2, 3)), np.zeros(5))


def test_closed_model_raises_instead_of_crashing():
    m = anetrain.load(MODEL, tokenizer=TOK)
    # Closing the model from inside its own generation: the running call keeps it alive.
    text = m.generate("Once upon a time", n=8, temperature=0, on_token=lambda i, t: m.close())
    assert len(text) > 0
    m.close()
    with pytest.raises(anetrain.Error, match="handle"):
        m.generate("Once upon a time", n=4)
    m.close()  # twice is fine


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    anetrain_bin = os.environ.get("ANETRAIN_BIN")
    if not anetrain_bin:
        pytest.skip("ANETRAIN_BIN (the anetrain CLI, to prepare shards) is not set")
    import gzip
    d = tmp_path_factory.mktemp("data")
    with gzip.open(os.path.join(ASSETS, "corpora", "war-and-peace.txt.gz"), "rb") as f:
        (d / "wp.txt").write_bytes(f.read(200_000))
    subprocess.run([anetrain_bin, "prepare", str(d / "wp.txt"), "-z", TOK, "-o", str(d / "shards")], check=True,
                   capture_output=True)
    return sorted((d / "shards").glob("train_*.bin"))[0]


def test_trainer_steps_lower_the_loss_and_resume_exactly(shard, tmp_path):
    opts = dict(seq=64, batch=8, steps=12, lr=1e-3, warmup=2, val_frac=0.1, eval_batches=2, threads=1, seed=7)
    with anetrain.Trainer(tmp_path / "a", "stories260k", [shard], **opts) as t:
        losses = [t.step() for _ in range(12)]
        val = t.evaluate()
        assert t.step_count == 12 and t.total_steps == 12
    assert all(np.isfinite(losses)) and np.mean(losses[-3:]) < losses[0] - 0.3, losses
    assert np.isfinite(val)
    # Paused after 6 steps, resumed in another object: the same losses to the last bit.
    with anetrain.Trainer(tmp_path / "b", "stories260k", [shard], **opts) as t:
        first = [t.step() for _ in range(6)]
        path = t.save()
    assert path.endswith("step-00000006") and os.path.isdir(path)
    with anetrain.Trainer.resume(tmp_path / "b") as t:
        assert t.step_count == 6
        rest = [t.step() for _ in range(6)]
    assert first + rest == losses
    # Defaults as in `anetrain train`: min_lr is 0.1 × lr unless given.
    assert json.load(open(tmp_path / "b" / "run.json"))["min_lr"] == pytest.approx(1e-4)
    # The run is an ordinary one: its telemetry says what happened.
    events = [json.loads(l)["event"] for l in open(tmp_path / "b" / "telemetry.jsonl")]
    assert events.count("run_start") == 2 and events.count("step") == 12 and events[-1] == "run_end"


def test_trainer_errors_are_exceptions(shard, tmp_path):
    with pytest.raises(anetrain.Error, match="bogus"):
        anetrain.Trainer(tmp_path / "x", "stories260k", [shard], bogus=1)
    with pytest.raises(anetrain.Error, match="/nonexistent.bin"):
        anetrain.Trainer(tmp_path / "x", "stories260k", ["/nonexistent.bin"])
    with pytest.raises(anetrain.Error, match="no validation data"):
        with anetrain.Trainer(tmp_path / "y", "stories260k", [shard], seq=32, batch=2, steps=2) as t:
            t.evaluate()
    with pytest.raises(anetrain.Error, match="not a run folder"):
        anetrain.Trainer.resume(tmp_path / "nothing-here")


def test_one_trainer_per_run_folder(shard, tmp_path):
    # The run's lock (run.lock, an flock) is held while a Trainer lives: a second Trainer on the same
    # folder, new or resumed, is refused naming the holder; once the first is closed, resume works.
    opts = dict(seq=32, batch=2, steps=4, lr=1e-3, warmup=1)
    with anetrain.Trainer(tmp_path / "run", "stories260k", [shard], **opts) as first:
        first.step()
        first.save()
        with pytest.raises(anetrain.Error, match="in use by another trainer .*pid %d" % os.getpid()):
            anetrain.Trainer.resume(tmp_path / "run")
        with pytest.raises(anetrain.Error, match="in use by another trainer"):
            anetrain.Trainer(tmp_path / "run", "stories260k", [shard], **opts)
    with anetrain.Trainer.resume(tmp_path / "run") as again:
        assert again.step_count == 1


def test_bad_option_values_are_refused_by_name(shard, tmp_path):
    for key, value in (("lr", 0.0), ("beta2", 1.5), ("threads", 100000), ("eval_batches", -1)):
        with pytest.raises(anetrain.Error, match=key):
            anetrain.Trainer(tmp_path / ("bad_" + key), "stories260k", [shard], **{key: value})
        assert not (tmp_path / ("bad_" + key)).exists()


def test_trainer_fine_tunes_adapters(shard, tmp_path):
    # LoRA from Python: the run.json keys lora_rank / lora_alpha / lora_targets; the checkpoint is
    # also a PEFT adapter folder with them, and a bad target is an Error naming the option.
    base = os.path.join(ASSETS, "llama2c", "stories260K.bin")
    opts = dict(seq=64, batch=8, steps=8, lr=5e-3, warmup=1, threads=1, lora_rank=4, lora_alpha=8.0,
                lora_targets="q,v,down")
    with anetrain.Trainer(tmp_path / "lora", base, [shard], **opts) as t:
        losses = [t.step() for _ in range(8)]
        path = t.save()
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    conf = json.load(open(os.path.join(path, "adapter_config.json")))
    assert conf["r"] == 4 and conf["lora_alpha"] == 8.0
    assert conf["target_modules"] == ["q_proj", "v_proj", "down_proj"]
    assert conf["base_model_name_or_path"] == os.path.abspath(base)
    with pytest.raises(anetrain.Error, match="lora_targets.*'x'"):
        anetrain.Trainer(tmp_path / "bad", base, [shard], lora_rank=4, lora_targets="q,x")


def test_trainer_adapter_dropout(shard, tmp_path):
    # The run.json key lora_dropout: kept in the checkpoint's adapter_config.json; outside [0, 1),
    # or without adapters, an Error naming the option.
    base = os.path.join(ASSETS, "llama2c", "stories260K.bin")
    with anetrain.Trainer(tmp_path / "drop", base, [shard], seq=32, batch=4, steps=2, threads=1, lora_rank=4,
                          lora_dropout=0.1) as t:
        losses = [t.step() for _ in range(2)]
        path = t.save()
    assert all(np.isfinite(losses)), losses
    assert json.load(open(os.path.join(path, "adapter_config.json")))["lora_dropout"] == 0.1
    for opts in (dict(lora_rank=4, lora_dropout=1.0), dict(lora_dropout=0.1)):
        with pytest.raises(anetrain.Error, match="lora_dropout"):
            anetrain.Trainer(tmp_path / "bad_drop", base, [shard], **opts)


def test_recompute_keeps_the_losses(shard, tmp_path):
    # The run.json key recompute: the backward recomputes activations with the same stages, so a
    # run with each mode takes the same steps, loss for loss, as one without; a bad mode is refused by name.
    opts = dict(seq=32, batch=2, steps=3, lr=1e-3, warmup=1, threads=1)
    runs = {}
    for mode in ("none", "attention", "blocks"):
        with anetrain.Trainer(tmp_path / mode, "stories260k", [shard], recompute=mode, **opts) as t:
            runs[mode] = [t.step() for _ in range(3)]
        assert json.load(open(tmp_path / mode / "run.json"))["recompute"] == mode
    assert runs["attention"] == runs["none"] and runs["blocks"] == runs["none"], runs
    with pytest.raises(anetrain.Error, match="recompute.*'layers'"):
        anetrain.Trainer(tmp_path / "bad", "stories260k", [shard], recompute="layers", **opts)
