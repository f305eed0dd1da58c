"""A three-turn conversation through two proxy processes on one real Redis server: the turns after
the first stay on the model the first was routed to, whichever instance serves them, and the
headers say affinity decided."""

from __future__ import annotations

import pytest
import redis
from openai import OpenAI

from tests.helpers import DEFAULT, MASTER_KEY, poll_until, proxy_pair, write_policy

pytestmark = pytest.mark.e2e
OPENING = "My Python script crashes with a KeyError when it reads the config file. Help me find the bug."


@pytest.fixture(scope="module")
def proxies(simulator, redis_server, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("affinity-redis")
    policy = write_policy(workdir, state=f'{{backend: redis, url: "{redis_server.url}"}}', source=DEFAULT)
    with proxy_pair(simulator, policy, workdir) as pair:
        yield pair


def send(proxy, messages: list[dict]):
    client = OpenAI(base_url=f"{proxy.url}/v1", api_key=MASTER_KEY, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=messages)
    return raw.headers, raw.parse().choices[0].message.content


def conversations(url: str) -> int:
    return sum(1 for _ in redis.Redis.from_url(url).scan_iter(match="*affinity:*"))


def test_a_conversation_stays_on_its_model_across_instances(proxies, redis_url):
    first, second = proxies
    messages = [{"role": "user", "content": OPENING}]
    headers, answer = send(first, messages)
    assert (headers["x-router-route"], headers["x-router-model"]) == ("code", "qwen3-32b")
    assert headers["x-router-affinity"] == "started"
    # The instance writes what the turn was given within its write interval; a person (or an
    # agent waiting on a real model) sends the next turn later than that.
    poll_until(lambda: conversations(redis_url) == 1, 10, "the conversation stored")
    # Alone, this follow-up would be classified as reasoning: affinity keeps it on the coder.
    follow_up = "thanks, and can you add a test for it?"
    messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": "ok now fix it"}]
    headers, answer = send(second, messages)
    assert (headers["x-router-model"], headers["x-router-affinity"]) == ("qwen3-32b", "kept")
    assert "conversation affinity: turn 2 stays on route 'code'" in headers["x-router-reason"]
    messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": follow_up}]
    headers, _ = send(first, messages)
    assert (headers["x-router-model"], headers["x-router-affinity"]) == ("qwen3-32b", "kept")
    assert "turn 3" in headers["x-router-reason"]
    fresh, _ = send(second, [{"role": "user", "content": follow_up}])  # a new conversation is routed afresh
    assert (fresh["x-router-route"], fresh["x-router-affinity"]) == ("reasoning", "started")
