"""`python -m router report --html`: a self-contained page whose every chart has data, rendered
offline by Debian's headless Chromium into a screenshot that is not blank."""

from __future__ import annotations

import json
import random
import subprocess
import time
from pathlib import Path

from PIL import Image

from router.engine.health import SHIFT_LOG
from router.engine.ledger import Ledger
from router.ops.cli import main
from router.state import open_store

POLICY = """\
version: 1
models:
  flash: {target: deepseek-v4-flash, context: 128k, price: {input: 0.27, output: 1.10}}
  qwen: {target: qwen3-32b, context: 32k, price: {input: 0.30, output: 1.20}}
routes:
  - {name: code, when: {any: [python]}, use: qwen}
  - {name: default, use: flash}
budgets:
  - {name: global-daily, per: global, window: day, limit_usd: 0.5}
shifts:
  - {name: flash-slow, watch: flash, when: {p95_latency: 3s, window: 5m, min_samples: 20}, to: qwen, hold: 5m}
state: {backend: sqlite, path: STATE}
"""


def fill(state: Path, now: float) -> None:
    """A day's traffic so far: both routes, cache hits, latencies, budget spend; and a shift."""
    store = open_store("sqlite", path=str(state))
    ledger = Ledger(store)
    rng = random.Random(3)
    start = now - min(6 * 3600, now % 86400 - 60)  # within today (UTC), the report's window
    for n in range(400):
        route, model = ("code", "qwen") if n % 4 == 0 else ("default", "flash")
        hit = n % 7 == 0
        cost = 0.0 if hit else rng.uniform(0.0002, 0.002)
        ledger.write(
            {
                "t": start + n * (now - start) / 400,
                "outcome": "ok",
                "route": route,
                "model": model,
                "team": "t",
                "key": "k",
                "cost_usd": cost,
                "tokens": {"prompt": 300, "cached": 0, "completion": 120, "reasoning": 0},
                "cache": "exact" if hit else "miss",
                "saved_usd": 0.001 if hit else 0.0,
                "latency_ms": rng.lognormvariate(6.5, 0.7),
                "budgets": [["global-daily", "all", cost, 420, 0]],
            }
        )
    began = start + (now - start) / 3
    for t, old, new in (
        (began, "normal", "shifted"),
        (began + 600, "shifted", "probing"),
        (began + 900, "probing", "normal"),
    ):
        entry = {"t": t, "rule": "flash-slow", "watch": "flash", "from": old, "to": new, "reason": "p95 over 3s"}
        store.append(SHIFT_LOG, json.dumps(entry).encode(), 10_000)
    store.close()


def test_the_html_report_renders_offline_with_data_in_every_chart(tmp_path, capsys):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.replace("STATE", str(tmp_path / "state.db")))
    fill(tmp_path / "state.db", time.time())
    page = tmp_path / "report.html"
    assert main(["report", "--policy", str(policy), "--html", str(page)]) == 0
    assert "self-contained" in capsys.readouterr().out
    text = page.read_text()
    assert "http://" not in text and "https://" not in text and "src=" not in text and "<script" not in text
    assert text.count('<section class="chart"') == 7  # six charts and the budget's burn-down
    assert 'data-empty="true"' not in text
    assert "at this pace it runs out" in text or "at this pace it lasts the window" in text

    shot = tmp_path / "report.png"
    profile = tmp_path / "chromium-profile"
    run = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            # Any fetch the page tried would fail: it must render from itself alone.
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={profile}",
            f"--screenshot={shot}",
            "--window-size=900,2600",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.exists(), run.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == (900, 2600)
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50  # text, axes and the charts' colours, not one blank fill
    white = sum(count for count, rgb in colours if min(rgb) > 245)
    assert white < 0.97 * image.size[0] * image.size[1]
    for colour in ((0x4E, 0x79, 0xA7), (0xF2, 0x8E, 0x2B), (0xE1, 0x57, 0x59)):  # bars of routes, models, shifts
        assert any(rgb == colour for _, rgb in colours), colour
