"""The default policy in a real proxy: a prompt without any of its keywords is routed by meaning,
and the headers say so."""

from __future__ import annotations

import pytest
from openai import OpenAI

from tests.helpers import DEFAULT, MASTER_KEY, start_proxy, write_policy

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def proxy(simulator, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("meaning-proxy")
    started = start_proxy(simulator, write_policy(workdir, source=DEFAULT), workdir)
    yield started
    started.stop()


@pytest.mark.parametrize(
    ("prompt", "route", "model"),
    [
        ("Show that the square root of 2 is irrational", "reasoning", "deepseek-r1"),
        ("帮我写一个快速排序的Python函数", "code", "qwen3-32b"),
    ],
)
def test_a_paraphrase_is_routed_by_meaning_and_the_headers_say_why(proxy, prompt, route, model):
    client = OpenAI(base_url=f"{proxy.url}/v1", api_key=MASTER_KEY, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": prompt}])
    assert raw.headers["x-router-route"] == route and raw.headers["x-router-model"] == model
    assert raw.headers["x-router-reason"].startswith(f"classified as '{route}' (p ")
    assert raw.parse().choices[0].message.content
