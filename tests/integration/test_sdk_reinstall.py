"""`router.install` called again replaces the earlier installation whole: LiteLLM copied the first
one's callbacks into its event lists at the first call, and they must not keep the events."""

from __future__ import annotations

import litellm

from tests.helpers import poll_until, sdk_installed, write_policy

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def test_a_second_install_gets_the_events_and_the_first_none(simulator, sim, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with sdk_installed(simulator.url, write_policy(tmp_path / "a")) as first:
        litellm.completion(model="auto", messages=QUESTION)  # LiteLLM registers the first hooks now
        poll_until(lambda: first.runtime.health.figures("deepseek-v4-flash", 60).requests == 1, 5, "the first's event")
    with sdk_installed(simulator.url, write_policy(tmp_path / "b")) as second:
        litellm.completion(model="auto", messages=QUESTION)
    # The success event comes just after the answer.
    poll_until(lambda: second.runtime.health.figures("deepseek-v4-flash", 60).requests == 1, 5, "the second's event")
    assert first.runtime.health.figures("deepseek-v4-flash", 60).requests == 1
