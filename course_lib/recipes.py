"""Ready-made models that several notebooks use, built the way the notebook that taught them did (notebook 15)."""
from pathlib import Path

from . import grading_run, seed_everything
from .bpe import BPETokenizer
from .chat import chat_tokenizer, dialogue_batch
from .data import data_path
from .dialogue import memory_dialogues
from .gpt import GPT, GPTConfig
from .training import load_checkpoint, save_checkpoint, train


def memory_chat_model(checkpoint=Path("runs") / "memory_chat.pt", device=None):
    """``(model, tokenizer, how)``: notebook 14's memory chat model, loaded from ``checkpoint`` or trained (notebook 15).

    Without the file, notebook 14's recipe runs (section 5: BPE on Shakespeare with the chat markers,
    2 blocks of 64, context 96, 300 steps on ``memory_dialogues()``, about 15 s on a CPU; 100 steps
    under autograding, ``course_lib.grading_run``) and the model is saved there. ``how`` says which.
    """
    checkpoint = Path(checkpoint)
    if checkpoint.is_file():
        model, tokenizer = load_checkpoint(checkpoint, device=device)
        return model, tokenizer, f"loaded {checkpoint}"
    tokenizer = chat_tokenizer(BPETokenizer.train(data_path("shakespeare.txt").read_text(encoding="utf-8"), 512))
    seed_everything(0)
    model = GPT(GPTConfig(vocab_size=len(tokenizer), context_length=96, d_model=64, n_heads=4, n_layers=2, d_ff=256,
                          positions="learned", scale_embeddings=False)).to(device or "cpu")
    steps = 100 if grading_run() else 300  # under nbgrader: fewer steps (the replies are not checked then)
    train(model, dialogue_batch(tokenizer, memory_dialogues()[0], 96), steps, lr=3e-3, batch_size=32, progress=False)
    save_checkpoint(checkpoint, model, tokenizer)
    return model, tokenizer, f"trained ({steps} steps) and saved {checkpoint}"
