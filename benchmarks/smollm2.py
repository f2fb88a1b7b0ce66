"""SmolLM2-135M-Instruct in the course's code against transformers' generate, and what quantization costs (notebook 18).

Part 1, generation (side by side in one process, the same weights read from the same GGUF file):
the course's ``generate`` with its KV cache, and ``transformers``' ``generate`` on its own Llama
(``AutoModelForCausalLM.from_pretrained(folder, gguf_file=...)``, float32, SDPA attention). From
a chat prompt, each writes 128 new tokens greedily (no early stop); the runs alternate, best of 3
each. Printed: time to first token (the prompt's processing and one token), the decoding speed
after it, and whether the two produced the same tokens.

Part 2, quantization: SmolLM2's held-out bits per byte (1,024 tokens of notebook 12's held-out
Shakespeare) with the file's weights as they are (Q4_1, embedding Q8_0), and re-quantized to
Q8_0, Q4_1 and Q4_0 (``course_lib.gguf.quantize_weights``); then the same for a course model
trained in float32 (notebook 12's checkpoint, ``runs/shakespeare.pt``, when it exists).

    python benchmarks/smollm2.py            # needs the test extra (transformers, gguf, accelerate)
"""
import math
import time
from pathlib import Path

import torch
from _machine import describe

from course_lib.data import data_path
from course_lib.gguf import fetch_smollm2, load_gguf, quantize_weights
from course_lib.sampling import generate
from course_lib.stream import encode_stream, split_text

NEW_TOKENS = 128
PROMPT = [{"role": "user", "content": "Write a short story about a robot who learns to paint."}]


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def course_run(model, prompt):
    first, _ = timed(lambda: generate(model, prompt, 1, temperature=0))
    total, out = timed(lambda: generate(model, prompt, NEW_TOKENS, temperature=0))
    return first, (NEW_TOKENS - 1) / max(total - first, 1e-9), out[len(prompt):].tolist()


def hf_run(model, prompt):
    ids = prompt[None]

    def run(n):
        return model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                              do_sample=False, pad_token_id=2)

    with torch.no_grad():
        first, _ = timed(lambda: run(1))
        total, out = timed(lambda: run(NEW_TOKENS))
    return first, (NEW_TOKENS - 1) / max(total - first, 1e-9), out[0, len(prompt):].tolist()


def bits_per_byte(model, ids, decode, n=1024):
    x = ids[:n + 1]
    with torch.no_grad():
        _, loss = model(x[None, :-1], x[None, 1:])
    return loss.item() * n / len(decode(x[1:].tolist()).encode("utf-8")) / math.log(2)


def main():
    import transformers

    path = fetch_smollm2()
    print(describe("cpu"))
    model, tokenizer = load_gguf(path)
    reference = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                                  torch_dtype=torch.float32).eval()
    template = tokenizer.chat_template
    prompt = torch.tensor(template.encode(tokenizer, template.with_default_system(PROMPT))[0]
                          + template.generation_prompt(tokenizer))
    print(f"\n1. Generation: prompt {len(prompt)} tokens, {NEW_TOKENS} new tokens, greedy, best of 3 (alternating)")
    best = {"course": (math.inf, 0.0, None), "transformers": (math.inf, 0.0, None)}
    for _ in range(3):
        for name, run, m in (("course", course_run, model), ("transformers", hf_run, reference)):
            first, speed, tokens = run(m, prompt)
            old = best[name]
            best[name] = (min(old[0], first), max(old[1], speed), tokens)
    print(f"{'':14s} {'first token':>12s} {'tokens/s after it':>18s}")
    for name, (first, speed, _) in best.items():
        print(f"{name:14s} {first * 1000:9.0f} ms {speed:18.1f}")
    same = best["course"][2] == best["transformers"][2]
    print(f"same {NEW_TOKENS} tokens: {same}; course / transformers speed: {best['course'][1] / best['transformers'][1]:.2f}x")

    print("\n2. Quantization (held-out Shakespeare, 1,024 tokens; bits per byte, lower is better)")
    _, val = split_text(data_path("shakespeare.txt").read_text(encoding="utf-8"), 0.1)
    ids = torch.tensor(tokenizer.encode(val[:4000]))
    print(f"{'SmolLM2 weights':28s} {'stored MB':>9s} {'bits/byte':>9s}")
    print(f"{'as in the file (Q4_1)':28s} {path.stat().st_size / 1e6:9.1f} {bits_per_byte(model, ids, tokenizer.decode):9.4f}")
    for kind in ("Q8_0", "Q4_1", "Q4_0"):
        copy, stored = quantize_weights(model, kind)
        print(f"{'re-quantized to ' + kind:28s} {stored / 1e6:9.1f} {bits_per_byte(copy, ids, tokenizer.decode):9.4f}")
    checkpoint = Path("runs") / "shakespeare.pt"
    if checkpoint.is_file():
        from course_lib.pretraining import evaluate_stream
        from course_lib.training import load_checkpoint

        course, chars = load_checkpoint(checkpoint)
        val_ids = encode_stream(chars, val)
        print(f"\n{'course model ' + checkpoint.name:28s} {'stored kB':>9s} {'bits/char':>9s}")
        for kind in ("F32", "Q8_0", "Q4_1", "Q4_0"):
            copy, stored = quantize_weights(course, kind)
            loss = evaluate_stream(copy, val_ids, course.config.context_length, max_windows=200)
            print(f"{kind:28s} {stored / 1e3:9.1f} {loss / math.log(2):9.4f}")
    else:
        print(f"\n(no {checkpoint}: run notebook 12 to add the course's float32 model to the table)")


if __name__ == "__main__":
    main()
