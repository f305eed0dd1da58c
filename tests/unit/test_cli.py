"""`python -m router validate` and `explain`."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from router.ops.cli import main

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = str(ROOT / "policies" / "examples" / "keywords-only.yaml")  # routes a word steers


def run(*argv: str, stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), stdin=io.StringIO(stdin), stdout=out)
    return code, out.getvalue()


def test_validate_accepts_the_shipped_policies():
    for path in [
        str(ROOT / "policies" / "default.yaml"),
        *map(str, sorted((ROOT / "policies" / "examples").glob("*.yaml"))),
    ]:
        code, out = run("validate", path)
        assert code == 0 and out.startswith("ok: "), path


def test_validate_lists_every_problem_and_exits_1(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nmodels:\n  a: {target: a, context: 1k}\nroutes:\n  - {name: x, use: b}\n  - {name: x, use: a}\n"
    )
    code, _ = run("validate", str(bad))
    err = capsys.readouterr().err
    assert code == 1
    assert f"{bad}:5: routes[0].use: unknown model 'b'" in err
    assert f"{bad}:6: routes[1].name: duplicate route name 'x'" in err


def test_validate_checks_targets_against_a_proxy_config(tmp_path, capsys):
    config = str(ROOT / "config.yaml")
    assert run("validate", DEFAULT, "--config", config)[0] == 0
    typo = tmp_path / "typo.yaml"
    typo.write_text(Path(DEFAULT).read_text().replace("target: deepseek-v4-pro", "target: deepseek-v4-pr0"))
    assert run("validate", str(typo))[0] == 0  # without the config the target cannot be checked
    code, _ = run("validate", str(typo), "--config", config)
    assert code == 1 and "models.pro.target: 'deepseek-v4-pr0' is not a model group of" in capsys.readouterr().err


def test_validate_a_missing_file(tmp_path, capsys):
    code, _ = run("validate", str(tmp_path / "nope.yaml"))
    assert code == 1 and "cannot read the policy file" in capsys.readouterr().err


def test_explain_a_prompt():
    code, out = run("explain", DEFAULT, "Please debug this code: x = 1/0")
    assert code == 0
    assert out.startswith("route=reasoning model=reasoner targets=deepseek-r1 -> deepseek-v4-pro -> deepseek-v4-flash")


def test_explain_takes_options_before_or_after_the_prompt():
    for argv in (
        ("explain", DEFAULT, "--json", "Prove that 17 is prime"),
        ("explain", "--json", DEFAULT, "Prove that 17 is prime"),
        ("explain", DEFAULT, "Prove that 17 is prime", "--json"),
    ):
        code, out = run(*argv)
        assert code == 0, argv
        assert json.loads(out)["route"] == "reasoning", argv


def test_explain_json_lines_from_stdin(capsys):
    lines = "\n".join(
        [
            json.dumps({"messages": [{"role": "user", "content": "What is 2+2?"}]}),
            json.dumps({"model": "pro", "messages": [{"role": "user", "content": "hi"}]}),
            "{broken",
            json.dumps({"messages": "hi"}),
        ]
    )
    code, out = run("explain", DEFAULT, "--json", stdin=lines)
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 2 and "line 3: not JSON" in capsys.readouterr().err
    assert [r.get("route") for r in records] == ["default", "explicit", None]
    assert records[1]["target"] == "deepseek-v4-pro"
    assert records[2]["rejected"] == 400


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "router", "validate", DEFAULT], capture_output=True, text=True)
    assert result.returncode == 0 and "8 routes, 6 models" in result.stdout


CAPABILITIES = str(ROOT / "policies" / "examples" / "capabilities.yaml")


def test_explain_tries_a_request_as_a_given_key_would_send_it():
    code, out = run("explain", CAPABILITIES, "--json", "hello there")
    assert code == 0 and json.loads(out)["model"] == "flash"
    code, out = run("explain", CAPABILITIES, "--json", "hello there", "--team", "eu-legal")
    pinned = json.loads(out)
    assert pinned["model"] == "qwen" and pinned["access"] == ["eu-residency"]  # its one eu model in the chain
    code, out = run("explain", CAPABILITIES, "--json", "hello there", "--key-metadata", "tier=gold")
    assert json.loads(out)["route"] == "gold-customers"
    body = json.dumps({"model": "premium", "messages": [{"role": "user", "content": "hi"}]})
    code, out = run("explain", CAPABILITIES, "--tag", "free", stdin=body)
    assert "model=pro" in out and "free-tier" in out
    # request tags from the x-litellm-tags header count only where the policy trusts request tags
    code, out = run("explain", CAPABILITIES, "--header", "x-litellm-tags: free", stdin=body)
    assert "model=gpt4o" in out
    code, out = run("explain", CAPABILITIES, "--metadata", "tier=gold", "--json", "hello there")
    assert json.loads(out)["route"] != "gold-customers"  # request metadata the policy does not trust
