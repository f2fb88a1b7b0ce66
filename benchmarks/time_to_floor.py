"""Steps and seconds for a GPT to reach 1.02x the corpus floor on lang.txt.

Compares the course's default configuration (notebook 07) with an independent nanoGPT-style model of
the same size trained by the same loop (``reference_gpt.py``), with the course's model before the
sqrt(d_model) embedding scale (notebook 06), and with the seed's configuration: 6 layers, d_model
512, d_ff 2048, 8 heads, batch 3, Adam at lr 1e-4, 500 steps. Prints the steps and training seconds to
reach 1.02x the floor, or the loss reached when the step budget runs out. The corpus loss is
measured every few steps and its time is not counted.

    python benchmarks/time_to_floor.py            # both configurations
    python benchmarks/time_to_floor.py --quick    # the course's configuration only
"""
import argparse

from _machine import describe
from reference_gpt import ReferenceGPT

import course_lib
from course_lib.data import load_sentences
from course_lib.gpt import GPT, GPTConfig
from course_lib.tokenizer import WordTokenizer, make_batch
from course_lib.training import DEFAULT_LR, corpus_floor, train

RUNS = {
    "course default": dict(config={}, lr=DEFAULT_LR, batch_size=None, steps=1000, eval_every=5),
    "reference (nanoGPT-style)": dict(reference=True, lr=DEFAULT_LR, batch_size=None, steps=1000, eval_every=5),
    "course, unscaled embeddings": dict(config=dict(scale_embeddings=False), lr=DEFAULT_LR, batch_size=None,
                                        steps=1000, eval_every=5),
    "seed (6x512, batch 3)": dict(config=dict(d_model=512, n_heads=8, n_layers=6, d_ff=2048, positions="learned"),
                                  lr=1e-4, batch_size=3, steps=500, eval_every=25),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="leave out the seed's (slow) configuration")
    args = parser.parse_args()
    sentences = load_sentences("lang.txt")
    tokenizer = WordTokenizer.from_sentences(sentences)
    data = make_batch(tokenizer, sentences)
    floor = corpus_floor(tokenizer, sentences)
    device = course_lib.get_device()
    print(describe(device))
    print(f"corpus floor {floor:.4f} nats/token; target 1.02x = {1.02 * floor:.4f}\n")
    print(f"{'configuration':28s} {'params':>10s} {'steps':>6s} {'seconds':>8s} {'loss':>7s} {'x floor':>8s}")
    for name, run in RUNS.items():
        if args.quick and name.startswith("seed"):
            continue
        course_lib.seed_everything(0)
        if run.get("reference"):
            model = ReferenceGPT(len(tokenizer)).to(device)
        else:
            model = GPT(GPTConfig(vocab_size=len(tokenizer), **run["config"])).to(device)
        history = train(model, data, steps=run["steps"], lr=run["lr"], batch_size=run["batch_size"],
                        pad_id=tokenizer.pad_id, eval_every=run["eval_every"], stop_at=1.02 * floor, progress=False)
        loss = history["eval_loss"][-1]
        reached = loss <= 1.02 * floor
        steps = f"{history['eval_step'][-1]}" if reached else f">{run['steps']}"
        params = sum(p.numel() for p in model.parameters())
        print(f"{name:28s} {params:10,d} {steps:>6s} {history['seconds']:8.2f} {loss:7.4f} {loss / floor:8.3f}"
              + ("" if reached else "   (budget ran out)"))


if __name__ == "__main__":
    main()
