"""The test suite. The scripts' helpers (scripts/procs.py, scripts/upstreams.py) are importable from
every test module: they start the processes for the tests and the benchmarks alike."""

import os
import sys
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before any test imports litellm: offline
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
