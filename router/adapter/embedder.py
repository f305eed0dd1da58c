"""Embeddings from a model group of the proxy (or a LiteLLM model in the SDK), for the semantic cache."""

from __future__ import annotations

import litellm
import numpy as np


class LiteLLMEmbedder:
    def __init__(self, model: str, router_of):
        self.name = model
        self._router_of = router_of  # the proxy's Router is built after our callback: look it up per call

    def embed(self, text: str) -> np.ndarray:
        router = self._router_of()
        call = router.embedding if router is not None else litellm.embedding
        response = call(model=self.name, input=[text])
        vector = np.asarray(response.data[0]["embedding"], dtype=np.float32)
        return vector / (np.linalg.norm(vector) or 1.0)
