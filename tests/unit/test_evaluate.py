"""`python -m router eval`: a policy scored on labelled prompts."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from router.ops.cli import main

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = str(ROOT / "policies" / "examples" / "keywords-only.yaml")  # routes a word steers


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), stdout=out), out.getvalue()


def labelled(tmp_path: Path, *rows: object) -> str:
    path = tmp_path / "labelled.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return str(path)


def test_fit_is_counted_per_intent_and_averaged_over_intents(tmp_path):
    path = labelled(
        tmp_path,
        {"prompt": "Prove that 7 is prime.", "intent": "math", "fits": ["deepseek-r1"], "lang": "en"},
        {"prompt": "What is 7 times 8?", "intent": "math", "fits": ["deepseek-r1"], "lang": "en"},
        {"prompt": "Hello there!", "intent": "chitchat", "fits": ["deepseek-v4-flash"], "lang": "en"},
        {"messages": [{"role": "user", "content": "Write a poem about rain."}], "route": "creative"},
    )
    code, out = run("eval", DEFAULT, path, "--json")
    figures = json.loads(out)
    assert code == 0 and figures["requests"] == 4
    assert figures["intents"]["math"] == {"n": 2, "fit": 0.5}  # the keyword 'prove' finds only the first
    assert figures["macro_fit"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert figures["confusion"]["math"] == {"deepseek-r1": 1, "deepseek-v4-flash": 1}
    assert figures["routes"]["creative"] == {"precision": 1.0, "recall": 1.0, "n": 1}  # its intent: its route
    assert figures["languages"] == {"-": 1.0, "en": pytest.approx(0.75)}
    assert figures["cost_usd_per_1k"] > 0


def test_lines_that_are_not_examples_are_named_and_skipped(tmp_path, capsys):
    path = labelled(
        tmp_path,
        {"prompt": "Hello!", "intent": "chitchat", "fits": ["deepseek-v4-flash"]},
        "{not json",
        {"prompt": "no label at all"},
        {"intent": "math", "fits": ["deepseek-r1"]},
    )
    code, out = run("eval", DEFAULT, path)
    err = capsys.readouterr().err
    assert code == 2 and out.startswith("1 requests: macro fit 100.0%")
    assert f"{path}:2:" in err and f"{path}:3: needs `fits`" in err and f"{path}:4: needs `prompt`" in err


def test_a_missing_file(tmp_path, capsys):
    code, _ = run("eval", DEFAULT, str(tmp_path / "absent.jsonl"))
    assert code == 2 and "cannot read" in capsys.readouterr().err
