"""Runtime settings, read from the environment (names in README.md, "Settings")."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class RouterSettings(BaseSettings):
    """Values come from config.yaml's `callback_settings.router` (the proxy) or keyword arguments (the SDK);
    the environment variables ROUTER_POLICY, ROUTER_RELOAD_INTERVAL and ROUTER_KEYS override both."""

    model_config = SettingsConfigDict(env_prefix="ROUTER_", extra="forbid")

    policy: str = "policies/default.yaml"  # relative paths are taken from the working directory
    reload_interval: float = 0.5  # seconds between looks at the policy file
    keys: str | None = None  # a YAML file of API keys for router.adapter.auth (proxies without a database)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        return env_settings, init_settings
