"""The chat server under load, both ways in one run: continuous batching against one request at a time (notebook 21).

The server (``course_lib.server``, FastAPI on uvicorn) runs in a child process on 127.0.0.1, once
with ``batching="continuous"`` and once with ``batching="none"``; clients are ``httpx.AsyncClient``s
in this process, so they do not share the server's interpreter. The model is a chat checkpoint
(default: notebook 14's memory chat model, trained in about 15 s when missing) or a GGUF file
(``--gguf smollm2``). Every request is greedy, with ``--max-tokens`` as its limit.

For 1, 8, 32 and 64 concurrent clients (each sending its next request when the last is answered),
both modes serve the same requests; printed: requests/s, p50 and p95 latency, time to the first
token (every request is streamed), completion tokens/s, and whether the replies of the two modes are
identical. ``--soak N`` then sends N requests mixing good, bad, streamed and abandoned ones to the
continuous server and reports what is left: active requests, the server's resident memory against
its level after warm-up, and /health.

    python benchmarks/serve_load.py [--gguf smollm2 | --checkpoint PATH] [--max-tokens 32] [--requests 64] [--soak 2000]
"""
import argparse
import asyncio
import json
import multiprocessing
import random
import statistics
import time
from pathlib import Path

import httpx
import torch
from _machine import describe

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "notebooks" / "runs" / "memory_chat.pt"
CONCURRENCY = (1, 8, 32, 64)


def load(args, device):
    if args.gguf:
        from course_lib.gguf import fetch_smollm2, load_gguf

        return load_gguf(fetch_smollm2() if args.gguf == "smollm2" else args.gguf, device=device)
    from course_lib.recipes import memory_chat_model

    model, tokenizer, _ = memory_chat_model(Path(args.checkpoint), device)
    return model, tokenizer


def serve_in_child(args, batching, port_queue, threads):
    """The child process: load the model, start the server on a free port, report the port, serve."""
    import uvicorn

    import course_lib
    from course_lib.server import create_app

    torch.set_num_threads(threads)
    model, tokenizer = load(args, course_lib.get_device(args.device))
    app = create_app(model, tokenizer, "bench", batching=batching, max_batch=args.max_batch, max_waiting=args.max_waiting)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)

    async def run():
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        port_queue.put(server.servers[0].sockets[0].getsockname()[1])
        await task

    asyncio.run(run())


class ChildServer:
    def __init__(self, args, batching, threads):
        context = multiprocessing.get_context("spawn")
        self.ports = context.Queue()
        self.process = context.Process(target=serve_in_child, args=(args, batching, self.ports, threads), daemon=True)

    def __enter__(self):
        self.process.start()
        self.url = f"http://127.0.0.1:{self.ports.get(timeout=300)}"
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.join(timeout=30)

    def resident_mib(self):
        with open(f"/proc/{self.process.pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


QUESTIONS = ["Hi!", "What is your name?", "Tell me about number {i}.", "How are you today?",
             "What is the capital of France?", "Write one sentence about the sea.", "Name a colour.", "Thanks!"]


def question(i):
    return QUESTIONS[i % len(QUESTIONS)].format(i=i)


async def one_request(client, i, max_tokens):
    """One streamed greedy request: (latency, time to first token, reply, completion tokens)."""
    payload = {"model": "bench", "messages": [{"role": "user", "content": question(i)}], "max_tokens": max_tokens,
               "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    started, first, text, tokens = time.perf_counter(), None, "", 0
    async with client.stream("POST", "/v1/chat/completions", json=payload) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: {"):
                continue
            event = json.loads(line[6:])
            if event.get("usage"):
                tokens = event["usage"]["completion_tokens"]
            for choice in event.get("choices", []):
                if choice["delta"].get("content"):
                    first = first or time.perf_counter()
                    text += choice["delta"]["content"]
    end = time.perf_counter()
    return end - started, (first or end) - started, text, tokens


async def run_load(url, concurrency, total, max_tokens):
    results = [None] * total
    next_index = iter(range(total))

    async def client_loop(client):
        for i in next_index:
            results[i] = await one_request(client, i, max_tokens)

    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    latencies = sorted(r[0] for r in results)
    firsts = sorted(r[1] for r in results)

    def p95(values):
        return values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]

    return {"rps": total / seconds, "p50": statistics.median(latencies), "p95": p95(latencies),
            "ttft50": statistics.median(firsts), "tokens_per_s": sum(r[3] for r in results) / seconds,
            "replies": [r[2] for r in results]}


async def soak(url, total, max_tokens, seed=0):
    """``total`` requests, 8 at a time: good, streamed, bad (a 4xx is expected) and abandoned mid-stream."""
    rng = random.Random(seed)
    counts = {"good": 0, "streamed": 0, "bad": 0, "abandoned": 0, "unexpected": 0}
    bad_bodies = [b"{not json", b"[]", json.dumps({"model": "bench", "messages": []}).encode(),
                  json.dumps({"model": "bench", "messages": [{"role": "user", "content": "hi"}], "temperature": 9}).encode(),
                  json.dumps({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}).encode()]
    work = iter(range(total))

    async def worker(client):
        for i in work:
            kind = rng.choice(["good", "streamed", "bad", "abandoned"])
            body = {"model": "bench", "messages": [{"role": "user", "content": question(i)}], "max_tokens": max_tokens,
                    "temperature": rng.choice([0, 0.8]), "seed": i}
            try:
                if kind == "good":
                    ok = (await client.post("/v1/chat/completions", json=body)).status_code == 200
                elif kind == "bad":
                    response = await client.post("/v1/chat/completions", content=rng.choice(bad_bodies),
                                                 headers={"content-type": "application/json"})
                    ok = 400 <= response.status_code < 500
                else:
                    async with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
                        ok = response.status_code == 200
                        async for _ in response.aiter_lines():
                            if kind == "abandoned":
                                break  # leaves mid-stream: the server must drop the row
            except httpx.HTTPError:
                ok = False
            counts[kind if ok else "unexpected"] += 1

    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        await asyncio.gather(*(worker(client) for _ in range(8)))
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    source.add_argument("--gguf", default=None, help="a GGUF file, or smollm2")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--requests", type=int, default=64, help="requests per concurrency level and mode")
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--max-waiting", type=int, default=128)
    parser.add_argument("--soak", type=int, default=0, help="requests of the soak (0: none)")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    import course_lib

    device = course_lib.get_device(args.device)
    threads = torch.get_num_threads()
    print(describe(device))
    model, _ = load(args, device)
    print(f"model: {args.gguf or args.checkpoint}, {model.num_parameters():,} parameters, context "
          f"{model.config.context_length}; {args.requests} streamed greedy requests of up to {args.max_tokens} tokens "
          f"per row; server in a child process with {threads} threads")
    del model
    table = {}
    for batching in ("continuous", "none"):
        with ChildServer(args, batching, threads) as server:
            asyncio.run(run_load(server.url, 2, 4, args.max_tokens))  # warm-up
            for concurrency in CONCURRENCY:
                table[batching, concurrency] = asyncio.run(run_load(server.url, concurrency, args.requests, args.max_tokens))
    print(f"{'clients':>7} {'mode':>10} {'req/s':>7} {'p50 s':>7} {'p95 s':>7} {'TTFT p50':>9} {'tok/s':>7}")
    for concurrency in CONCURRENCY:
        for batching in ("continuous", "none"):
            r = table[batching, concurrency]
            print(f"{concurrency:>7} {batching:>10} {r['rps']:7.2f} {r['p50']:7.3f} {r['p95']:7.3f} {r['ttft50']:9.3f} "
                  f"{r['tokens_per_s']:7.0f}")
        same = table["continuous", concurrency]["replies"] == table["none", concurrency]["replies"]
        ratio = table["continuous", concurrency]["rps"] / table["none", concurrency]["rps"]
        print(f"{'':>7} continuous/none: {ratio:.2f}x requests/s; identical replies: {same}")
    single = table["continuous", 1]["p50"]
    print(f"continuous at 32 clients: p50 latency {table['continuous', 32]['p50'] / single:.2f}x the single-client p50")

    if args.soak:
        with ChildServer(args, "continuous", threads) as server:
            asyncio.run(run_load(server.url, 8, 32, args.max_tokens))  # warm-up
            warm = server.resident_mib()
            started = time.perf_counter()
            counts = asyncio.run(soak(server.url, args.soak, args.max_tokens))
            seconds = time.perf_counter() - started
            time.sleep(1.0)  # abandoned rows leave at the scheduler's next step
            health = httpx.get(server.url + "/health", timeout=10).json()
            after = server.resident_mib()
            print(f"soak: {args.soak} requests in {seconds:.0f} s: {counts}")
            print(f"after it: /health {health}; resident memory {after:.0f} MiB against {warm:.0f} MiB after warm-up "
                  f"({after - warm:+.0f} MiB)")


if __name__ == "__main__":
    main()
