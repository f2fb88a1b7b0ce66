"""SmolLM2 through the course's chat stack: chat(), the chat command, and the server answering OpenAI's client (notebook 18)."""
import io

import pytest

from course_lib.chat import chat, fit_turns, stream_chat
from course_lib.cli import CourseError, build_parser, main
from course_lib.cli_chat import cmd_chat

QUESTION = "What is the capital of France?"
ANSWER = "The capital of France is Paris."


def test_chat_keeps_the_history_and_a_system_prompt(smollm2):
    model, tokenizer = smollm2
    history = [{"role": "user", "content": "My name is Ada."}, {"role": "assistant", "content": "Nice to meet you, Ada!"}]
    reply = chat(model, tokenizer, history, "What is my name?", temperature=0, max_new_tokens=20)
    assert "Ada" in reply
    stream = stream_chat(model, tokenizer, [{"role": "system", "content": "Answer in French."}], QUESTION, temperature=0,
                         max_new_tokens=5)
    assert "".join(stream) and stream.finish_reason == "length" and stream.completion_tokens == 5
    # the default system prompt is added only when the caller gives none
    assert stream.prompt_tokens < len(tokenizer.chat_template.encode(tokenizer, tokenizer.chat_template.with_default_system(
        [{"role": "user", "content": QUESTION}]))[0]) + 20


def test_fit_turns_keeps_the_system_turn_with_chatml(smollm2):
    _, tokenizer = smollm2
    turns = [{"role": "system", "content": "Be brief."}] + [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"message number {i} " * 5} for i in range(9)]
    kept, dropped = fit_turns(tokenizer, turns, 60)
    assert kept[0]["role"] == "system" and kept[-1] == turns[-1] and dropped > 0 and dropped % 2 == 0


def test_the_chat_command_talks_to_a_gguf_file(smollm2_file):
    args = build_parser().parse_args(["chat", "--gguf", str(smollm2_file), "--temperature", "0", "--max-new-tokens", "20"])
    lines = iter([QUESTION, "/exit"])
    out = io.StringIO()
    assert cmd_chat(args, "cpu", CourseError, read=lambda prompt: next(lines), write=out) == 0
    assert "SmolLM2-135M-Instruct" in out.getvalue() and ANSWER in out.getvalue()


def test_gguf_flags_give_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"not a model")
    for argv, words in [
        (["chat", "--gguf", str(tmp_path / "missing.gguf")], "no such file"),
        (["chat", "--gguf", str(bad)], "too short"),
        (["serve", "--gguf", str(tmp_path)], "folder"),
        (["chat", "--gguf", str(bad), "--checkpoint", "x.pt"], "not allowed with"),
        (["chat"], "one of the arguments --checkpoint --gguf is required"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, (argv, err)


def test_the_server_answers_openais_client_with_smollm2(smollm2):
    pytest.importorskip("fastapi", reason="the serve extra: pip install -e '.[serve]'")
    openai = pytest.importorskip("openai")
    from course_lib.server import BackgroundServer, create_app

    model, tokenizer = smollm2
    with BackgroundServer(create_app(model, tokenizer, "SmolLM2-135M-Instruct")) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused")
        messages = [{"role": "user", "content": QUESTION}]
        plain = client.chat.completions.create(model="SmolLM2-135M-Instruct", messages=messages, temperature=0)
        assert plain.choices[0].message.content == ANSWER and plain.choices[0].finish_reason == "stop"
        assert plain.usage.completion_tokens == 7
        pieces = [chunk.choices[0].delta.content or "" for chunk in client.chat.completions.create(
            model="SmolLM2-135M-Instruct", messages=messages, temperature=0, stream=True) if chunk.choices]
        assert "".join(pieces) == ANSWER and len([p for p in pieces if p]) > 3


def test_batched_greedy_replies_of_smollm2_equal_its_replies_alone(smollm2):
    """Grouped-query attention and rotary positions per row (notebook 21): one batch, prompts of different lengths."""
    import torch

    from course_lib.sampling import generate, generate_batch

    model, tokenizer = smollm2
    template = tokenizer.chat_template
    questions = [QUESTION, "Name a colour.", "Hi", "Write one sentence about the sea, please."]
    prompts = [template.encode(tokenizer, template.with_default_system([{"role": "user", "content": q}]))[0]
               + template.generation_prompt(tokenizer) for q in questions]
    assert len({len(p) for p in prompts}) == len(prompts)  # every row padded differently
    stop = template.end_id
    together = generate_batch(model, prompts, 12, temperature=0, stop_id=stop)
    for prompt, reply in zip(prompts, together):
        out = generate(model, torch.tensor(prompt), 12, temperature=0, eos_id=stop)[len(prompt):].tolist()
        assert reply == (out[:out.index(stop) + 1] if stop in out else out)
    assert tokenizer.decode(together[0][:-1]) == ANSWER
