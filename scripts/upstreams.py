"""Where the seed models of config.yaml go in the demo set-up: the real provider when its key is set,
else the bundled simulator. The router itself knows nothing of the simulator: scripts/serve and the
tests fill these variables in before the proxy starts, and config.yaml reads them
(`api_base: os.environ/<PROVIDER>_API_BASE`, `api_key: os.environ/<PROVIDER>_API_KEY`).

    python scripts/upstreams.py SIMULATOR_URL   prints `export` lines for a shell, and a note a provider on stderr
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping, MutableMapping

# key variable -> (base variable, the provider's OpenAI-compatible endpoint)
PROVIDERS = {
    "DEEPSEEK_API_KEY": ("DEEPSEEK_API_BASE", "https://api.deepseek.com/v1"),
    "DASHSCOPE_API_KEY": ("DASHSCOPE_API_BASE", "https://dashscope.aliyuncs.com/compatible-mode/v1"),
    "ZHIPUAI_API_KEY": ("ZHIPUAI_API_BASE", "https://open.bigmodel.cn/api/paas/v4"),
    "OPENAI_API_KEY": ("OPENAI_API_BASE", "https://api.openai.com/v1"),
}
PROVIDER_VARS = [var for key, (base, _) in PROVIDERS.items() for var in (key, base)]
SIMULATOR_KEY = "sk-simulator"


def simulator_env(simulator_url: str) -> dict[str, str]:
    """Every seed provider on the simulator (what the tests and benchmarks use)."""
    return {
        var: value
        for key, (base, _) in PROVIDERS.items()
        for var, value in ((key, SIMULATOR_KEY), (base, simulator_url))
    }


def fill_upstream_defaults(simulator_url: str, env: MutableMapping[str, str]) -> list[str]:
    """Set each provider's base (and a placeholder key) when unset; return one line per choice made."""
    notes = []
    for key_var, (base_var, public_base) in PROVIDERS.items():
        if env.get(key_var):
            env.setdefault(base_var, public_base)
            notes.append(f"{key_var} is set: models on {base_var} go to {env[base_var]}")
        else:
            env[key_var], env[base_var] = SIMULATOR_KEY, simulator_url
            notes.append(f"{key_var} is not set: models on {base_var} go to the simulator at {simulator_url}")
    return notes


def _exports(simulator_url: str, environ: Mapping[str, str]) -> str:
    env = dict(environ)
    for note in fill_upstream_defaults(simulator_url, env):
        print(note, file=sys.stderr)
    return "\n".join(f"export {var}={shlex.quote(env[var])}" for var in PROVIDER_VARS)


if __name__ == "__main__":
    print(_exports(sys.argv[1], os.environ))
