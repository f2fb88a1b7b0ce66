"""Write data/stories.txt: simple sentences from a small grammar, for notebook 10.

The text is made by this project (same licence as the repository, MIT) from the word lists below
with a fixed seed, so it is reproducible byte for byte: ``python tools/make_stories.py``. Every
sentence follows a handful of patterns, so a model can learn the patterns and predict sentences it
has never seen, unlike lang.txt, where the only thing to learn is twenty particular sentences.
"""
import random
from pathlib import Path

SUBJECTS = ["the cat", "the dog", "a small robot", "my sister", "the old teacher", "a young student",
            "the farmer", "our neighbour", "the baker", "a tired engineer", "the painter", "my grandfather",
            "the little bird", "a clever fox", "the doctor", "the pilot"]
VERBS = ["finds", "likes", "carries", "watches", "paints", "cleans", "builds", "follows", "reads", "hides",
         "repairs", "draws", "sells", "buys", "needs", "forgets"]
OBJECTS = ["a red ball", "the blue box", "an old map", "a wooden chair", "the broken clock", "a green apple",
           "a long letter", "the heavy bag", "a warm coat", "the yellow kite", "a paper boat", "the silver key",
           "a new book", "the big table", "a small lamp", "the garden gate"]
PLACES = ["in the garden", "near the river", "at the market", "in the kitchen", "on the hill", "under the bridge",
          "in the library", "at the station", "behind the house", "in the park", "by the lake", "at school"]
TIMES = ["in the morning", "every evening", "on monday", "after lunch", "before dinner", "at night",
         "on a rainy day", "in the summer"]
ADJECTIVES = ["happy", "busy", "quiet", "curious", "hungry", "careful", "sleepy", "brave"]
REASONS = ["the road is long", "the day is cold", "the work is hard", "the music is loud", "the weather is nice",
           "everyone else is busy"]


def sentence(rng):
    s, v, o, p, t = (rng.choice(x) for x in (SUBJECTS, VERBS, OBJECTS, PLACES, TIMES))
    a, r = rng.choice(ADJECTIVES), rng.choice(REASONS)
    pattern = rng.randrange(6)
    if pattern == 0:
        return f"{s} {v} {o} {p} ."
    if pattern == 1:
        return f"{t} , {s} {v} {o} ."
    if pattern == 2:
        return f"{s} is {a} because {r} ."
    if pattern == 3:
        return f"{s} {v} {o} {p} {t} ."
    if pattern == 4:
        return f"when {s} is {a} , {s} {v} {o} ."
    return f"{s} and {rng.choice(SUBJECTS)} {v.rstrip('s') if v.endswith('s') else v} {o} {p} ."


def main(n_sentences=4000, seed=2024):
    rng = random.Random(seed)
    lines = [sentence(rng).capitalize() for _ in range(n_sentences)]
    path = Path(__file__).resolve().parent.parent / "data" / "stories.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {path.name}: {len(lines)} sentences, {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
