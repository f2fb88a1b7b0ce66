"""Tokens per second of generation with and without the KV cache, and the tokens they produce.

A GPT with random weights (timing does not need training): context 512 tokens, 4 layers,
d_model 256, 8 heads, d_ff 1024. From a 1-token prompt, then from a 256-token prompt, it generates
256 new tokens greedily, uncached (the whole context recomputed at every step) and cached (one
token per step), checks that both produce the same tokens, and prints the speeds and their ratio
(best of 5 runs each). The speed of generation counts the prompt's processing too.

    python benchmarks/generation.py
"""
import time

import torch
from _machine import describe

import course_lib
from course_lib.gpt import GPT, GPTConfig
from course_lib.sampling import generate

CONFIG = dict(vocab_size=1000, context_length=512, d_model=256, n_heads=8, n_layers=4, d_ff=1024)
NEW_TOKENS = 256




def best_time(model, prompt, use_cache, repeats=5):
    best, tokens = float("inf"), None
    for _ in range(repeats):
        if prompt.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        tokens = generate(model, prompt, NEW_TOKENS, temperature=0, use_cache=use_cache)
        if prompt.device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, tokens


def measure(device=None, prompt_length=1):
    device = device or course_lib.get_device()
    course_lib.seed_everything(0)
    model = GPT(GPTConfig(**CONFIG)).to(device).eval()
    prompt = torch.randint(0, CONFIG["vocab_size"], (prompt_length,), device=device)
    generate(model, prompt, 8, temperature=0)  # warm up
    uncached_s, uncached = best_time(model, prompt, use_cache=False)
    cached_s, cached = best_time(model, prompt, use_cache=True)
    return {"device": str(device), "prompt_length": prompt_length,
            "uncached_tok_s": NEW_TOKENS / uncached_s, "cached_tok_s": NEW_TOKENS / cached_s,
            "speedup": uncached_s / cached_s, "same_tokens": torch.equal(cached, uncached)}


def main():
    results = [measure(prompt_length=n) for n in (1, 256)]
    print(describe(results[0]["device"]))
    print(f"model: {CONFIG}; {NEW_TOKENS} new tokens, greedy, best of 5\n")
    print(f"{'prompt':>7s} {'uncached tok/s':>15s} {'KV cache tok/s':>15s} {'speed-up':>9s} {'same tokens':>12s}")
    for r in results:
        print(f"{r['prompt_length']:7d} {r['uncached_tok_s']:15.1f} {r['cached_tok_s']:15.1f} "
              f"{r['speedup']:8.1f}x {str(r['same_tokens']):>12s}")


if __name__ == "__main__":
    main()
