"""The HTTP server: OpenAI's response shapes, streaming, stop sequences, bad input, keys, disconnects, load (notebook 16)."""
import asyncio
import json
import random
import sys
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("fastapi", reason="the serve extra: pip install -e '.[serve]'")
httpx = pytest.importorskip("httpx")

sys.path.insert(0, str(Path(__file__).parent))
from test_chat import CHARS, Scripted  # noqa: E402

from course_lib.chat import END, chat, chat_tokenizer, encode_turns  # noqa: E402
from course_lib.gpt import GPT, GPTConfig  # noqa: E402
from course_lib.server import MAX_BODY_BYTES, BackgroundServer, create_app, holdback  # noqa: E402

TOKENIZER = chat_tokenizer(CHARS.extended("0123456789:-"))
NAME = "tiny"


def user(text):
    return [{"role": "user", "content": text}]


def body(messages=None, **settings):
    return {"model": NAME, "messages": user("hi") if messages is None else messages, **settings}


class Slow(Scripted):
    """Never ends its turn, and takes a while per token: for disconnects."""

    def forward(self, ids, cache=None, **rows):
        time.sleep(0.01)
        return super().forward(ids, cache, **rows)


@pytest.fixture(scope="module")
def scripted_server():
    model = Scripted(TOKENIZER.encode("hello world") + [TOKENIZER.id_of(END)], len(TOKENIZER), context_length=200)
    with BackgroundServer(create_app(model, TOKENIZER, NAME)) as url:
        yield url, model


@pytest.fixture(scope="module")
def client(scripted_server):
    with httpx.Client(base_url=scripted_server[0], timeout=60) as c:
        yield c


def sse(response):
    """The data of each server-sent event, decoded (the [DONE] marker as the string)."""
    events = [line[len("data: "):] for line in response.text.split("\n\n") if line.startswith("data: ")]
    return [e if e == "[DONE]" else json.loads(e) for e in events]


# --- the shapes OpenAI clients expect -------------------------------------------------------------------------------

def test_health_and_models(client):
    assert client.get("/health").json()["status"] == "ok"
    models = client.get("/v1/models").json()
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == [NAME]


def test_a_completion_has_openais_shape_and_the_libraries_reply(client, scripted_server):
    response = client.post("/v1/chat/completions", json=body(user("hi"), temperature=0))
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["id"].startswith("chatcmpl-") and data["object"] == "chat.completion" and data["model"] == NAME
    assert isinstance(data["created"], int)
    [choice] = data["choices"]
    assert choice["message"] == {"role": "assistant", "content": "hello world"} and choice["finish_reason"] == "stop"
    prompt = len(encode_turns(TOKENIZER, user("hi"))[0]) + 1
    assert data["usage"] == {"prompt_tokens": prompt, "completion_tokens": 11, "total_tokens": prompt + 11}
    assert scripted_server[1].prompts[-1] == encode_turns(TOKENIZER, user("hi"))[0] + [TOKENIZER.id_of("<|assistant|>")]


def test_max_tokens_gives_finish_reason_length(client):
    data = client.post("/v1/chat/completions", json=body(max_tokens=4, temperature=0)).json()
    assert data["choices"][0]["message"]["content"] == "hell" and data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 4


def test_streaming_sends_chunks_then_done(client):
    response = client.post("/v1/chat/completions", json=body(stream=True, temperature=0,
                                                             stream_options={"include_usage": True}))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse(response)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "hello world" and len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]) == 11
    finals = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finals == ["stop"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 11


@pytest.mark.parametrize("stop, expected", [("wor", "hello "), (["xyz", "lo w"], "hel"), ("hello world!", "hello world")])
@pytest.mark.parametrize("stream", [False, True])
def test_stop_sequences_cut_the_reply_and_are_never_sent(client, stop, expected, stream):
    response = client.post("/v1/chat/completions", json=body(stop=stop, stream=stream, temperature=0))
    if stream:
        chunks = [c for c in sse(response)[:-1] if c["choices"]]
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        reason = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"][0]["finish_reason"]][0]
    else:
        text, reason = response.json()["choices"][0]["message"]["content"], response.json()["choices"][0]["finish_reason"]
    assert text == expected and reason == "stop"


@pytest.mark.parametrize("seed", range(30))
def test_holdback_against_brute_force(seed):
    rng = random.Random(seed)
    text = "".join(rng.choice("ab") for _ in range(rng.randint(0, 8)))
    stops = ["".join(rng.choice("ab") for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(1, 3))]
    brute = max([k for k in range(1, len(text) + 1) for s in stops if len(s) > k and s.startswith(text[-k:])], default=0)
    assert holdback(text, stops) == brute, (text, stops)


def test_a_long_conversation_keeps_the_newest_turns_and_says_so(client):
    history = []
    for i in range(12):
        history += [{"role": "user", "content": f"message number {i} " * 2}, {"role": "assistant", "content": "ok " * 5}]
    response = client.post("/v1/chat/completions", json=body(history + user("last one"), temperature=0, max_tokens=20))
    assert response.status_code == 200
    dropped = response.json()["dropped_messages"]
    assert dropped > 0 and dropped % 2 == 0 and response.headers["x-dropped-messages"] == str(dropped)


# --- bad input: a 4xx with an error object naming the field, and the server keeps serving ---------------------------

BAD = [
    ("not json", b"{model: tiny", 400, None, "not valid JSON"),
    ("not utf-8", b"\xff\xfe{}", 400, None, "not valid JSON"),
    ("an array", [1, 2], 400, None, "JSON object"),
    ("no model", {"messages": user("hi")}, 400, "model", "model is required"),
    ("another model", body(model="gpt-4o"), 404, "model", "does not exist"),
    ("no messages", {"model": NAME}, 400, "messages", "messages is required"),
    ("empty messages", body([]), 400, "messages", "non-empty list"),
    ("messages a string", {"model": NAME, "messages": "hi"}, 400, "messages", "messages is required"),
    ("a message not an object", body(["hi"]), 400, "messages[0]", "must be an object"),
    ("unknown role", body([{"role": "robot", "content": "hi"}]), 400, "messages[0].role", '"robot"'),
    ("no role", body([{"content": "hi"}]), 400, "messages[0].role", "must be 'system'"),
    ("empty content", body([{"role": "user", "content": " "}]), 400, "messages[0].content", "non-empty text"),
    ("content a number", body([{"role": "user", "content": 3}]), 400, "messages[0].content", "non-empty text"),
    ("image part", body([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]), 400,
     "messages[0].content", "only text parts"),
    ("not alternating", body(user("a") + user("b")), 400, "messages", "do not alternate"),
    ("ends with the assistant", body(user("a") + [{"role": "assistant", "content": "b"}]), 400, "messages", "last message"),
    ("system later", body(user("a") + [{"role": "system", "content": "b"}]), 400, "messages", "system turn may only come first"),
    ("temperature a string", body(temperature="hot"), 400, "temperature", "must be a number"),
    ("temperature a bool", body(temperature=True), 400, "temperature", "must be a number"),
    ("temperature too high", body(temperature=2.5), 400, "temperature", "[0, 2]"),
    ("temperature negative", body(temperature=-0.1), 400, "temperature", "[0, 2]"),
    ("temperature NaN", b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', 400,
     "temperature", "must be a number"),
    ("top_p zero", body(top_p=0), 400, "top_p", "(0, 1]"),
    ("top_p too high", body(top_p=1.5), 400, "top_p", "(0, 1]"),
    ("max_tokens zero", body(max_tokens=0), 400, "max_tokens", "between 1 and"),
    ("max_tokens too large", body(max_tokens=10**6), 400, "max_tokens", "between 1 and 199"),
    ("max_tokens a float", body(max_tokens=1.5), 400, "max_tokens", "integer"),
    ("stop a number", body(stop=3), 400, "stop", "stop must be"),
    ("five stops", body(stop=list("abcde")), 400, "stop", "at most 4"),
    ("an empty stop", body(stop=[""]), 400, "stop", "non-empty"),
    ("stream a string", body(stream="yes"), 400, "stream", "true or false"),
    ("seed a string", body(seed="x"), 400, "seed", "integer"),
    ("n = 2", body(n=2), 400, "n", "n must be 1"),
    ("tools", body(tools=[{"type": "function"}]), 400, "tools", "not supported"),
    ("a character the model lacks", body(user("héllo")), 400, "messages", "not built with"),
    ("a message longer than the context", body(user("a" * 400)), 400, "messages", "fit in the context"),
]


@pytest.mark.parametrize("case, payload, status, param, words", BAD, ids=[b[0] for b in BAD])
def test_bad_requests_get_a_4xx_error_object_naming_the_field(client, case, payload, status, param, words):
    if isinstance(payload, bytes):
        response = client.post("/v1/chat/completions", content=payload, headers={"content-type": "application/json"})
    else:
        response = client.post("/v1/chat/completions", json=payload)
    assert response.status_code == status, (case, response.text)
    error = response.json()["error"]
    assert words in error["message"] and error["param"] == param and error["type"], (case, error)
    assert client.get("/health").status_code == 200


def test_an_oversized_body_is_refused_declared_or_not(client):
    big = json.dumps(body(user("a" * (MAX_BODY_BYTES + 10)))).encode()
    assert client.post("/v1/chat/completions", content=big, headers={"content-type": "application/json"}).status_code == 413

    def chunks():  # no Content-Length: the size shows only as it arrives
        for start in range(0, len(big), 65536):
            yield big[start:start + 65536]

    response = client.post("/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and "larger than" in response.json()["error"]["message"]
    assert client.get("/health").status_code == 200


def test_unknown_paths_and_methods_get_error_objects(client):
    assert client.get("/v1/nothing").status_code == 404 and "error" in client.get("/v1/nothing").json()
    assert client.get("/v1/chat/completions").status_code == 405


def test_an_api_key_is_required_when_set():
    model = Scripted(TOKENIZER.encode("ok") + [TOKENIZER.id_of(END)], len(TOKENIZER))
    with BackgroundServer(create_app(model, TOKENIZER, NAME, api_key="s3cret")) as url, httpx.Client(base_url=url) as c:
        assert c.post("/v1/chat/completions", json=body()).status_code == 401
        wrong = c.post("/v1/chat/completions", json=body(), headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
        assert c.get("/v1/models").status_code == 401
        right = c.post("/v1/chat/completions", json=body(), headers={"Authorization": "Bearer s3cret"})
        assert right.status_code == 200 and right.json()["choices"][0]["message"]["content"] == "ok"
        assert c.get("/health").status_code == 200 and c.get("/").status_code == 200


# --- disconnects and load ---------------------------------------------------------------------------------------------

def assert_generation_stopped(client, at_most):
    """After a client left: within 10 s no generation is active, and no token is generated any more."""
    deadline = time.monotonic() + 10
    while client.get("/health").json()["active_generations"] and time.monotonic() < deadline:
        time.sleep(0.05)
    health = client.get("/health").json()
    assert health["active_generations"] == 0, "the generation goes on after the client left"
    time.sleep(0.3)
    assert client.get("/health").json()["tokens_generated"] == health["tokens_generated"] < at_most


def test_a_client_that_disconnects_mid_stream_stops_its_generation():
    model = Slow(TOKENIZER.encode("abcdefgh"), len(TOKENIZER), context_length=4000)  # never says <|end|>
    with BackgroundServer(create_app(model, TOKENIZER, NAME)) as url, httpx.Client(base_url=url, timeout=30) as c:
        with c.stream("POST", "/v1/chat/completions", json=body(max_tokens=3000, stream=True)) as response:
            received = 0
            for line in response.iter_lines():
                received += line.startswith("data: ")
                if received == 4:
                    break  # leaving the block closes the connection
        assert_generation_stopped(c, at_most=200)
        assert c.post("/v1/chat/completions", json=body(max_tokens=2)).status_code == 200  # still serving


@pytest.mark.parametrize("batching", ["continuous", "none"])
def test_32_concurrent_requests_are_all_answered_correctly(batching):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(TOKENIZER), context_length=64, d_model=32, n_heads=2, n_layers=2, d_ff=64))
    prompts = [f"question {i}: {'abc'[i % 3] * (i % 7 + 1)}" for i in range(32)]
    expected = [chat(model, TOKENIZER, [], p, max_new_tokens=12, temperature=0) for p in prompts]
    assert len(set(expected)) > 4, "the reference replies should differ, or mixing them up would go unseen"

    async def ask(client, prompt, stream):
        payload = body(user(prompt), max_tokens=12, temperature=0, stream=stream)
        response = await client.post("/v1/chat/completions", json=payload)
        assert response.status_code == 200, response.text
        if stream:
            return "".join(c["choices"][0]["delta"].get("content", "") for c in sse(response)[:-1] if c["choices"])
        return response.json()["choices"][0]["message"]["content"]

    async def all_at_once(url):
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            return await asyncio.gather(*(ask(client, p, i % 2 == 0) for i, p in enumerate(prompts)))

    with BackgroundServer(create_app(model, TOKENIZER, NAME, batching=batching)) as url:
        answers = asyncio.run(all_at_once(url))
        assert answers == expected
        health = httpx.get(f"{url}/health").json()
        assert health["active_generations"] == 0 and health["batching"] == batching


def test_seeded_sampling_gives_the_same_reply_in_both_modes_and_alone():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(TOKENIZER), context_length=64, d_model=32, n_heads=2, n_layers=2, d_ff=64))
    settings = {"max_tokens": 10, "temperature": 1.0, "top_p": 0.9, "seed": 123}
    alone = chat(model, TOKENIZER, [], "hi", max_new_tokens=10, temperature=1.0, top_p=0.9,
                 generator=torch.Generator().manual_seed(123))
    for batching in ("continuous", "none"):
        with BackgroundServer(create_app(model, TOKENIZER, NAME, batching=batching)) as url:
            replies = [httpx.post(url + "/v1/chat/completions", json=body(**settings), timeout=30).json()
                       ["choices"][0]["message"]["content"] for _ in range(2)]
        assert replies == [alone, alone], batching


def test_a_full_queue_answers_429_with_an_error_object_and_never_hangs():
    from course_lib.batching import Request

    model = Slow(TOKENIZER.encode("abcdefgh"), len(TOKENIZER), context_length=4000)  # never ends its turn
    app = create_app(model, TOKENIZER, NAME, max_batch=1, max_waiting=1)
    with BackgroundServer(app) as url, httpx.Client(base_url=url, timeout=30) as c:
        with c.stream("POST", "/v1/chat/completions", json=body(max_tokens=3000, stream=True)) as running:
            next(running.iter_lines())  # the first request holds the batch's one row
            queued = app.state.scheduler.submit(Request([1, 2], 5))  # and this one the one waiting place
            assert c.get("/health").json()["waiting"] == 1
            refused = c.post("/v1/chat/completions", json=body(max_tokens=5))
            assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
            error = refused.json()["error"]
            assert error["code"] == "queue_full" and error["type"] == "rate_limit_error" and "busy" in error["message"]
            queued.cancel()
        deadline = time.monotonic() + 10
        while (c.get("/health").json()["batch_size"] or c.get("/health").json()["waiting"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        health = c.get("/health").json()
        assert health["batch_size"] == 0 and health["waiting"] == 0 and health["active_generations"] == 0
        assert queued.finish_reason == "cancelled"
        assert c.post("/v1/chat/completions", json=body(max_tokens=2)).status_code == 200  # serving again


def test_a_short_soak_of_mixed_requests_leaves_nothing_behind(scripted_server, client):
    url, _ = scripted_server
    bad = [b"{", b"[]", json.dumps(body(temperature=9)).encode(), json.dumps({"model": NAME}).encode()]

    async def one(client, i):
        kind = i % 4
        if kind == 0:
            return (await client.post("/v1/chat/completions", json=body(max_tokens=5))).status_code == 200
        if kind == 1:
            response = await client.post("/v1/chat/completions", content=bad[i % len(bad)],
                                         headers={"content-type": "application/json"})
            return response.status_code == 400
        async with client.stream("POST", "/v1/chat/completions", json=body(stream=True)) as response:
            async for _ in response.aiter_lines():
                if kind == 3:
                    break  # abandoned mid-stream
            return response.status_code == 200

    async def soak():
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            results = []
            for start in range(0, 200, 20):
                results += await asyncio.gather(*(one(c, i) for i in range(start, start + 20)))
            return results

    assert all(asyncio.run(soak()))
    deadline = time.monotonic() + 10  # an abandoned stream's request may still be queued, then cancelled: let it settle
    busy = ("batch_size", "waiting", "active_generations")
    while any(client.get("/health").json()[key] for key in busy) and time.monotonic() < deadline:
        time.sleep(0.05)
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["active_generations"] == 0 and health["batch_size"] == 0
    assert health["waiting"] == 0


def test_an_unknown_batching_mode_is_refused():
    with pytest.raises(ValueError, match="batching must be one of"):
        create_app(Scripted([0], len(TOKENIZER)), TOKENIZER, NAME, batching="static")


# --- the command line ---------------------------------------------------------------------------------------------------

def test_serve_without_fastapi_says_what_to_install(capsys, monkeypatch, tmp_path):
    from course_lib.cli import main

    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if not installed
    assert main(["serve", "--checkpoint", str(tmp_path / "c.pt")]) == 2
    err = capsys.readouterr().err
    assert "pip install" in err and "serve" in err and len(err.strip().splitlines()) == 1


def test_serve_refuses_a_busy_port_and_a_model_that_cannot_chat(capsys, tmp_path):
    import socket

    from course_lib.cli import main
    from course_lib.training import save_checkpoint

    path = tmp_path / "c.pt"
    save_checkpoint(path, GPT(GPTConfig(vocab_size=len(TOKENIZER), context_length=16, d_model=16, n_heads=2, n_layers=1,
                                        d_ff=32)), TOKENIZER)
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        assert main(["serve", "--checkpoint", str(path), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and len(err.strip().splitlines()) == 1
    assert main(["serve", "--checkpoint", str(path), "--batching", "static"]) == 2
    err = capsys.readouterr().err
    assert "--batching" in err and "continuous" in err and len(err.strip().splitlines()) <= 2
    save_checkpoint(tmp_path / "base.pt", GPT(GPTConfig(vocab_size=len(CHARS), context_length=16, d_model=16, n_heads=2,
                                                        n_layers=1, d_ff=32)), CHARS)
    assert main(["serve", "--checkpoint", str(tmp_path / "base.pt")]) == 2
    assert "not a chat model" in capsys.readouterr().err


# --- the chat page, in a real browser -----------------------------------------------------------------------------------

@pytest.mark.browser
def test_the_chat_page_streams_replies_and_keeps_the_conversation():
    from _requirements import require
    from test_browser_widget import browser_page

    require(module="playwright", executable="chromium", why="the browser test: pip install playwright; apt-get install chromium")
    model = Slow(TOKENIZER.encode("hello there") + [TOKENIZER.id_of(END)], len(TOKENIZER), context_length=200)
    with BackgroundServer(create_app(model, TOKENIZER, NAME)) as url, browser_page() as page:
        page.goto(url)
        assert page.locator("#model").inner_text() == NAME
        page.fill("#temperature", "0")
        for number, message in enumerate(["hi", "and again"], start=1):
            page.fill("#message", message)
            page.press("#message", "Enter")
            page.wait_for_selector(f"#log .assistant.done >> nth={number - 1}", timeout=30_000)
        assert page.locator("#log .assistant").all_inner_texts() == ["hello there", "hello there"]
        assert page.locator("#log .user").all_inner_texts() == ["hi", "and again"]
        second = TOKENIZER.decode(model.prompts[-1], skip_special=False)
        assert second.startswith("<|user|>hi<|end|><|assistant|>hello there<|end|><|user|>and again"), second
        page.fill("#temperature", "9")  # out of range: the server's error shows on the page
        page.fill("#message", "once more")
        page.press("#message", "Enter")
        page.wait_for_selector("#log .error", timeout=30_000)
        assert "temperature must be in [0, 2]" in page.locator("#log .error").inner_text()


@pytest.mark.browser
def test_two_tabs_chat_at_once_in_one_batch():
    from _requirements import require
    from test_browser_widget import browser_page

    require(module="playwright", executable="chromium", why="the browser test: pip install playwright; apt-get install chromium")

    class Counting(Slow):  # remembers the largest batch a forward pass saw
        widest = 0

        def forward(self, ids, cache=None, **rows):
            time.sleep(0.03)
            Counting.widest = max(Counting.widest, ids.shape[0])
            return super().forward(ids, cache, **rows)

    model = Counting(TOKENIZER.encode("hello there friend") + [TOKENIZER.id_of(END)], len(TOKENIZER), context_length=200)
    with BackgroundServer(create_app(model, TOKENIZER, NAME)) as url, browser_page() as first:
        second = first.context.browser.new_page()  # a second tab (a context of its own, as another user)
        for page, message in ((first, "hi"), (second, "hello")):
            page.goto(url)
            page.fill("#temperature", "0")
            page.fill("#message", message)
        first.press("#message", "Enter")
        second.press("#message", "Enter")  # while the first reply is still streaming
        for page in (first, second):
            page.wait_for_selector("#log .assistant.done", timeout=30_000)
            assert page.locator("#log .assistant").all_inner_texts() == ["hello there friend"]
        assert first.locator("#log .user").all_inner_texts() == ["hi"]
        assert second.locator("#log .user").all_inner_texts() == ["hello"]
    assert Counting.widest == 2, "the two tabs' replies should have been decoded in one batch"


def test_the_page_cannot_be_broken_out_of_by_a_model_name():
    model = Scripted([TOKENIZER.id_of(END)], len(TOKENIZER))
    with BackgroundServer(create_app(model, TOKENIZER, "</script><script>alert(1)</script>")) as url:
        page = httpx.get(url + "/").text
    assert "alert(1)</script>" not in page.split("<script>", 1)[1].rsplit("</script>", 1)[0]
    assert page.count("</script>") == 1


def test_a_seed_makes_sampling_reproducible():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(TOKENIZER), context_length=64, d_model=32, n_heads=2, n_layers=1, d_ff=64))
    with BackgroundServer(create_app(model, TOKENIZER, NAME)) as url, httpx.Client(base_url=url, timeout=60) as c:
        def reply(seed):
            payload = body(user("tell me"), temperature=1.0, max_tokens=12, seed=seed)
            return c.post("/v1/chat/completions", json=payload).json()["choices"][0]["message"]["content"]

        assert reply(7) == reply(7) == reply(7)
        assert len({reply(s) for s in range(6)}) > 1, "different seeds should give different samples"
