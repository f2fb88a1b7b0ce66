"""Pretraining on a token stream (notebook 12): schedule, decay groups, FLOPs, precision, accumulation,
exact resume, and DDP on 2 CPU processes against one process."""
import math
import sys
from pathlib import Path

import pytest
import torch
from conftest import TIME_SCALE, run_to_the_end
from torch.utils.flop_counter import FlopCounterMode

from course_lib.attention import recording_attention
from course_lib.gpt import GPT, GPTConfig
from course_lib.pretraining import (
    TrainConfig,
    decay_parameter_names,
    evaluate_stream,
    load_training_state,
    lr_at,
    make_pretrain_optimizer,
    model_flops_per_token,
    peak_flops,
    pretrain,
    resolve_precision,
)
from course_lib.tokenizer import CharTokenizer
from course_lib.training import load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parent.parent


def tiny(dropout=0.0, **overrides):
    torch.manual_seed(0)
    config = dict(vocab_size=30, context_length=16, d_model=32, n_heads=2, n_layers=2, d_ff=64, dropout=dropout,
                  positions="learned")
    return GPT(GPTConfig(**{**config, **overrides}))


def comparable(state):
    """The weights whose values a training run determines. Not the key biases: softmax ignores a constant
    added to every score, so their true gradient is 0 and Adam turns the rounding noise left in it into
    steps of full size, different in every summation order."""
    return {name: value for name, value in state.items() if not name.endswith("attn.w_k.bias")}


def stream(n=4000, seed=0):
    """A learnable stream: a noisy repeating pattern over 30 tokens."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.arange(n) % 30
    noise = torch.rand(n, generator=g) < 0.2
    return torch.where(noise, torch.randint(0, 30, (n,), generator=g), ids)


def test_schedule_equals_pytorchs_warmup_and_cosine_schedulers():
    config = TrainConfig(steps=120, lr=3e-3, min_lr=3e-4, warmup_steps=20, lr_decay_steps=100)
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=config.lr)
    reference = torch.optim.lr_scheduler.SequentialLR(optimizer, [
        torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1 / 20, end_factor=1.0, total_iters=19),
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=80, eta_min=3e-4)], milestones=[20])
    for step in range(100):
        assert math.isclose(lr_at(step, config), optimizer.param_groups[0]["lr"], rel_tol=1e-9), step
        optimizer.step()
        reference.step()
    assert lr_at(19, config) == config.lr and lr_at(100, config) == lr_at(119, config) == config.min_lr
    assert lr_at(0, TrainConfig(steps=10, warmup_steps=0)) == TrainConfig().lr  # no warm-up: start at the peak


def test_weight_decay_on_matrices_only():
    model = tiny()
    names = decay_parameter_names(model)
    assert names and all(n.endswith(".weight") and ("attn.w_" in n or "ffn.net" in n) for n in names)
    assert len(names) == 2 * (4 + 2)  # per block: q, k, v, o and the two feed-forward layers
    optimizer = make_pretrain_optimizer(model, TrainConfig(weight_decay=0.1))
    decayed, other = optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and other["weight_decay"] == 0.0
    every = [p for g in optimizer.param_groups for p in g["params"]]
    assert len(every) == len({id(p) for p in every}) == len(list(model.parameters()))  # each once
    assert not any(p is model.token_embedding.weight for p in decayed["params"])  # the tied head is the embedding
    untied = tiny(tie_weights=False)
    assert "lm_head.weight" in decay_parameter_names(untied)  # a head of its own is a matrix like the others


def test_flops_per_token_equals_pytorchs_flop_counter():
    model = tiny(vocab_size=65, context_length=32)
    ids = torch.randint(0, 65, (2, 32))
    with recording_attention(model), FlopCounterMode(display=False) as counter:  # attention as plain matmuls
        _, loss = model(ids, ids)
        loss.backward()
    assert counter.get_total_flops() == model_flops_per_token(model.config) * ids.numel()


def test_peak_flops_table(monkeypatch):
    assert peak_flops("cpu", torch.bfloat16) is None
    assert peak_flops("cuda", torch.float32) is None  # fp32 peaks (TF32 or not) are not guessed
    for name, peak in [("NVIDIA A100-SXM4-40GB", 312e12), ("Tesla T4", 65e12), ("NVIDIA H100 PCIe", 756e12),
                       ("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA GeForce GTX 1080", None)]:
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None, name=name: name)
        assert peak_flops("cuda", torch.bfloat16) == peak, name


def test_precision_choices(monkeypatch):
    assert resolve_precision("auto", "cpu") == (None, False)
    assert resolve_precision("bf16", "cpu") == (torch.bfloat16, False)
    assert resolve_precision("fp16", "cpu") == (torch.float16, True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # a T4 or V100
    assert resolve_precision("auto", "cuda") == (torch.float16, True)
    with pytest.raises(ValueError, match="no bfloat16: use --precision fp16"):
        resolve_precision("bf16", "cuda")
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainConfig(precision="fp8")


def test_evaluate_stream_equals_a_loop_over_windows():
    model = tiny().eval()
    ids = stream(200)
    total, count = 0.0, 0
    for start in range(0, 200 - 16, 16):  # non-overlapping windows, every target once
        x, y = ids[start:start + 16], ids[start + 1:start + 17]
        if len(y) < 16:
            break
        logits = model(x[None])[0]
        total += torch.nn.functional.cross_entropy(logits, y, reduction="sum").item()
        count += 16
    assert math.isclose(evaluate_stream(model, ids, 16, batch_size=5), total / count, rel_tol=1e-5)


def test_training_lowers_the_validation_loss_and_reports_speed():
    model, ids = tiny(), stream()
    config = TrainConfig(steps=60, batch_size=16, lr=1e-2, min_lr=1e-3, warmup_steps=5, eval_every=30)
    before = evaluate_stream(model, ids[3000:], 16)
    logs = []
    history = pretrain(model, ids[:3000], ids[3000:], config, progress=False, on_log=logs.append)
    assert history["val_step"] == [30, 60] and [r["step"] for r in logs] == [30, 60]
    assert history["val_loss"][-1] < before - 1.0  # measured: 3.5 -> about 1.6
    assert history["tokens_per_s"] > 0 and history["mfu"] is None  # no known peak on a CPU
    assert math.isclose(history["val_bpc"][-1], history["val_loss"][-1] / math.log(2))


def test_gradient_accumulation_equals_one_big_batch():
    results = []
    for accum in (1, 4):
        model = tiny()
        config = TrainConfig(steps=8, batch_size=16, grad_accum=accum, lr=1e-2, warmup_steps=2, weight_decay=0.1)
        results.append((pretrain(model, stream(), config=config, progress=False)["loss"], comparable(model.state_dict())))
    (loss1, state1), (loss4, state4) = results
    assert loss1 == pytest.approx(loss4, abs=1e-5)
    for name in state1:
        torch.testing.assert_close(state1[name], state4[name], atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_on_the_cpu(precision):
    model = tiny()
    history = pretrain(model, stream(), stream(600, 1), TrainConfig(steps=40, batch_size=16, lr=1e-2, warmup_steps=5,
                                                                     eval_every=40, precision=precision), progress=False)
    assert all(math.isfinite(x) for x in history["loss"])
    assert history["val_loss"][-1] < 2.5  # from log(30) = 3.4
    assert model.token_embedding.weight.dtype == torch.float32  # autocast: the weights stay float32


def test_fp16_uses_a_gradient_scaler_that_skips_overflowing_steps():
    model = tiny()
    with torch.no_grad():
        model.lm_head.weight.mul_(1e4)  # logits far beyond float16's range: the first steps overflow
    history = pretrain(model, stream(), config=TrainConfig(steps=3, batch_size=8, precision="fp16", warmup_steps=0),
                       progress=False)
    assert len(history["loss"]) == 3  # the scaler skipped the bad steps instead of writing inf into the weights
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_resume_continues_bitwise(tmp_path):
    """A run stopped at step 20 and resumed to 40 ends with the weights of an uninterrupted 40-step run."""
    ids, val = stream(), stream(400, 1)
    tokenizer = CharTokenizer("".join(chr(65 + i) for i in range(30)))
    config = TrainConfig(steps=40, batch_size=8, lr=1e-2, warmup_steps=5, eval_every=10, weight_decay=0.1)

    whole = tiny(dropout=0.1)  # dropout: the random state must be restored too
    full = pretrain(whole, ids, val, config, progress=False)

    first = tiny(dropout=0.1)
    part = pretrain(first, ids, val, config, out=tmp_path / "run.pt", tokenizer=tokenizer, progress=False, stop_after=20)
    assert part["interrupted"] and part["step"][-1] == 20
    assert load_training_state(tmp_path / "run.pt")["step"] == 20
    resumed_model, _ = load_checkpoint(tmp_path / "run.pt")
    resumed = pretrain(resumed_model, ids, val, config, out=tmp_path / "run.pt", tokenizer=tokenizer,
                       resume_from=tmp_path / "run.pt", progress=False)
    assert resumed["loss"] == full["loss"] and resumed["val_loss"] == full["val_loss"]
    for (name, a), b in zip(whole.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), name

    # Positive control: the same resume with a fresh batch generator is NOT bitwise equal
    data = torch.load(tmp_path / "run.pt", weights_only=True)
    assert data["training"]["step"] == 40
    part = pretrain(tiny(dropout=0.1), ids, val, config, out=tmp_path / "again.pt", tokenizer=tokenizer,
                    progress=False, stop_after=20)
    data = torch.load(tmp_path / "again.pt", weights_only=True)
    data["training"]["generator"] = torch.Generator().manual_seed(123).get_state()
    torch.save(data, tmp_path / "tampered.pt")
    other, _ = load_checkpoint(tmp_path / "tampered.pt")
    pretrain(other, ids, val, config, resume_from=tmp_path / "tampered.pt", progress=False)
    assert not torch.equal(other.token_embedding.weight, whole.token_embedding.weight)


def test_ctrl_c_saves_a_resumable_checkpoint(tmp_path):
    ids, tokenizer = stream(), CharTokenizer("".join(chr(65 + i) for i in range(30)))
    config = TrainConfig(steps=30, batch_size=8, eval_every=10, save_every=10)

    def interrupt(record):
        if record["step"] == 20:
            raise KeyboardInterrupt

    history = pretrain(tiny(), ids, stream(400, 1), config, out=tmp_path / "c.pt", tokenizer=tokenizer,
                       progress=False, on_log=interrupt)
    assert history["interrupted"] and history["step"][-1] == 20
    assert load_training_state(tmp_path / "c.pt")["step"] == 20
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_resume_refuses_what_it_cannot_continue(tmp_path):
    model, tokenizer = tiny(), CharTokenizer("".join(chr(65 + i) for i in range(30)))
    save_checkpoint(tmp_path / "plain.pt", model, tokenizer)
    with pytest.raises(ValueError, match="no training state to resume"):
        pretrain(model, stream(), config=TrainConfig(steps=2, batch_size=2), resume_from=tmp_path / "plain.pt", progress=False)
    pretrain(model, stream(), config=TrainConfig(steps=2, batch_size=2), out=tmp_path / "t.pt", tokenizer=tokenizer,
             progress=False)
    with pytest.raises(ValueError, match="different GPTConfig"):
        pretrain(tiny(d_model=16), stream(), config=TrainConfig(steps=2, batch_size=2), resume_from=tmp_path / "t.pt",
                 progress=False)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="is not a course checkpoint"):
        load_training_state(tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="ids outside"):
        pretrain(tiny(), torch.arange(100), config=TrainConfig(steps=1, batch_size=2), progress=False)
    with pytest.raises(ValueError, match="multiple of grad_accum"):
        TrainConfig(batch_size=6, grad_accum=4)


def test_torch_compile_is_an_opt_in_with_the_same_losses(monkeypatch):
    """compile=True traces the model with TorchDynamo and AOTAutograd, forward and backward, and trains to
    the same losses. (The "aot_eager" backend stops short of Inductor's code generation, PyTorch's own
    business, which takes half a minute of C++ compilation on a cold 2-core machine.)"""
    calls = []
    real_compile = torch.compile

    def compile_for_the_test(model, **kwargs):
        calls.append(kwargs)
        return real_compile(model, backend="aot_eager", **kwargs)

    monkeypatch.setattr(torch, "compile", compile_for_the_test)
    torch._dynamo.reset()
    losses = []
    for compiled in (False, True):
        model = tiny()
        config = TrainConfig(steps=4, batch_size=8, lr=1e-2, warmup_steps=0, compile=compiled)
        losses.append(pretrain(model, stream(), config=config, progress=False)["loss"])
    assert len(calls) == 1  # only when asked
    assert losses[0] == pytest.approx(losses[1], abs=1e-4)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # something was really traced


def _train_cli(tmp_path, name, nproc, *extra):
    text = "".join(f"{'ab' * (i % 7)} line {i} of a small text\n" for i in range(400))
    (tmp_path / "text.txt").write_text(text)
    flags = ["train", "--tokenizer", "char", "--data", str(tmp_path / "text.txt"), "--out", str(tmp_path / name),
             "--steps", "12", "--batch-size", "8", "--context-length", "16", "--d-model", "32", "--n-layers", "2",
             "--d-ff", "64", "--eval-every", "6", "--warmup-steps", "2", "--lr", "0.01", "--no-progress", *extra]
    command = [sys.executable, "-m", "course_lib", *flags]
    if nproc > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
                   "-m", "course_lib", *flags]
    returncode, stdout, stderr = run_to_the_end(command, tmp_path, 120 * TIME_SCALE)
    assert returncode == 0, stderr[:2500] + "\n...\n" + stderr[-1500:]  # the failing rank's own error, then torchrun's
    return stdout, torch.load(tmp_path / name, weights_only=True)


def test_ddp_on_two_cpu_processes_equals_one_process_with_the_same_global_batch(tmp_path):
    out1, one = _train_cli(tmp_path, "one.pt", 1)
    out2, two = _train_cli(tmp_path, "two.pt", 2)
    assert "x 2 processes" in out2 and out2.count("step ") == out1.count("step ") == 2  # rank 0 alone prints
    loss1, loss2 = one["training"]["history"]["loss"], two["training"]["history"]["loss"]
    assert len(loss1) == len(loss2) == 12 and loss2 == pytest.approx(loss1, abs=1e-5)
    assert loss1[-1] < loss1[0] - 0.5  # it learned something
    for name, weight in comparable(one["state_dict"]).items():
        torch.testing.assert_close(two["state_dict"][name], weight, atol=1e-5, rtol=1e-4, msg=name)
    assert len(two["training"]["rng"]) == 2  # every process's random state, for an exact resume
    # Positive control: the batch one process would see if the ranks drew the same rows (half the
    # global batch) gives another curve, well outside the tolerance above
    _, half = _train_cli(tmp_path, "half.pt", 1, "--batch-size", "4")
    assert half["training"]["history"]["loss"] != pytest.approx(loss1, abs=1e-3)
