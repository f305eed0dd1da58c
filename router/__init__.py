"""router: a configuration-driven routing plugin for LiteLLM."""
