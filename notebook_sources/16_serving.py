# %% [markdown]
# # 16 · Serving: the chat model behind an HTTP API
#
# **Goal.** Put the chat model of notebooks 14–15 behind a web server that the tools people
# already use can talk to: any client of OpenAI's chat-completions API, a browser, `curl`. The
# course's source documents end with a Flask server in ten lines; this notebook shows what those
# lines lack, and runs the course's server (`course_lib.server`: FastAPI on uvicorn) from here.
#
# **You will build** three pieces of it: the server-sent event that carries a streamed token, the
# check of a request's temperature, and the hold-back that keeps a stop sequence from leaking out.
#
# The server needs the `serve` extra (`pip install -e ".[serve]"`: FastAPI, uvicorn); the
# official `openai` client in section 4 is optional (`pip install openai`).

# %%
import importlib.util
import json
import math
import random
from pathlib import Path

import httpx
import torch

import course_lib
from course_lib import checks
from course_lib.server import BackgroundServer, create_app
from course_lib.server import holdback as library_holdback

course_lib.seed_everything(0)
device = course_lib.get_device()
grading = course_lib.grading_run()  # under nbgrader the model may be barely trained: its replies are not checked
print("device:", device)


# %% [markdown]
# ## 1. The seed's server, and what it lacks
#
# The source document serves its model like this (Flask):
#
# ```python
# @app.route('/generate', methods=['POST'])
# def generate():
#     prompt = request.json.get('prompt')
#     input_ids = tokenizer.encode(prompt, return_tensors='pt')
#     output = model.generate(input_ids, max_length=50, num_return_sequences=1)
#     response_text = tokenizer.decode(output[0], skip_special_tokens=True)
#     return jsonify({'generated_text': response_text})
#
# app.run(debug=True)
# ```
#
# It works for one person typing nice input. Everything else goes wrong:
#
# | | the seed | `course_lib.server` |
# |---|---|---|
# | a request without `prompt`, or not JSON | a 500 and a traceback (`encode(None)`) | a 400 naming the field |
# | `debug=True` | Werkzeug's debugger: whoever reaches the port can run Python on the machine | no debugger; binds to 127.0.0.1 unless told otherwise; an optional API key |
# | `max_length=50` | counts the prompt: a long prompt leaves no room, or errors | `max_tokens` counts the reply, checked against the context |
# | the reply | the prompt *and* the continuation, no chat template, no end of turn | the assistant's turn only (notebook 15) |
# | the conversation | none: each request stands alone | `messages`, the whole history, the oldest turns dropped when too long |
# | streaming | none: the user waits for the whole reply | `stream: true`, token by token, as ChatGPT shows it |
# | many users | one model shared by threads with no care | one forward pass at a time, each request its own KV cache (`batching="none"`); by default now one batch for all (notebook 21) |
# | a user who leaves | the model writes on for nobody | the generation stops |
# | clients | a format of its own | OpenAI's: every OpenAI client library works |
#
# ## 2. Streaming: server-sent events
#
# A streamed reply is one HTTP response that stays open. The server writes **events**, each a line
# `data: <JSON>` followed by an empty line, and the client reads them as they arrive. OpenAI's
# format sends one `chat.completion.chunk` per piece of text, and `data: [DONE]` at the end.
#
# **Exercise 1 (implement, 2 points).** Write `sse_event(payload)`: the text of one server-sent
# event carrying `payload` (a dict, or the string `"[DONE]"`): `"data: "`, then the payload (JSON,
# with `json.dumps`, for a dict; the string itself for `"[DONE]"`), then two newlines.

# %% solution="ex16_sse"
def sse_event(payload):
    ### BEGIN SOLUTION
    return f"data: {payload if payload == '[DONE]' else json.dumps(payload)}\n\n"
    ### END SOLUTION


# %% tests="ex16_sse_tests" points=2
_chunk = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "Hi"}}]}
_got = sse_event(_chunk)
assert isinstance(_got, str), f"sse_event should return a str, got {type(_got).__name__}"
assert _got.startswith("data: "), "every event line starts with 'data: ' (with the space)"
assert _got.endswith("\n\n"), "an event ends with an empty line: two newlines, or the client waits for more"
assert not _got.endswith("\n\n\n"), "exactly two newlines at the end"
assert "'" not in _got, "the payload must be JSON (json.dumps): str(dict) writes single quotes, which JSON forbids"
checks.expect_equal(json.loads(_got[len("data: "):]), _chunk, "the JSON read back from the event")
checks.expect_equal(sse_event("[DONE]"), "data: [DONE]\n\n", "sse_event('[DONE]')")
### BEGIN HIDDEN TESTS
_g = random.Random(int(torch.randint(0, 10**6, (1,), generator=checks.grading_generator("ex16_sse"))))
for _ in range(5):
    _p = {"id": f"chatcmpl-{_g.randrange(10**6)}", "choices": [{"delta": {"content": _g.choice(["a", 'say "hi"', "é", "\n"])}}]}
    _e = sse_event(_p)
    assert _e.startswith("data: ") and _e.endswith("\n\n") and not _e.endswith("\n\n\n"), f"sse_event({_p}) is not one event"
    assert "\n" not in _e[:-2], f"sse_event({_p}): the JSON must stay on one line (a newline ends the data line)"
    checks.expect_equal(json.loads(_e[len("data: "):-2]), _p, f"the JSON read back from sse_event({_p})")
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Never trust a request
#
# An API is called by programs written by strangers. Every field can be missing, of the wrong
# type, or out of range, and the answer must be a **4xx** with an error object that names the
# field, never a crash (a 500) and never a silent guess. OpenAI's error object is
# `{"error": {"message": ..., "type": "invalid_request_error", "param": <the field>, "code": null}}`.
#
# **Exercise 2 (implement, 2 points).** Write `check_temperature(body)`: `body` is the parsed JSON
# of a request (a dict). Return `None` if `body` has no `"temperature"` or has `null` there (Python's
# `None`: the server's default applies), or if it is a number in $[0, 2]$. Otherwise return the error object above with `"param": "temperature"` and a message
# saying what was wrong. Careful: in Python `True` is an `int`, and `float("nan")` compares false
# with everything; neither is a temperature.

# %% solution="ex16_temperature"
def check_temperature(body):
    ### BEGIN SOLUTION
    if body.get("temperature") is None:
        return None
    value = body["temperature"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 <= value <= 2:
        return {"error": {"message": f"temperature must be a number in [0, 2], got {value!r}",
                          "type": "invalid_request_error", "param": "temperature", "code": None}}
    return None
    ### END SOLUTION


# %% tests="ex16_temperature_tests" points=2
def _refused(value):
    result = check_temperature({"model": "m", "temperature": value})
    return isinstance(result, dict) and result.get("error", {}).get("param") == "temperature"


for _ok in (0, 0.7, 1, 2, 2.0):
    assert check_temperature({"model": "m", "temperature": _ok}) is None, f"temperature {_ok} is valid: return None"
assert check_temperature({"model": "m"}) is None, "no temperature is fine: the server's default applies"
assert check_temperature({"model": "m", "temperature": None}) is None, "null is fine too: the server's default applies"
for _bad, _why in [(2.5, "above 2"), (-0.1, "below 0"), ("0.7", "a string, not a number"),
                   (True, "True: a bool is an int in Python, but not a temperature"),
                   (float("nan"), "NaN: every comparison with NaN is False, so a range check alone lets it through"),
                   ([1], "a list")]:
    assert _refused(_bad), f"temperature {_bad!r} must be refused ({_why})"
_error = check_temperature({"temperature": 9})["error"]
assert _error["type"] == "invalid_request_error" and _error["message"], "the error needs a type and a message"
assert set(_error) >= {"message", "type", "param", "code"}, "OpenAI's error object has message, type, param and code"
### BEGIN HIDDEN TESTS
for _bad in (float("inf"), float("-inf"), 2.0000001, -1e-9, {"t": 1}, "hot", False):
    assert _refused(_bad), f"temperature {_bad!r} must be refused"
for _ok in (1e-9, 1.999, 0.0):
    assert check_temperature({"temperature": _ok}) is None, f"temperature {_ok} is valid"
### END HIDDEN TESTS

# %% [markdown]
# The library's `parse_request` checks every field this way (`tests/test_server.py` sends it 36
# kinds of bad request and checks each answer and that the server keeps serving).
#
# ## 4. Stop sequences, without leaking them
#
# A request may say `"stop": ["\n\n"]`: the reply ends *before* that text, which is never sent.
# When streaming, the text arrives a token at a time, so the server cannot send what might be the
# start of a stop sequence: if the reply so far ends with `"\n"` and a stop is `"\n\n"`, that `"\n"`
# waits until the next token shows whether the stop is complete.
#
# **Exercise 3 (implement, 2 points).** Write `holdback(text, stops)`: the number of characters at
# the end of `text` that must wait: the length of the longest end of `text` that is the beginning,
# shorter than the whole, of one of the strings in `stops`; 0 if none is.

# %% solution="ex16_holdback"
def holdback(text, stops):
    ### BEGIN SOLUTION
    best = 0
    for stop in stops:
        for size in range(1, min(len(stop) - 1, len(text)) + 1):
            if text.endswith(stop[:size]):
                best = max(best, size)
    return best
    ### END SOLUTION


# %% tests="ex16_holdback_tests" points=2
checks.expect_equal(holdback("Hello", ["\n\n"]), 0, "holdback('Hello', ['\\n\\n'])")
checks.expect_equal(holdback("Hello\n", ["\n\n"]), 1, "holdback('Hello\\n', ['\\n\\n'])")
checks.expect_equal(holdback("say EN", ["END"]), 2, "holdback('say EN', ['END'])")
_got = holdback("abab", ["abc", "bab!"])
assert _got != 2, "'bab' is the start of 'bab!': the longest matching end counts, over every stop"
checks.expect_equal(_got, 3, "holdback('abab', ['abc', 'bab!'])")
_got = holdback("xEND", ["END"])
assert _got != 3, "a whole stop sequence is not held back: it is cut off (the reply ends there), so count only shorter beginnings"
checks.expect_equal(holdback("E", ["END", "Eve"]), 1, "holdback('E', ['END', 'Eve'])")
checks.expect_equal(holdback("", ["END"]), 0, "holdback('', ['END'])")
checks.expect_equal(holdback("anything", []), 0, "holdback with no stop sequences")
### BEGIN HIDDEN TESTS
_g = random.Random(int(torch.randint(0, 10**6, (1,), generator=checks.grading_generator("ex16_holdback"))))
for _ in range(200):
    _text = "".join(_g.choice("ab") for _ in range(_g.randint(0, 7)))
    _stops = ["".join(_g.choice("ab") for _ in range(_g.randint(1, 4))) for _ in range(_g.randint(1, 3))]
    checks.expect_equal(holdback(_text, _stops), library_holdback(_text, _stops), f"holdback({_text!r}, {_stops})")
### END HIDDEN TESTS

# %% [markdown]
# ## 5. The course's server, started from here
#
# The model is notebook 14's memory chat model (without `runs/memory_chat.pt`, it is trained here,
# about 15 seconds on a CPU). `create_app` builds the FastAPI application; `BackgroundServer` runs
# it with uvicorn in a thread of this kernel, on a free port of 127.0.0.1, until `stop()`.

# %% tags=["nbval-ignore-output"]
from course_lib.recipes import memory_chat_model

model, tokenizer, how = memory_chat_model(Path("runs") / "memory_chat.pt", device=device)  # notebook 14's recipe
server = BackgroundServer(create_app(model, tokenizer, model_name="memory-chat"))
url = server.start()
print("serving at", url)

# %% [markdown]
# Called with `httpx`, a plain HTTP client: the health check, the model list, one completion.

# %%
http = httpx.Client(base_url=url, timeout=60)
print(http.get("/health").json()["status"], [m["id"] for m in http.get("/v1/models").json()["data"]])
conversation = [{"role": "user", "content": "Hi! I'm Nora. I love opera."},
                {"role": "assistant", "content": "Hello, Nora!"},
                {"role": "user", "content": "Do you sleep?"},
                {"role": "assistant", "content": "Never."},
                {"role": "user", "content": "What do I love?"}]
response = http.post("/v1/chat/completions", json={"model": "memory-chat", "messages": conversation, "temperature": 0})
reply = response.json()
print(response.status_code, json.dumps({k: reply[k] for k in ("object", "model", "choices", "usage")}, indent=1))
if not grading:
    checks.expect_equal(reply["choices"][0]["message"]["content"], "You love opera.", "the reply")

# %% [markdown]
# Streaming: the response's lines arrive one event at a time.

# %%
with http.stream("POST", "/v1/chat/completions",
                 json={"model": "memory-chat", "messages": conversation, "temperature": 0, "stream": True}) as stream:
    for line in stream.iter_lines():
        if line.startswith("data: ") and line != "data: [DONE]":
            delta = json.loads(line[6:])["choices"][0]
            print(repr(delta["delta"].get("content", "")), delta["finish_reason"] or "")
        elif line:
            print(line)

# %% [markdown]
# And a bad request: a 400 that says what is wrong. The server goes on serving.

# %%
bad = http.post("/v1/chat/completions", json={"model": "memory-chat", "messages": conversation, "temperature": "hot"})
print(bad.status_code, bad.json())
print(http.get("/health").json()["status"])

# %% [markdown]
# ## 6. The official `openai` client
#
# Because the server speaks OpenAI's API, OpenAI's own Python library talks to it unchanged: only
# `base_url` points here (the key is any string when the server has none).

# %%
if importlib.util.find_spec("openai") is None:
    print("the openai package is not installed (pip install openai): skipping this section")
else:
    from openai import OpenAI

    client = OpenAI(base_url=url + "/v1", api_key="not-needed")
    completion = client.chat.completions.create(model="memory-chat", messages=conversation, temperature=0)
    print("reply:", completion.choices[0].message.content, "| finish:", completion.choices[0].finish_reason,
          "| tokens:", completion.usage.total_tokens)
    pieces = [chunk.choices[0].delta.content or "" for chunk in
              client.chat.completions.create(model="memory-chat", messages=conversation, temperature=0, stream=True)
              if chunk.choices]
    print("streamed:", pieces)

# %% [markdown]
# When you are done, stop the server (the notebook's kernel would otherwise keep the port):

# %%
http.close()
server.stop()
print("stopped:", not server.thread.is_alive())

# %% [markdown]
# ## 7. From a terminal
#
# ```
# python -m course_lib serve --checkpoint notebooks/runs/memory_chat.pt --port 8000
# ```
#
# then open <http://127.0.0.1:8000/> for the chat page (it keeps the conversation and shows the
# reply as it streams), or point any OpenAI client at `http://127.0.0.1:8000/v1`. `--api-key KEY`
# requires `Authorization: Bearer KEY`; `--host 0.0.0.0` opens the server to the network (with a
# warning unless there is a key). `benchmarks/serve_load.py` measures requests per second and
# latency at 1, 8 and 32 concurrent clients (figures in the README).
#
# ## Summary
#
# - Streaming is server-sent events: `data: <JSON>` and an empty line per piece, `data: [DONE]` at
#   the end (your `sse_event`).
# - Every field of a request is checked, and a bad one is a 4xx naming it (your `check_temperature`;
#   the library's `parse_request`); the server never crashes on input.
# - Stop sequences are cut before they are sent, which means holding back what could be their
#   beginning (your `holdback`).
# - One model serves many requests, one forward pass at a time; a client that leaves stops its
#   generation; OpenAI's clients work unchanged. (Notebook 21 makes the server decode all active
#   requests in one batch, its default now; `batching="none"` is the way taught here.)
#
# **Next:** notebooks 17 to 21 put a real chat model (SmolLM2) into today's decoder, improve a model
# with rewards and LoRA, and serve many users at once; notebook 22 runs every stage end to end and
# ends with a report card.
