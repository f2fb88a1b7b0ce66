"""Seconds per training step of the course's GPT: the optimizer as it was (a Python loop over the
parameters) against ``make_optimizer`` (PyTorch's fused AdamW), in the same process.

Two models on random data: the course's default as notebook 07 trains it (2 layers x 64, lang.txt's
134 words, the 20 sentences of 16 tokens as one batch) and a mid-size one (4 layers x 128, context
64, batch 16, vocabulary 1000). Each variant runs 5 warm-up steps, then the median of 5 runs of 20
steps is printed, with the share of a step that the optimizer takes.

    python benchmarks/train_step.py
"""
import statistics
import time

import torch
from _machine import describe

import course_lib
from course_lib.gpt import GPT, GPTConfig
from course_lib.training import make_optimizer, train_step

SIZES = {  # name: (GPTConfig fields, batch, sequence length)
    "course default (notebook 07)": (dict(vocab_size=134), 20, 16),
    "mid-size": (dict(vocab_size=1000, context_length=64, d_model=128, n_heads=4, n_layers=4, d_ff=512), 16, 64),
}
STEPS, RUNS = 20, 5


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def seconds_per_step(make, device, size, optimizer_only=False):
    config, batch, length = SIZES[size]
    course_lib.seed_everything(0)
    model = GPT(GPTConfig(**config)).to(device)
    optimizer = make(model)
    x = torch.randint(0, config["vocab_size"], (batch, length), device=device)
    y = torch.randint(0, config["vocab_size"], (batch, length), device=device)
    for _ in range(5):
        train_step(model, optimizer, x, y)
    times = []
    for _ in range(RUNS):
        sync(device)
        started = time.perf_counter()
        for _ in range(STEPS):
            if optimizer_only:
                optimizer.step()  # the gradients of the last step are still there
            else:
                train_step(model, optimizer, x, y)
        sync(device)
        times.append((time.perf_counter() - started) / STEPS)
    return statistics.median(times)


def main():
    device = course_lib.get_device()
    print(describe(device))
    print(f"median of {RUNS} runs of {STEPS} steps\n")
    variants = {
        "AdamW, for-loop (before)": lambda m: torch.optim.AdamW(m.parameters(), lr=1e-3, foreach=False),
        "make_optimizer (fused)": lambda m: make_optimizer(m, lr=1e-3),
    }
    print(f"{'model':30s} {'optimizer':28s} {'ms/step':>8s} {'optimizer ms':>13s} {'share':>6s}")
    for size in SIZES:
        for name, make in variants.items():
            step = seconds_per_step(make, device, size)
            opt = seconds_per_step(make, device, size, optimizer_only=True)
            print(f"{size:30s} {name:28s} {1e3 * step:8.2f} {1e3 * opt:13.2f} {opt / step:6.0%}")


if __name__ == "__main__":
    main()
