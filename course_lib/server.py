"""Serving a chat model over HTTP, speaking OpenAI's chat-completions API (introduced in notebook 16).

    python -m course_lib serve --checkpoint runs/chat.pt [--host 127.0.0.1] [--port 8000] [--api-key KEY]

``POST /v1/chat/completions`` (``stream: true`` sends server-sent events), ``GET /v1/models``,
``GET /health`` and ``GET /`` (a chat page). Any OpenAI client works with ``base_url`` set to
``http://127.0.0.1:8000/v1``. FastAPI and uvicorn come with the ``serve`` extra:
``pip install -e ".[serve]"``.

Every bad request gets a 4xx with OpenAI's error object, ``{"error": {"message", "type", "param",
"code"}}``, naming the field; a client that disconnects stops its generation. By default one
scheduler steps all active requests in one batch (continuous batching, notebook 21; a full waiting
line answers 429); ``batching="none"`` shares the model one forward pass at a time (notebook 16).
"""
import json
import math
import secrets
import threading
import time

import torch

from .chat import TextPieces, chat_prompt, stream_chat, template_of
from .dialogue import check_turns

#: Largest request body accepted, in bytes (a long conversation is a few kilobytes).
MAX_BODY_BYTES = 1_000_000
MAX_MESSAGES = 512
MAX_STOP_SEQUENCES = 4
#: What ``temperature`` is when a request leaves it out (the course's chat default; OpenAI's is 1).
DEFAULT_TEMPERATURE = 0.7


def require_fastapi():
    """Import FastAPI and uvicorn, or raise ImportError saying in one line what to install (notebook 16)."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        raise ImportError(f"serving needs FastAPI and uvicorn ({error.name} is missing): "
                          "pip install -e \".[serve]\"  (or: pip install fastapi uvicorn)") from None


class APIError(Exception):
    """A request the server refuses: HTTP ``status`` and OpenAI's error object (notebook 16)."""

    def __init__(self, status, message, param=None, type="invalid_request_error", code=None):
        super().__init__(message)
        self.status, self.message, self.param, self.type, self.code = status, message, param, type, code

    def body(self):
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class SharedModel:
    """The model behind a lock: any number of request threads, one forward pass at a time (notebook 16).

    A forward pass is one token of one request, so concurrent requests interleave token by token
    instead of waiting for each other's whole replies. Each request has its own KV cache.
    """

    def __init__(self, model):
        self.model = model.eval()
        self.config, self.blocks, self.training = model.config, model.blocks, False
        self.lock = threading.Lock()

    def parameters(self):
        return self.model.parameters()

    def eval(self):
        return self

    def train(self, mode=True):  # the server never trains; chat() asks to restore the mode it found
        return self

    def __call__(self, *args, **kwargs):
        with self.lock, torch.inference_mode():
            return self.model(*args, **kwargs)


def _number(body, name, low, high, default, low_open=False):
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
        raise APIError(400, f"{name} must be a number, got {json.dumps(value)[:40]}", name)
    if value < low or value > high or (low_open and value == low):
        interval = f"{'(' if low_open else '['}{low}, {high}]"
        raise APIError(400, f"{name} must be in {interval}, got {value}", name)
    return value


def _finite(value):
    try:
        return math.isfinite(value)  # a 400-digit integer is a valid JSON number, too large for a float
    except OverflowError:
        return False


def _integer(body, name, low, high, default):
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise APIError(400, f"{name} must be an integer, got {json.dumps(value)[:40]}", name)
    if not low <= value <= high:
        raise APIError(400, f"{name} must be between {low} and {high}, got {value}", name)
    return value


def _content(message, index):
    content = message.get("content")
    if isinstance(content, list):  # OpenAI's content parts: only text ones are understood here
        texts = []
        for part in content:
            if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                raise APIError(400, f"messages[{index}].content: only text parts ({{\"type\": \"text\", \"text\": ...}}) "
                                    "are supported", f"messages[{index}].content")
            texts.append(part["text"])
        content = "".join(texts)
    if not isinstance(content, str) or not content.strip():
        raise APIError(400, f"messages[{index}].content must be non-empty text", f"messages[{index}].content")
    return content


def parse_request(body, model_name, context_length):
    """Check a chat-completions request (the parsed JSON) and return its settings as a dict (notebook 16).

    Raises ``APIError`` (a 4xx and OpenAI's error object naming the field) for anything wrong:
    a missing or wrongly typed field, an unknown role, a conversation that does not alternate or
    does not end with the user, a number out of range, an unsupported option.
    """
    if not isinstance(body, dict):
        raise APIError(400, f"the body must be a JSON object, got {type(body).__name__}")
    model = body.get("model")
    if not isinstance(model, str):
        raise APIError(400, "model is required: a string, the id GET /v1/models lists", "model")
    if model != model_name:
        raise APIError(404, f"the model {model!r} does not exist; this server serves {model_name!r}", "model",
                       code="model_not_found")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise APIError(400, "messages is required: a non-empty list of {\"role\", \"content\"} objects", "messages")
    if len(messages) > MAX_MESSAGES:
        raise APIError(400, f"messages has {len(messages)} entries; at most {MAX_MESSAGES}", "messages")
    turns = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise APIError(400, f"messages[{index}] must be an object with role and content", f"messages[{index}]")
        role = "system" if message.get("role") == "developer" else message.get("role")  # OpenAI's newer name
        if role not in ("system", "user", "assistant"):
            raise APIError(400, f"messages[{index}].role must be 'system', 'user' or 'assistant', got "
                                f"{json.dumps(message.get('role'))[:40]}", f"messages[{index}].role")
        turns.append({"role": role, "content": _content(message, index)})
    try:
        check_turns(turns, "messages")
    except ValueError as error:
        raise APIError(400, str(error).replace("turn ", "message ", 1), "messages") from None
    if turns[-1]["role"] != "user":
        raise APIError(400, "the last message must be the user's: the reply answers it", "messages")
    if body.get("n", 1) != 1:
        raise APIError(400, "n must be 1: this server writes one reply per request", "n")
    for option in ("tools", "functions", "response_format", "logprobs", "logit_bias", "top_logprobs"):
        if body.get(option) not in (None, False):
            raise APIError(400, f"{option} is not supported by this server", option)
    for option in ("presence_penalty", "frequency_penalty"):
        if body.get(option) not in (None, 0, 0.0):
            raise APIError(400, f"{option} is not supported by this server (only 0)", option)
    longest = context_length - 1
    max_tokens = _integer(body, "max_tokens", 1, longest, None)
    max_tokens = _integer(body, "max_completion_tokens", 1, longest, max_tokens)  # OpenAI's newer name
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and not (isinstance(stop, list) and len(stop) <= MAX_STOP_SEQUENCES
                                 and all(isinstance(s, str) and s for s in stop)):
        raise APIError(400, f"stop must be a non-empty string or a list of at most {MAX_STOP_SEQUENCES} of them", "stop")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise APIError(400, f"stream must be true or false, got {json.dumps(stream)[:40]}", "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise APIError(400, "stream_options must be an object", "stream_options")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise APIError(400, f"seed must be an integer, got {json.dumps(seed)[:40]}", "seed")
    top_p = _number(body, "top_p", 0, 1, 1.0, low_open=True)
    return {"history": turns[:-1], "message": turns[-1]["content"],
            "max_tokens": max_tokens or min(256, context_length // 2),
            "temperature": _number(body, "temperature", 0, 2, DEFAULT_TEMPERATURE),
            "top_p": None if top_p == 1 else top_p, "stop": stop or [], "stream": stream,
            "include_usage": bool(options.get("include_usage")), "seed": seed}


def holdback(text, stops):
    """How many characters at the end of ``text`` could be the start of a stop sequence (notebook 16).

    Those wait: if the next piece completes the stop sequence, they must never have been sent.
    """
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:size]):
                longest = max(longest, size)
                break
    return longest


class StopCutter:
    """A reply's text cut at the first stop sequence, and how much of it may be sent yet (notebook 16)."""

    def __init__(self, stops):
        self.stops, self.text, self.sent, self.finish_reason = stops, "", 0, None

    def usage(self):
        prompt, completion = self.prompt_tokens, self.completion_tokens
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def add(self, piece):
        """Take the next piece of text; True when a stop sequence has just ended the reply."""
        self.text += piece
        cut = min((i for i in (self.text.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.text, self.finish_reason = self.text[:cut], "stop"
            return True
        return False

    def ready(self):
        """The text that can be sent now (none of what might begin a stop sequence), or "" ."""
        ready = len(self.text) if self.finish_reason else len(self.text) - holdback(self.text, self.stops)
        if ready <= self.sent:
            return ""
        piece, self.sent = self.text[self.sent:ready], ready
        return piece


class Generation(StopCutter):
    """One reply written one request at a time, the model shared by turns (``batching="none"``; notebook 16)."""

    def __init__(self, shared, tokenizer, settings):
        super().__init__(settings["stop"])
        generator = _seeded_generator(shared, settings["seed"])
        try:
            self.stream = stream_chat(shared, tokenizer, settings["history"], settings["message"],
                                      settings["max_tokens"], settings["temperature"], None, settings["top_p"], 1.0,
                                      generator)
        except ValueError as error:  # a character the tokenizer lacks, a last message too long for the context
            raise _prompt_error(error) from None
        self.dropped_turns = self.stream.dropped_turns

    @property
    def completion_tokens(self):
        return self.stream.completion_tokens

    @property
    def prompt_tokens(self):
        return self.stream.prompt_tokens

    def next_piece(self):
        """The next text that can be sent, or None when the reply is over (runs in a worker thread)."""
        while self.finish_reason is None:
            piece = next(self.stream, None)
            if piece is None:
                self.finish_reason = self.stream.finish_reason or "stop"
            elif self.add(piece):
                self.stream.cancel()
            piece = self.ready()
            if piece:
                return piece
        return None

    async def next_piece_async(self):
        import anyio

        return await anyio.to_thread.run_sync(self.next_piece)  # one token's work in a worker thread

    def cancel(self):
        self.stream.cancel()


class BatchedGeneration(StopCutter):
    """One reply written by the scheduler, in one batch with every other active request (``batching="continuous"``;
    notebook 21). The scheduler's thread hands tokens to this request's asyncio queue: no thread waits per request."""

    def __init__(self, scheduler, model, tokenizer, settings, loop):
        import asyncio

        from .batching import QueueFull, Request

        super().__init__(settings["stop"])
        generator = _seeded_generator(model, settings["seed"])
        try:
            template, prompt, self.dropped_turns = chat_prompt(model, tokenizer, settings["history"], settings["message"],
                                                               settings["max_tokens"], settings["temperature"], None,
                                                               settings["top_p"], 1.0, generator)
        except ValueError as error:
            raise _prompt_error(error) from None
        self.events = asyncio.Queue()
        self.pieces = TextPieces(tokenizer)
        self.prompt_tokens, self.completion_tokens = len(prompt), 0
        self.request = Request(prompt, settings["max_tokens"], settings["temperature"], None, settings["top_p"],
                               stop=lambda token: template.ends_turn(tokenizer, token), generator=generator,
                               vocab_limit=len(tokenizer),
                               on_event=lambda kind, value: loop.call_soon_threadsafe(self.events.put_nowait, (kind, value)))
        try:
            scheduler.submit(self.request)
        except QueueFull as error:
            raise APIError(429, f"the server is busy: {error}; try again in a moment", type="rate_limit_error",
                           code="queue_full") from None

    async def next_piece_async(self):
        """The next text that can be sent, or None when the reply is over."""
        while self.finish_reason is None:
            kind, value = await self.events.get()
            if kind == "token":
                self.completion_tokens += 1
                if self.add(self.pieces.push(value)):
                    self.request.cancel()  # a stop sequence: the scheduler drops the row at its next step
            else:
                if value == "error":
                    raise APIError(500, f"generation failed: {self.request.error}", type="server_error")
                self.add(self.pieces.flush())
                self.finish_reason = self.finish_reason or ("length" if value == "length" else "stop")
            piece = self.ready()
            if piece:
                return piece
        return None

    def cancel(self):
        self.request.cancel()


def _seeded_generator(model, seed):
    """The request's own random generator, on the model's device, or None when the request gave no seed."""
    if seed is None:
        return None
    return torch.Generator(device=next(model.parameters()).device).manual_seed(seed % 2**63)


def _prompt_error(error):
    code = "context_length_exceeded" if "fit in the context" in str(error) else None
    return APIError(400, str(error), "messages", code=code)


#: How requests share the model: ``"continuous"`` (one batch, rows joining and leaving between steps; notebook 21)
#: or ``"none"`` (one forward pass of one request at a time, taking turns; notebook 16).
BATCHING = ("continuous", "none")


def create_app(model, tokenizer, model_name="course-gpt", api_key=None, batching="continuous", max_batch=32,
               max_waiting=64):
    """The FastAPI application serving ``model`` (a chat model and its chat tokenizer) (notebook 16).

    ``batching="continuous"`` (notebook 21): a ``course_lib.batching.Scheduler`` owns the model and
    steps every active request in one forward pass, at most ``max_batch`` at once; up to
    ``max_waiting`` more wait, and a request beyond them gets a 429. ``batching="none"``: each
    request generates on its own, the model shared one forward pass at a time.
    """
    require_fastapi()
    import asyncio
    import contextlib

    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
    from starlette.exceptions import HTTPException

    from .batching import Scheduler

    template_of(tokenizer)
    if batching not in BATCHING:
        raise ValueError(f"batching must be one of {BATCHING}, got {batching!r}")
    shared = SharedModel(model)
    scheduler = Scheduler(model.eval(), max_batch, max_waiting) if batching == "continuous" else None

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        if scheduler is not None:
            scheduler.start()
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.stop()

    app = FastAPI(title="course_lib chat server", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.scheduler = scheduler
    app.state.active, app.state.tokens_total, app.state.counter_lock = 0, 0, threading.Lock()
    created = int(time.time())

    def error_response(error):
        headers = {"Retry-After": "1"} if error.status == 429 else None  # a full queue: come back in a second
        return JSONResponse(error.body(), status_code=error.status, headers=headers)

    @app.exception_handler(APIError)
    async def api_error(_request, error):
        return error_response(error)

    @app.exception_handler(HTTPException)
    async def http_error(_request, error):  # unknown paths and methods, as OpenAI-style errors too
        kind = {404: "not_found_error", 405: "invalid_request_error"}.get(error.status_code, "invalid_request_error")
        return error_response(APIError(error.status_code, str(error.detail), type=kind))

    @app.exception_handler(Exception)
    async def server_error(_request, error):  # a bug: say so, as an error object, and keep serving
        return error_response(APIError(500, f"internal error ({type(error).__name__}); the server keeps running",
                                       type="server_error"))

    def check_key(request):
        if api_key is None:
            return
        given = request.headers.get("authorization", "")
        if not secrets.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
            what = "missing" if not given else "wrong"
            raise APIError(401, f"the API key is {what}: send the header 'Authorization: Bearer <key>'",
                           type="authentication_error", code="invalid_api_key")

    async def read_json(request):
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            raise APIError(413, f"the body is larger than {MAX_BODY_BYTES:,} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():  # counted as it arrives: a client may send more than it declared
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise APIError(413, f"the body is larger than {MAX_BODY_BYTES:,} bytes")
            chunks.append(chunk)
        try:
            return json.loads(b"".join(chunks))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            detail = f"{error.msg} at line {error.lineno} column {error.colno}" if isinstance(error, json.JSONDecodeError) else "not UTF-8"
            raise APIError(400, f"the body is not valid JSON ({detail})") from None
        except RecursionError:
            raise APIError(400, "the body's JSON is nested too deeply") from None
        except ValueError as error:  # e.g. an integer of more digits than Python converts
            raise APIError(400, f"the body's JSON cannot be read: {str(error)[:120]}") from None

    def count(active=0, tokens=0):
        with app.state.counter_lock:
            app.state.active += active
            app.state.tokens_total += tokens

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": model_name, "batching": batching, "active_generations": app.state.active,
                "batch_size": scheduler.active if scheduler else None,
                "waiting": len(scheduler.waiting) if scheduler else None, "tokens_generated": app.state.tokens_total}

    @app.get("/v1/models")
    async def models(request: Request):
        check_key(request)
        return {"object": "list", "data": [{"id": model_name, "object": "model", "created": created, "owned_by": "course_lib"}]}

    @app.get("/", response_class=HTMLResponse)
    async def page():
        as_script = json.dumps(model_name).replace("<", "\\u003c")  # a name like "</script>" stays a string
        return CHAT_PAGE.replace("{{MODEL}}", as_script).replace("{{NEEDS_KEY}}", json.dumps(api_key is not None))

    @app.post("/v1/chat/completions")
    async def completions(request: Request):
        check_key(request)
        settings = parse_request(await read_json(request), model_name, model.config.context_length)
        if scheduler is not None:
            generation = BatchedGeneration(scheduler, model, tokenizer, settings, asyncio.get_running_loop())
        else:
            generation = Generation(shared, tokenizer, settings)
        reply_id, now = f"chatcmpl-{secrets.token_hex(12)}", int(time.time())
        headers = {"X-Dropped-Messages": str(generation.dropped_turns)}

        def chunk(delta, finish_reason=None, usage=None):
            body = {"id": reply_id, "object": "chat.completion.chunk", "created": now, "model": model_name,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
            if usage is not None:
                body["choices"], body["usage"] = [], usage
            return f"data: {json.dumps(body)}\n\n"

        counted = 0

        async def next_piece():
            nonlocal counted
            piece = await generation.next_piece_async()
            count(tokens=generation.completion_tokens - counted)
            counted = generation.completion_tokens
            return piece

        count(active=1)
        if not settings["stream"]:
            try:
                while not await request.is_disconnected():  # a client that went away stops its generation
                    if await next_piece() is None:
                        break
            finally:
                generation.cancel()
                count(active=-1)
            return JSONResponse({
                "id": reply_id, "object": "chat.completion", "created": now, "model": model_name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": generation.text},
                             "finish_reason": generation.finish_reason}],
                "usage": generation.usage(), "dropped_messages": generation.dropped_turns}, headers=headers)

        async def events():
            try:
                yield chunk({"role": "assistant", "content": ""})
                while (piece := await next_piece()) is not None:
                    yield chunk({"content": piece})
                yield chunk({}, generation.finish_reason)
                if settings["include_usage"]:
                    yield chunk(None, usage=generation.usage())
                yield "data: [DONE]\n\n"
            except APIError as error:  # the stream has begun: the error goes as one last event
                yield f"data: {json.dumps(error.body())}\n\n"
            finally:  # also when the client went away: the generation stops before its next token
                generation.cancel()
                count(active=-1)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={**headers, "Cache-Control": "no-cache"})

    return app


def serve(model, tokenizer, host="127.0.0.1", port=8000, model_name="course-gpt", api_key=None, log_level="info",
          batching="continuous", max_batch=32, max_waiting=64):
    """Run the server until Ctrl-C (notebook 16; the command line's ``serve``; ``batching``: notebook 21)."""
    require_fastapi()
    import uvicorn

    app = create_app(model, tokenizer, model_name, api_key, batching, max_batch, max_waiting)
    uvicorn.run(app, host=host, port=port, log_level=log_level)


class BackgroundServer:
    """The server in a thread of this process, for a notebook or a test: ``with BackgroundServer(app) as url:`` (notebook 16)."""

    def __init__(self, app, host="127.0.0.1", port=0):
        require_fastapi()
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start (is the port in use?)")
            time.sleep(0.02)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self.url

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


CHAT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>course_lib chat</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
 #log div { margin: .4rem 0; padding: .5rem .7rem; border-radius: .6rem; white-space: pre-wrap; }
 .user { background: #e8f0fe; margin-left: 4rem !important; } .assistant { background: #f1f3f4; margin-right: 4rem !important; }
 .error { color: #b00020; } form { display: flex; gap: .5rem; margin-top: 1rem; } #message { flex: 1; padding: .5rem; }
 small { color: #666; }
</style></head>
<body>
<h1>Chat with <span id="model"></span></h1>
<p><small>Served by <code>python -m course_lib serve</code>. The page keeps the conversation and sends it with every message.</small></p>
<div id="log"></div>
<div id="status"><small></small></div>
<form id="form">
 <input id="message" autocomplete="off" placeholder="Type a message and press Enter" required>
 <button id="send">Send</button> <button id="reset" type="button">Reset</button>
</form>
<p><label>temperature <input id="temperature" type="number" min="0" max="2" step="0.1" value="0.7" style="width:4rem"></label>
 <label id="keyrow" hidden>API key <input id="key" type="password" autocomplete="off"></label></p>
<script>
const MODEL = {{MODEL}}, NEEDS_KEY = {{NEEDS_KEY}};
const log = document.getElementById("log"), status = document.querySelector("#status small");
let messages = [];
document.getElementById("model").textContent = MODEL;
document.getElementById("keyrow").hidden = !NEEDS_KEY;
function bubble(role, text) {
  const div = document.createElement("div");
  div.className = role; div.textContent = text; log.appendChild(div); return div;
}
document.getElementById("reset").onclick = () => { messages = []; log.textContent = ""; status.textContent = "history cleared"; };
document.getElementById("form").onsubmit = async (event) => {
  event.preventDefault();
  const box = document.getElementById("message"), text = box.value.trim();
  if (!text) return;
  box.value = ""; bubble("user", text);
  const reply = bubble("assistant", ""); status.textContent = "generating...";
  const headers = {"Content-Type": "application/json"};
  if (NEEDS_KEY) headers["Authorization"] = "Bearer " + document.getElementById("key").value;
  const body = {model: MODEL, messages: [...messages, {role: "user", content: text}], stream: true,
                temperature: Number(document.getElementById("temperature").value)};
  try {
    const response = await fetch("/v1/chat/completions", {method: "POST", headers, body: JSON.stringify(body)});
    if (!response.ok) { const e = await response.json(); throw new Error(e.error ? e.error.message : response.statusText); }
    const reader = response.body.getReader(), decoder = new TextDecoder();
    let buffer = "", finish = null;
    while (true) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, {stream: true});
      let end;
      while ((end = buffer.indexOf("\\n\\n")) >= 0) {
        const line = buffer.slice(0, end).trim(); buffer = buffer.slice(end + 2);
        if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
        const data = JSON.parse(line.slice(6));
        const choice = data.choices && data.choices[0];
        if (choice && choice.delta && choice.delta.content) reply.textContent += choice.delta.content;
        if (choice && choice.finish_reason) finish = choice.finish_reason;
      }
    }
    messages.push({role: "user", content: text});
    if (reply.textContent.trim()) messages.push({role: "assistant", content: reply.textContent});
    else messages.pop();
    const dropped = Number(response.headers.get("X-Dropped-Messages") || 0);
    status.textContent = (finish === "length" ? "cut at the token limit" : "done") +
                         (dropped ? "; the " + dropped + " oldest messages no longer fit the model's context" : "");
    reply.classList.add("done");
  } catch (error) {
    reply.remove(); bubble("error", "error: " + error.message); status.textContent = "";
  }
};
</script>
</body></html>
"""
