"""python -m course_lib train / sample, end to end, and every error path: one line, non-zero exit."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TIME_SCALE, sigint_reaches_the_child

from course_lib.cli import main
from course_lib.training import load_checkpoint

ROOT = Path(__file__).resolve().parent.parent


def run(*args, timeout=300 * TIME_SCALE):
    return subprocess.run([sys.executable, "-m", "course_lib", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, "COURSE_DEVICE": "cpu"})


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "lang.pt"
    result = run("train", "--data", "data/lang.txt", "--out", out, "--steps", 150, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "checkpoint saved" in result.stdout and "x floor" in result.stdout
    return out


def test_train_then_sample(checkpoint):
    model, tokenizer = load_checkpoint(checkpoint)
    assert model.config.d_model == 64 and len(tokenizer) == 134
    result = run("sample", "--checkpoint", checkpoint, "--prompt", "Python", "--temperature", 0.8, "--top-k", 10)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Python is a popular programming language."
    greedy = run("sample", "--checkpoint", checkpoint, "--prompt", "I", "--temperature", 0, "--num-samples", 2)
    lines = greedy.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0] == lines[1] and lines[0].startswith("I ")


def test_sample_names_unknown_words(checkpoint):
    result = run("sample", "--checkpoint", checkpoint, "--prompt", "Python rocks", "--max-new-tokens", 3)
    assert result.returncode == 0 and "not in the vocabulary, read as <unk>: rocks" in result.stderr


def test_help_documents_every_flag():
    for command, flags in [("train", ["--data", "--out", "--steps", "--lr", "--batch-size", "--context-length", "--d-model",
                                      "--n-heads", "--n-layers", "--d-ff", "--dropout", "--positions", "--eval-every",
                                      "--seed", "--device", "--no-progress", "--tokenizer", "--bpe-vocab-size",
                                      "--val-fraction", "--resume", "--grad-accum", "--min-lr", "--warmup-steps",
                                      "--lr-decay-steps", "--weight-decay", "--beta1", "--beta2", "--clip-grad",
                                      "--precision", "--compile", "--eval-windows", "--save-every"]),
                           ("sample", ["--checkpoint", "--prompt", "--temperature", "--top-k", "--top-p",
                                       "--max-new-tokens", "--num-samples", "--seed", "--device"])]:
        result = run(command, "--help")
        assert result.returncode == 0
        for flag in flags:
            assert flag in result.stdout, (command, flag)


def one_line_error(result, *words):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def expect_one_line_errors(cases, capsys):
    """Run each ``(argv, words)`` in this process: a non-zero exit, one line on stderr holding every word."""
    for argv, words in cases:
        code = main([str(a) for a in argv])
        err = capsys.readouterr().err
        assert code != 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1, (argv, err)
        for word in words:
            assert word in err, (argv, word, err)


def test_error_paths(tmp_path, checkpoint, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    out = tmp_path / "x.pt"
    # In a real process: exit code, stderr, no traceback.
    one_line_error(run("train", "--data", tmp_path / "missing.txt", "--out", out), "no such file")
    one_line_error(run("sample", "--checkpoint", latin), "not a course checkpoint")
    one_line_error(run("bake"), "invalid choice")
    # The rest in this process (the same main(), without starting Python and torch each time).
    lang = "data/lang.txt"
    cases = [
        (("train", "--data", empty, "--out", out), ["has no text"]),
        (("train", "--data", latin, "--out", out), ["not UTF-8", "0xe9"]),
        (("train", "--data", lang, "--out", out, "--steps", "many"), ["--steps", "expected an integer"]),
        (("train", "--data", lang, "--out", out, "--lr", "0"), ["--lr", "must be > 0"]),
        (("train", "--data", lang, "--out", out, "--n-heads", 5), ["--n-heads=5 does not divide --d-model=64"]),
        (("train", "--data", lang, "--out", out, "--context-length", 8), ["--context-length must be at least 16"]),
        (("train", "--data", lang, "--out", out, "--positions", "rotary"), ["--positions"]),
        (("train", "--out", out), ["--data"]),
        (("sample", "--checkpoint", tmp_path / "none.pt"), ["no such file"]),
        (("sample", "--checkpoint", checkpoint, "--temperature", "-0.5"), ["--temperature", "must be >= 0"]),
        (("sample", "--checkpoint", checkpoint, "--top-k", 0), ["--top-k", "must be >= 1"]),
        (("sample", "--checkpoint", checkpoint, "--top-p", 1.5), ["--top-p", "must be <= 1"]),
        (("sample", "--checkpoint", checkpoint, "--device", "tpu"), ["--device='tpu'", "expected one of cpu, cuda, mps"]),
    ]
    shakespeare = "data/shakespeare.txt"
    short = tmp_path / "short.txt"
    short.write_text("To be, or not to be, that is the question.\n" * 20)
    cases += [
        (("train", "--data", lang, "--out", out, "--precision", "bf16"), ["--precision", "--tokenizer char or bpe"]),
        (("train", "--data", lang, "--out", out, "--resume", out), ["--resume", "continuous text only"]),
        (("train", "--tokenizer", "char", "--data", empty, "--out", out), ["has no text"]),
        (("train", "--tokenizer", "char", "--data", latin, "--out", out), ["not UTF-8"]),
        (("train", "--tokenizer", "char", "--data", short, "--out", out), ["held-out tail", "--context-length 128"]),
        (("train", "--tokenizer", "char", "--data", shakespeare, "--out", out, "--batch-size", 6, "--grad-accum", 4),
         ["--batch-size=6 must be a multiple of --grad-accum=4"]),
        (("train", "--tokenizer", "char", "--data", shakespeare, "--out", out, "--min-lr", 1), ["--min-lr must be <= 0.001"]),
        (("train", "--tokenizer", "char", "--data", shakespeare, "--out", out, "--resume", tmp_path / "no.pt"),
         ["--resume", "no such file"]),
        (("train", "--tokenizer", "char", "--data", shakespeare, "--out", out, "--resume", checkpoint),
         ["--resume", "no training state to resume"]),
        (("train", "--tokenizer", "bpe", "--data", shakespeare, "--out", out, "--bpe-vocab-size", 100), ["must be >= 257"]),
        (("train", "--tokenizer", "char", "--data", shakespeare, "--out", shakespeare), ["is the --data file"]),
    ]
    expect_one_line_errors(cases, capsys)
    assert not out.exists()


def _cpu_seconds(pid):
    """CPU time a process has used (Linux's /proc; elsewhere wall time stands in)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    except (OSError, IndexError, ValueError):
        return time.monotonic()


@pytest.mark.parametrize("wait", [0.0, 3.0], ids=["right-after-the-banner", "during-training"])
def test_ctrl_c_saves_the_checkpoint(tmp_path, wait):
    # Right after the banner, the optimizer may still be being built: Ctrl-C must be handled there too.
    out = tmp_path / "interrupted.pt"
    process = subprocess.Popen(
        [sys.executable, "-m", "course_lib", "train", "--data", "data/lang.txt", "--out", str(out),
         "--steps", "1000000", "--no-progress"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "COURSE_DEVICE": "cpu"}, preexec_fn=sigint_reaches_the_child)
    assert process.stdout.readline().startswith("training on")  # the banner: training is about to begin
    if wait:  # until it has computed for `wait` seconds (step 1 comes after 1-2): wall time, a busy machine stretches
        started, deadline = _cpu_seconds(process.pid), time.monotonic() + 60 * TIME_SCALE
        while _cpu_seconds(process.pid) - started < wait and time.monotonic() < deadline:
            time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    try:
        stdout, stderr = process.communicate(timeout=120 * TIME_SCALE)
    finally:
        process.kill()  # never leave a training run behind (a no-op once it has exited)
    assert process.returncode == 130, stderr
    assert "interrupted at step" in stdout and "Traceback" not in stderr
    model, tokenizer = load_checkpoint(out)
    assert len(tokenizer) == 134
    if wait:
        assert int(stdout.split("interrupted at step ")[1].split(":")[0]) > 0


def test_continuous_text_train_resume_and_sample(tmp_path):
    """--tokenizer char: train 20 steps of 40, resume to 40 (bitwise equal to 40 in one go), sample."""
    common = ["train", "--tokenizer", "char", "--data", "data/shakespeare.txt", "--batch-size", 4, "--context-length", 32,
              "--d-model", 32, "--n-layers", 1, "--d-ff", 64, "--eval-every", 20, "--eval-windows", 4,
              "--lr-decay-steps", 40, "--warmup-steps", 5, "--no-progress"]
    whole = run(*common, "--out", tmp_path / "whole.pt", "--steps", 40)
    assert whole.returncode == 0, whole.stderr
    assert "char tokenizer (" in whole.stdout and "bits/char" in whole.stdout and "tokens/s" in whole.stdout
    first = run(*common, "--out", tmp_path / "part.pt", "--steps", 20)
    assert first.returncode == 0, first.stderr
    changed = run(*common, "--out", tmp_path / "part.pt", "--steps", 40, "--resume", tmp_path / "part.pt", "--lr", 0.5)
    one_line_error(changed, "only --steps may change", "--lr")
    one_line_error(run(*common, "--out", tmp_path / "part.pt", "--resume", tmp_path / "part.pt", "--d-model", 64),
                   "flags differ from it: --d-model")
    resumed = run(*common, "--out", tmp_path / "part.pt", "--resume", tmp_path / "part.pt", "--steps", 40)  # the same command, resumed
    assert resumed.returncode == 0, resumed.stderr
    a, _ = load_checkpoint(tmp_path / "whole.pt")
    b, tokenizer = load_checkpoint(tmp_path / "part.pt")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name
    sample = run("sample", "--checkpoint", tmp_path / "part.pt", "--prompt", "ROMEO:", "--max-new-tokens", 25)
    assert sample.returncode == 0 and sample.stdout.startswith("ROMEO:") and len(sample.stdout.rstrip("\n")) == 31
    one_line_error(run("sample", "--checkpoint", tmp_path / "part.pt", "--prompt", "\u2603"), "--prompt", "not built with")
