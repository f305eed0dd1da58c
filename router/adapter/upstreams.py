"""Where the seed models of config.yaml go: the real provider when its key is set, else the simulator.

config.yaml reads `api_base: os.environ/<PROVIDER>_API_BASE` and `api_key: os.environ/<PROVIDER>_API_KEY`;
the proxy resolves those after it has loaded our callback, so filling them in here takes effect.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

# key variable -> (base variable, the provider's OpenAI-compatible endpoint)
PROVIDERS = {
    "DEEPSEEK_API_KEY": ("DEEPSEEK_API_BASE", "https://api.deepseek.com/v1"),
    "DASHSCOPE_API_KEY": ("DASHSCOPE_API_BASE", "https://dashscope.aliyuncs.com/compatible-mode/v1"),
    "ZHIPUAI_API_KEY": ("ZHIPUAI_API_BASE", "https://open.bigmodel.cn/api/paas/v4"),
    "OPENAI_API_KEY": ("OPENAI_API_BASE", "https://api.openai.com/v1"),
}
SIMULATOR_KEY = "sk-simulator"


def fill_upstream_defaults(simulator_url: str, env: MutableMapping[str, str] = os.environ) -> list[str]:
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
