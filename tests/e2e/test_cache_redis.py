"""Two proxy processes sharing one real Redis server: what one caches, the other serves; a Redis
outage fails no request, and the shared cache resumes when Redis returns."""

from __future__ import annotations

import time

import pytest
from openai import OpenAI

from router.engine.runtime import SYNC_INTERVAL
from tests.helpers import MASTER_KEY, poll_until, proxy_pair, semantic_entries, write_policy

pytestmark = pytest.mark.e2e
FLASH = "deepseek-v4-flash"


@pytest.fixture(scope="module")
def proxies(simulator, redis_server, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cache-redis")
    policy = write_policy(workdir, state=f'{{backend: redis, url: "{redis_server.url}"}}')
    with proxy_pair(simulator, policy, workdir) as (first, second):
        first.policy = policy
        yield first, second


def ask(proxy, content: str):
    raw = OpenAI(
        base_url=f"{proxy.url}/v1", api_key=MASTER_KEY, max_retries=0
    ).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": content}], temperature=0
    )
    return raw.headers["x-router-cache"], raw.parse().choices[0].message.content


def test_an_answer_cached_by_one_instance_is_served_by_the_other(proxies, sim, redis_url):
    first, second = proxies
    policy = first.policy
    status, answer = ask(first, "What is the largest ocean on Earth?")
    assert status == "miss"
    poll_until(lambda: semantic_entries(policy) == 1, 10, "the answer stored")
    assert ask(second, "What is the largest ocean on Earth?") == ("exact", answer)
    # The semantic entry reaches the other instance's index through the shared log, replayed every
    # 0.5 s: wait out that interval (nothing of the index shows outside; asking before then would be
    # a miss that stores the paraphrase itself).
    time.sleep(3 * SYNC_INTERVAL)
    assert ask(second, "Which ocean on Earth is the largest?")[0].startswith("semantic")
    assert sim.count(FLASH) == 1


def test_a_redis_outage_fails_no_request_and_the_cache_resumes(proxies, sim, redis_server, redis_url):
    first, second = proxies
    redis_server.stop()
    try:
        answers = [ask(proxy, f"Give me a synonym for word number {i}.") for i in range(3) for proxy in proxies]
        assert all(status in ("miss", "exact") for status, _ in answers)  # every request answered 200
        assert len(answers) == 6
    finally:
        redis_server.start()
    time.sleep(1.2)  # past the store's retry pause
    stored = semantic_entries(first.policy)
    ask(first, "What is the smallest planet in the solar system?")
    poll_until(lambda: semantic_entries(first.policy) > stored, 10, "the answer stored")
    assert ask(second, "What is the smallest planet in the solar system?")[0] == "exact"
    assert sim.count(FLASH) == 7  # six during the outage (no sharing), one after
    for proxy in proxies:  # one line for the outage and one for the return, not one per request
        log = proxy.log.read_text()
        assert log.count("is unreachable") == 1 and log.count("reachable again") == 1
