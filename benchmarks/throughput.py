"""Training throughput (tokens/s) of the course's GPT against a nanoGPT-style reference, side by side.

The same shapes (context 256, 4 blocks of width 128 on a CPU; nanoGPT's shakespeare_char model on a
GPU), the same batches, the same fused AdamW and, on a GPU, the same bfloat16 autocast, in the same
process. The two models alternate, run by run, so a machine that slows down mid-way slows both.
Prints the median of RUNS runs of STEPS steps, and the ratio (the course's goal: >= 0.95).

    python benchmarks/throughput.py
"""
import statistics
import time

import torch
from _machine import describe
from reference_gpt import ReferenceGPT

import course_lib
from course_lib.gpt import GPT, GPTConfig
from course_lib.pretraining import model_flops_per_token, peak_flops, resolve_precision

STEPS, RUNS = 10, 5
CPU_SHAPE = dict(vocab_size=76, context_length=256, d_model=128, n_heads=4, n_layers=4, d_ff=512)
GPU_SHAPE = dict(vocab_size=76, context_length=256, d_model=384, n_heads=6, n_layers=6, d_ff=1536)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def make(kind, shape, device):
    course_lib.seed_everything(0)
    if kind == "course":
        model = GPT(GPTConfig(**shape, positions="learned", scale_embeddings=False))
    else:
        model = ReferenceGPT(**shape)
    model.to(device).train()
    return model, torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)


def step(model, optimizer, x, y, dtype):
    with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
        _, loss = model(x, y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss


def main():
    device = course_lib.get_device()
    shape = GPU_SHAPE if device.type == "cuda" else CPU_SHAPE
    batch = 64 if device.type == "cuda" else 8
    dtype, _ = resolve_precision("auto", device)
    print(describe(device))
    print(f"shape {shape}, batch {batch}, {str(dtype).replace('torch.', '') if dtype else 'float32'}; "
          f"median of {RUNS} runs of {STEPS} steps\n")
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, shape["vocab_size"], (batch, shape["context_length"]), generator=g).to(device)
    y = torch.randint(0, shape["vocab_size"], (batch, shape["context_length"]), generator=g).to(device)
    models = {kind: make(kind, shape, device) for kind in ("course", "reference")}
    for model, optimizer in models.values():
        for _ in range(3):  # warm-up: allocator, kernels, autotuning
            step(model, optimizer, x, y, dtype)
    times = {kind: [] for kind in models}
    for _ in range(RUNS):
        for kind, (model, optimizer) in models.items():
            sync(device)
            started = time.perf_counter()
            for _ in range(STEPS):
                loss = step(model, optimizer, x, y, dtype)
            loss.item()
            sync(device)
            times[kind].append(time.perf_counter() - started)
    tokens = STEPS * batch * shape["context_length"]
    rates = {kind: tokens / statistics.median(t) for kind, t in times.items()}
    peak = peak_flops(device, dtype)
    flops = model_flops_per_token(GPTConfig(**shape))
    for kind, rate in rates.items():
        mfu = f"  MFU {flops * rate / peak:5.1%}" if peak else ""
        print(f"{kind:10s} {rate:12,.0f} tokens/s{mfu}")
    print(f"\ncourse / reference = {rates['course'] / rates['reference']:.2f}")


if __name__ == "__main__":
    main()
