"""Chat templates that belong to a model: ChatML, the template of SmolLM2, Qwen and many others (notebook 18).

A chat model reads a conversation in the one format it was fine-tuned on; that format is part of
the model, as much as its weights. The course's own models use the course's markers (notebook 14,
``course_lib.chat``); a model read from a GGUF file carries its template with its tokenizer
(``tokenizer.chat_template``), and ``course_lib.chat.chat`` asks the tokenizer for it.

A template is any object with these methods (``course_lib.chat.CourseTemplate`` is the other one):

- ``encode(tokenizer, turns) -> (ids, learned)``: the template's token ids of whole turns, and for
  each id whether it is the assistant's to learn (its text and its end-of-turn token); the turns
  are checked by the caller, and may be one turn alone (``fit_turns`` measures them one by one);
- ``generation_prompt(tokenizer) -> ids``: what asks the model for the assistant's turn;
- ``ends_turn(tokenizer, token_id) -> bool``: whether generating this token ends the reply;
- ``with_default_system(turns) -> turns``: the turns the model sees when the caller gives no
  system turn (ChatML models were tuned with a default one);
- ``render(turns, add_generation_prompt=False) -> str``: the same, as text, for reading.
"""
from .dialogue import check_turns


class ChatML:
    """``<|im_start|>role\\ncontent<|im_end|>\\n`` for every turn; ``<|im_start|>assistant\\n`` asks for a reply (notebook 18).

    ``start_id`` and ``end_id`` are the ids of ``<|im_start|>`` and ``<|im_end|>``; ``stop_ids`` the
    tokens that end a reply (``<|im_end|>``, and every other control token: ``<|endoftext|>``, a
    new ``<|im_start|>``...). ``default_system`` is written as the first turn when the
    conversation has no system turn, as the model's own Jinja template does (for SmolLM2: "You are
    a helpful AI assistant named SmolLM, trained by Hugging Face"). Equal to ``transformers``'
    ``apply_chat_template`` for the same messages (tested).
    """

    START, END = "<|im_start|>", "<|im_end|>"

    def __init__(self, start_id, end_id, stop_ids=(), default_system=None):
        self.start_id, self.end_id = int(start_id), int(end_id)
        self.stop_ids = frozenset(int(i) for i in stop_ids) | {self.end_id, self.start_id}
        if default_system is not None and not isinstance(default_system, str):
            raise TypeError(f"default_system must be a str or None, got {type(default_system).__name__}")
        self.default_system = default_system

    def with_default_system(self, turns):
        if self.default_system is None or (turns and turns[0]["role"] == "system"):
            return list(turns)
        return [{"role": "system", "content": self.default_system}] + list(turns)

    def encode(self, tokenizer, turns):
        ids, learned = [], []
        newline = tokenizer.encode("\n")
        for turn in turns:  # checked by the caller (chat.encode_turns); fit_turns measures single turns
            header = tokenizer.encode(turn["role"] + "\n")
            # Encoded as one text, as transformers does with the rendered string: a merge may join the
            # header's "\n" to the text, so the header's length is checked, not assumed.
            body = tokenizer.encode(turn["role"] + "\n" + turn["content"])
            own = len(header) if body[:len(header)] == header else 0
            is_assistant = turn["role"] == "assistant"
            ids += [self.start_id] + body + [self.end_id] + newline
            learned += [False] * (1 + own) + [is_assistant] * (len(body) - own + 1) + [False] * len(newline)
        return ids, learned

    def generation_prompt(self, tokenizer):
        return [self.start_id] + tokenizer.encode("assistant\n")

    def ends_turn(self, tokenizer, token_id):
        return token_id in self.stop_ids

    def render(self, turns, add_generation_prompt=False):
        text = "".join(f"{self.START}{t['role']}\n{t['content']}{self.END}\n" for t in check_turns(turns))
        return text + (f"{self.START}assistant\n" if add_generation_prompt else "")

    def __repr__(self):
        return f"ChatML(start_id={self.start_id}, end_id={self.end_id}, default_system={self.default_system!r})"
