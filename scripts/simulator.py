#!/usr/bin/env python3
"""A simulator of OpenAI-compatible providers: the upstream of the demo proxy, the tests and the benchmarks.

Every model answers from a profile (latency, time to first token, tokens per second, error and 429
rates, reasoning tokens, truncation, context window) that can be changed while it runs:

    PUT  /admin/profiles/{model}   merge fields into a model's profile ("*" is the default profile)
    GET  /admin/profiles           every profile
    GET  /admin/stats              request counts per model (what tests assert on)
    GET  /admin/requests?model=M   the last request bodies a model received, and when requests arrived
    POST /admin/reset              zero the counters (and, with {"profiles": true}, the profiles)

Answers are deterministic for a given model and prompt, so cached and fresh answers can be compared.

    python scripts/simulator.py --port 4010
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import time
from collections import defaultdict, deque
from dataclasses import asdict, dataclass, fields, replace

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau".split()
# Reasoning words are three letters and one token each, to a 4-characters-a-token estimate and to
# LiteLLM's tokenizer alike: n of them make n tokens, so tests know the figure in advance.
THINKING = "the and for but yes now see you can".split()


@dataclass(frozen=True)
class Profile:
    latency_ms: float = 0.0  # median delay before a non-streamed answer (and the default TTFT)
    latency_jitter: float = 0.0  # lognormal sigma around the median; 0 gives a fixed delay
    ttft_ms: float | None = None  # streams: delay before the first token (defaults to latency_ms)
    tokens_per_second: float = 0.0  # streams: pace of tokens after the first; 0 sends them at once
    output_tokens: int = 24
    reasoning_tokens: int = 0  # emitted as reasoning_content and counted in completion tokens
    reasoning_usage: bool = True  # report usage.completion_tokens_details.reasoning_tokens
    error_rate: float = 0.0  # share of requests answered 500
    rate_limit_rate: float = 0.0  # share answered 429 with retry-after
    retry_after: float = 1.0
    truncate: bool = False  # always stop with finish_reason "length"
    context: int = 1_000_000  # prompts above this many tokens get a 400 context_length_exceeded


class State:
    def __init__(self) -> None:
        self.profiles: dict[str, Profile] = {"*": Profile()}
        self.reset_counts()

    def reset_counts(self) -> None:
        self.stats: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.requests: dict[str, deque] = defaultdict(lambda: deque(maxlen=200))
        self.arrivals: dict[str, deque] = defaultdict(lambda: deque(maxlen=2000))  # epoch seconds

    def profile(self, model: str) -> Profile:
        return self.profiles.get(model) or self.profiles["*"]

    def count(self, model: str, what: str) -> None:
        self.stats[model][what] += 1


STATE = State()


def _error(status: int, message: str, kind: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": str(status)}}, status, headers=headers)


def _prompt_text(body: dict) -> str:
    parts = []
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        parts.append(content or "")
    return "\n".join(parts)


def _delay(median_ms: float, jitter: float) -> float:
    if median_ms <= 0:
        return 0.0
    return median_ms / 1000 * math.exp(random.gauss(0, jitter)) if jitter else median_ms / 1000


def _words(seed: str, count: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(WORDS) for _ in range(count)]


def _answer(model: str, body: dict, profile: Profile) -> dict:
    prompt = _prompt_text(body)
    digest = hashlib.sha256(f"{model}\n{prompt}".encode()).hexdigest()[:12]
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    total = profile.output_tokens
    finish = "stop"
    if profile.truncate or (limit and limit < total):
        total, finish = min(total, limit or total) // (2 if profile.truncate else 1), "length"
    answer = [f"[{model}#{digest}]"] + _words(digest, max(total - 1, 0))
    thinking = random.Random(digest + "r")
    reasoning = [thinking.choice(THINKING) for _ in range(profile.reasoning_tokens)]
    prompt_tokens = max(1, len(prompt) // 4)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": len(answer) + len(reasoning),
        "total_tokens": prompt_tokens + len(answer) + len(reasoning),
    }
    if reasoning and profile.reasoning_usage:
        usage["completion_tokens_details"] = {"reasoning_tokens": len(reasoning)}
    return {"id": f"chatcmpl-{digest}", "answer": answer, "reasoning": reasoning, "finish": finish, "usage": usage}


async def chat_completions(request: Request):
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "body is not JSON", "invalid_request_error")
    model = str(body.get("model", ""))
    profile = STATE.profile(model)
    STATE.count(model, "requests")
    STATE.requests[model].append(body)
    STATE.arrivals[model].append(time.time())
    if random.random() < profile.rate_limit_rate:
        STATE.count(model, "rate_limited")
        return _error(
            429, "rate limited by the simulator", "rate_limit_error", {"retry-after": f"{profile.retry_after:g}"}
        )
    if random.random() < profile.error_rate:
        STATE.count(model, "errors")
        await asyncio.sleep(_delay(profile.latency_ms, profile.latency_jitter))
        return _error(500, "simulated server error", "server_error")
    result = _answer(model, body, profile)
    if result["usage"]["prompt_tokens"] > profile.context:
        STATE.count(model, "context_exceeded")
        return _error(400, f"maximum context length is {profile.context} tokens", "context_length_exceeded")
    STATE.count(model, "ok")
    if body.get("stream"):
        STATE.count(model, "streams")
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(_stream(model, result, profile, include_usage), media_type="text/event-stream")
    await asyncio.sleep(_delay(profile.latency_ms, profile.latency_jitter))
    message = {"role": "assistant", "content": " ".join(result["answer"])}
    if result["reasoning"]:
        message["reasoning_content"] = " ".join(result["reasoning"])
    return JSONResponse(
        {
            "id": result["id"],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": result["finish"]}],
            "usage": result["usage"],
        }
    )


async def _stream(model: str, result: dict, profile: Profile, include_usage: bool):
    def chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> str:
        payload = {"id": result["id"], "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
        payload["choices"] = [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]
        if usage:
            payload["usage"] = usage
        return f"data: {json.dumps(payload)}\n\n"

    ttft = profile.ttft_ms if profile.ttft_ms is not None else profile.latency_ms
    await asyncio.sleep(_delay(ttft, profile.latency_jitter))
    yield chunk({"role": "assistant", "content": ""})
    pace = 1 / profile.tokens_per_second if profile.tokens_per_second > 0 else 0.0
    # Words joined the way the whole answer joins them: a space before every word but the first.
    tokens = [("reasoning_content", (" " if i else "") + w) for i, w in enumerate(result["reasoning"])]
    tokens += [("content", (" " if i else "") + w) for i, w in enumerate(result["answer"])]
    for i, (field, text) in enumerate(tokens):
        if pace and i:
            await asyncio.sleep(pace)
        yield chunk({field: text})
    yield chunk({}, result["finish"])
    if include_usage:
        yield chunk({}, usage=result["usage"])
    yield "data: [DONE]\n\n"


async def embeddings(request: Request):
    body = await request.json()
    model = str(body.get("model", ""))
    STATE.count(model, "requests")
    inputs = body.get("input")
    inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
    dims = int(body.get("dimensions") or 384)
    data = []
    for i, text in enumerate(inputs):
        rng = random.Random(hashlib.sha256(str(text).encode()).digest())
        vec = [rng.gauss(0, 1) for _ in range(dims)]
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        data.append({"object": "embedding", "index": i, "embedding": [v / norm for v in vec]})
    tokens = sum(len(str(t)) // 4 + 1 for t in inputs)
    return JSONResponse(
        {"object": "list", "model": model, "data": data, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
    )


async def list_models(request: Request):
    names = sorted(set(STATE.profiles) - {"*"} | set(STATE.stats))
    return JSONResponse(
        {"object": "list", "data": [{"id": n, "object": "model", "owned_by": "simulator"} for n in names]}
    )


async def put_profile(request: Request):
    model = request.path_params["model"]
    changes = await request.json()
    known = {f.name for f in fields(Profile)}
    unknown = set(changes) - known
    if unknown:
        return _error(400, f"unknown profile fields {sorted(unknown)}; known: {sorted(known)}", "invalid_request_error")
    base = STATE.profiles.get(model) or STATE.profiles["*"]
    STATE.profiles[model] = replace(base, **changes)
    return JSONResponse(asdict(STATE.profiles[model]))


async def get_profiles(request: Request):
    return JSONResponse({name: asdict(p) for name, p in STATE.profiles.items()})


async def get_stats(request: Request):
    return JSONResponse({"models": {m: dict(c) for m, c in STATE.stats.items()}})


async def get_requests(request: Request):
    model = request.query_params.get("model", "")
    return JSONResponse(
        {"requests": list(STATE.requests.get(model, [])), "arrivals": list(STATE.arrivals.get(model, []))}
    )


async def reset(request: Request):
    options = await request.json() if await request.body() else {}
    STATE.reset_counts()
    if options.get("profiles"):
        STATE.profiles = {"*": Profile()}
    return JSONResponse({"reset": True})


async def health(request: Request):
    return JSONResponse({"status": "ok"})


def build_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/admin/profiles", get_profiles, methods=["GET"]),
            Route("/admin/profiles/{model:path}", put_profile, methods=["PUT"]),
            Route("/admin/stats", get_stats, methods=["GET"]),
            Route("/admin/requests", get_requests, methods=["GET"]),
            Route("/admin/reset", reset, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4010)
    parser.add_argument("--profiles", help="JSON file: {model: {profile fields}} applied at start")
    args = parser.parse_args()
    if args.profiles:
        with open(args.profiles, encoding="utf-8") as f:
            profiles = json.load(f)
        STATE.profiles["*"] = replace(STATE.profiles["*"], **profiles.pop("*", {}))
        for model, changes in profiles.items():
            STATE.profiles[model] = replace(STATE.profiles["*"], **changes)
    # Keep idle connections as long as real providers do (uvicorn closes them after 5 s by default),
    # so a proxy that waited a few seconds does not pay for reconnecting when measured.
    uvicorn.run(
        build_app(), host=args.host, port=args.port, log_level="warning", access_log=False, timeout_keep_alive=75
    )


if __name__ == "__main__":
    main()
