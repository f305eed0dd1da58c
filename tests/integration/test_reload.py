"""Hot reload of a policy file: valid edits take effect, invalid ones leave the last good policy serving."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from router import PolicyError, PolicyFile, route_body
from tests.helpers import poll_until

POLICY = """\
version: 1
models:
  a: {target: group-a, context: 8k}
  b: {target: group-b, context: 8k}
routes:
  - name: special
    when: {any: [special]}
    use: a
  - name: default
    use: DEFAULT_MODEL
"""


def write(path: Path, text: str) -> None:
    path.write_text(text)
    # Some file systems keep whole-second mtimes; make every write visibly newer.
    stamp = time.time() + write.bump
    write.bump += 1
    os.utime(path, (stamp, stamp))


write.bump = 1


def target(policy: PolicyFile, prompt: str = "hello") -> str:
    return route_body(policy.current, {"model": "auto", "messages": [{"role": "user", "content": prompt}]}).target


@pytest.fixture
def policy_path(tmp_path):
    path = tmp_path / "policy.yaml"
    write(path, POLICY.replace("DEFAULT_MODEL", "a"))
    return path


def test_a_valid_change_takes_effect(policy_path):
    policy = PolicyFile(policy_path)
    assert target(policy) == "group-a"
    write(policy_path, POLICY.replace("DEFAULT_MODEL", "b"))
    assert policy.refresh() is True
    assert target(policy) == "group-b"
    assert policy.refresh() is False  # nothing changed since


def test_an_invalid_change_keeps_the_last_good_policy(policy_path, caplog):
    policy = PolicyFile(policy_path)
    write(policy_path, POLICY.replace("DEFAULT_MODEL", "nope"))
    assert policy.refresh() is False
    assert target(policy) == "group-a"
    assert policy.last_error is not None
    assert "routes[1].use: unknown model 'nope'" in str(policy.last_error)
    assert any("last good policy keeps serving" in r.getMessage() for r in caplog.records)
    write(policy_path, POLICY.replace("DEFAULT_MODEL", "b"))
    assert policy.refresh() is True and policy.last_error is None


def test_a_deleted_file_keeps_the_last_good_policy(policy_path):
    policy = PolicyFile(policy_path)
    policy_path.unlink()
    assert policy.refresh() is False
    assert target(policy) == "group-a"


def test_an_invalid_file_at_start_raises(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\n")
    with pytest.raises(PolicyError):
        PolicyFile(path)


def test_the_watcher_picks_up_a_change_within_two_seconds(policy_path):
    policy = PolicyFile(policy_path, interval=0.1)
    policy.watch()
    try:
        write(policy_path, POLICY.replace("DEFAULT_MODEL", "b"))
        poll_until(lambda: target(policy) == "group-b", 2, "the watcher taking the change")
    finally:
        policy.close()


def test_a_target_outside_the_proxys_model_groups_is_refused_at_load_and_reload(tmp_path):
    from router.policy.loader import Groups

    path = tmp_path / "policy.yaml"
    groups = Groups("config.yaml", ("group-a", "group-b"))
    write(path, POLICY.replace("DEFAULT_MODEL", "b").replace("target: group-b", "target: group-c"))
    with pytest.raises(PolicyError) as caught:
        PolicyFile(path, groups=groups)
    assert f"{path}:4: models.b.target: 'group-c' is not a model group of config.yaml (group-a, group-b)" in str(
        caught.value
    )
    write(path, POLICY.replace("DEFAULT_MODEL", "b"))
    policy = PolicyFile(path, groups=groups)
    write(path, POLICY.replace("DEFAULT_MODEL", "b").replace("target: group-a", "target: group-typo"))
    assert policy.refresh() is False and target(policy, "special") == "group-a"  # the last good policy serves
    assert "'group-typo' is not a model group" in str(policy.last_error)
    wildcard = Groups("config.yaml", ("openai/*",))
    write(path, POLICY.replace("DEFAULT_MODEL", "b").replace("group-a", "openai/gpt-x").replace("group-b", "openai/y"))
    assert target(PolicyFile(path, groups=wildcard), "special") == "openai/gpt-x"


def test_an_edit_of_an_examples_file_reloads_the_policy(tmp_path):
    examples = tmp_path / "special.txt"
    write(examples, "special words\n")
    path = tmp_path / "policy.yaml"
    write(path, POLICY.replace("DEFAULT_MODEL", "b").replace("{any: [special]}", "{examples_file: special.txt}"))
    policy = PolicyFile(path)
    assert policy.current.policy.routes[0].when.examples == ("special words",)
    write(examples, "special words\nanother utterance\n")
    assert policy.refresh()
    assert policy.current.policy.routes[0].when.examples == ("special words", "another utterance")
    examples.unlink()  # a file the policy needs went missing: the last good policy keeps serving
    assert not policy.refresh() and "cannot read the examples file" in str(policy.last_error)
    assert policy.current.policy.routes[0].when.examples == ("special words", "another utterance")
