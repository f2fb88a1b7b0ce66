"""finetune --task, rl and eval from a terminal (notebook 19): end to end, and every error path in one line."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TIME_SCALE, sigint_reaches_the_child
from test_cli import _cpu_seconds, expect_one_line_errors, one_line_error

from course_lib.chat import chat
from course_lib.cli import main
from course_lib.tasks import ArithmeticTask, arithmetic_tokenizer
from course_lib.training import load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parent.parent
SFT = ROOT / "data" / "arithmetic_sft.pt"


def run(*args, timeout=300 * TIME_SCALE):
    return subprocess.run([sys.executable, "-m", "course_lib", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, "COURSE_DEVICE": "cpu"})


def test_eval_prints_the_stored_start_and_json_for_programs(capsys):
    assert main(["eval", "--checkpoint", str(SFT), "--task", "arithmetic", "--json"]) == 0
    result = capsys.readouterr()
    figures = json.loads(result.out.strip().splitlines()[-1])
    assert figures["arithmetic_acc"] == pytest.approx(0.526, abs=0.01)  # data/README.md's figure (a near-tie may flip)
    assert figures["problems"] == 500 and "held-out accuracy" in result.out


def test_finetune_task_from_scratch_then_rl_then_chat(tmp_path, capsys):
    sft, rl, dpo_out = tmp_path / "sft.pt", tmp_path / "rl.pt", tmp_path / "dpo.pt"
    assert main(["finetune", "--task", "arithmetic", "--out", str(sft), "--steps", "3", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "held-out accuracy 0.0% ->" in out and "checkpoint saved" in out
    model, tokenizer = load_checkpoint(sft)
    assert len(tokenizer) == len(arithmetic_tokenizer()) and model.config.d_model == 128
    # rl from the stored start: one GRPO step, and a checkpoint that load_checkpoint and chat() take
    assert main(["rl", "--checkpoint", str(SFT), "--task", "arithmetic", "--out", str(rl), "--steps", "1",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    before = float(re.search(r"held-out accuracy ([0-9.]+)% ->", out).group(1))
    assert before == pytest.approx(52.6, abs=1.0)  # the stored start, measured again
    model, tokenizer = load_checkpoint(rl)
    reply = chat(model, tokenizer, [], "What is 12 + 345?", temperature=0)
    assert reply.isdigit()
    assert main(["rl", "--checkpoint", str(SFT), "--task", "arithmetic", "--method", "dpo", "--out", str(dpo_out),
                 "--steps", "1", "--pairs", "64", "--no-progress"]) == 0
    assert "DPO on arithmetic" in capsys.readouterr().out
    assert ArithmeticTask(load_checkpoint(dpo_out)[1]).stop_id == tokenizer.id_of("<|end|>")


def test_error_paths(tmp_path, capsys):
    out = tmp_path / "x.pt"
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    one_line_error(run("rl", "--checkpoint", junk, "--task", "arithmetic", "--out", out), "not a course checkpoint")
    # a course checkpoint that is not a chat model, and a chat model whose tokenizer cannot write digits
    from conftest import small_gpt

    from course_lib.chat import chat_tokenizer
    from course_lib.tokenizer import CharTokenizer

    plain, letters = tmp_path / "plain.pt", tmp_path / "letters.pt"
    save_checkpoint(plain, small_gpt(vocab_size=20).float(), CharTokenizer("abcdefghijklmnopqrst"))
    save_checkpoint(letters, small_gpt(vocab_size=24).float(), chat_tokenizer(CharTokenizer("abcdefghijklmnopqrst")))
    cases = [
        (("rl", "--checkpoint", tmp_path / "none.pt", "--task", "arithmetic", "--out", out), ["no such file"]),
        (("rl", "--checkpoint", plain, "--task", "arithmetic", "--out", out), ["not a chat model"]),
        (("rl", "--checkpoint", letters, "--task", "arithmetic", "--out", out), ["cannot write the arithmetic task"]),
        (("rl", "--checkpoint", SFT, "--task", "arithmetic", "--out", SFT), ["is the --checkpoint"]),
        (("rl", "--checkpoint", SFT, "--task", "poetry", "--out", out), ["--task", "invalid choice"]),
        (("rl", "--checkpoint", SFT, "--task", "arithmetic", "--method", "ppo", "--out", out), ["--method"]),
        (("rl", "--checkpoint", SFT, "--task", "arithmetic", "--method", "dpo", "--beta", "0", "--out", out),
         ["--beta must be > 0 for DPO"]),
        (("rl", "--checkpoint", SFT, "--task", "arithmetic", "--out", tmp_path), ["is a folder"]),
        (("rl", "--checkpoint", SFT, "--out", out), ["--task"]),
        (("rl", "--checkpoint", SFT, "--task", "arithmetic", "--pairs", "10", "--out", out), ["--pairs is for --method dpo"]),
        (("eval", "--checkpoint", junk, "--task", "arithmetic"), ["not a course checkpoint"]),
        (("eval", "--checkpoint", plain, "--task", "arithmetic"), ["not a chat model"]),
        (("finetune", "--out", out), ["--base", "--data", "--task arithmetic"]),
        (("finetune", "--task", "arithmetic", "--data", "data/dialogues.jsonl", "--out", out), ["--data and --task"]),
        (("finetune", "--task", "arithmetic", "--base", plain, "--out", out), ["not a chat model"]),
        (("finetune", "--task", "arithmetic", "--out", out, "--steps", "-1"), ["--steps"]),
    ]
    expect_one_line_errors(cases, capsys)
    assert not out.exists()


def test_ctrl_c_during_grpo_keeps_the_run(tmp_path):
    out = tmp_path / "rl.pt"
    process = subprocess.Popen(
        [sys.executable, "-m", "course_lib", "rl", "--checkpoint", str(SFT), "--task", "arithmetic", "--out", str(out),
         "--steps", "100000", "--no-progress"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COURSE_DEVICE": "cpu"}, preexec_fn=sigint_reaches_the_child)
    assert process.stdout.readline().startswith("GRPO on arithmetic")
    started = _cpu_seconds(process.pid)
    deadline = time.monotonic() + 60 * TIME_SCALE
    while _cpu_seconds(process.pid) - started < 3.0 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    try:
        stdout, stderr = process.communicate(timeout=120 * TIME_SCALE)
    finally:
        process.kill()  # never leave a training run behind (a no-op once it has exited)
    assert process.returncode == 130, stderr
    assert "interrupted at step" in stdout and "Traceback" not in stderr
    model, tokenizer = load_checkpoint(out)
    assert load_checkpoint(out)[0].config == load_checkpoint(SFT)[0].config
