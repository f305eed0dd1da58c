#!/usr/bin/env python3
"""How a policy with a learned classifier routes prompts it was not trained on, from the training
split alone: 5-fold cross-validation of the whole policy (its keyword routes too), the classifier
refitted on four folds and the fifth routed. Where it is weak here is where to add examples or
keywords, without a look at the held-out split.

    .venv/bin/python scripts/cv_routing.py [--policy POLICY] [--labelled data/routing/train.jsonl] [--misses]

Prints the fit per language and intent, each language's macro fit, and with --misses every prompt
sent to a model that does not fit it, with the route it took.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from router import CompiledPolicy, load_policy, route_body
from router.cache.embedders import Shared, StaticEmbedder
from router.ops import evaluate
from router.ops.learn import learn
from router.policy import artifact

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default=str(ROOT / "policies" / "default.yaml"))
    parser.add_argument("--labelled", default=str(ROOT / "data" / "routing" / "train.jsonl"))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--misses", action="store_true")
    args = parser.parse_args()
    policy = Path(args.policy)
    classifier = load_policy(policy).classifier
    if classifier is None:
        raise SystemExit(f"{policy} names no classifier: `python -m router eval` scores it as it is")
    examples, problems = evaluate.read_labelled(args.labelled, "auto")
    if problems:
        raise SystemExit("\n".join(problems))
    embedder = Shared(StaticEmbedder())
    order = np.random.default_rng(0).permutation(len(examples))
    fits: dict[tuple[str, str], list[bool]] = defaultdict(list)
    misses = []
    with tempfile.TemporaryDirectory() as scratch:
        for fold in np.array_split(order, args.folds):
            left_out = set(fold.tolist())
            model, _ = learn([examples[i] for i in order if i not in left_out], embedder, "local", 0.2, 0)
            # The policy beside its refitted classifier, as the loader finds it (relative to the file).
            copy = Path(scratch) / policy.name
            shutil.copy(policy, copy)
            artifact.save(copy.parent / classifier.path, model)
            compiled = CompiledPolicy(load_policy(copy), embedder)
            held = [examples[i] for i in fold]
            for outcome in evaluate.score(compiled, held, lambda b, c=compiled: route_body(c, b), 400):
                fits[(outcome.example.lang, outcome.example.intent)].append(outcome.fit)
                if not outcome.fit:
                    misses.append(outcome)
    by_language: dict[str, list[float]] = defaultdict(list)
    print(f"{args.folds}-fold cross-validation of {policy.name} on {args.labelled}")
    for (language, intent), got in sorted(fits.items()):
        by_language[language].append(sum(got) / len(got))
        print(f"  {language:<4} {intent:<16} {sum(got) / len(got):6.1%}  n={len(got)}")
    print("macro fit: " + ", ".join(f"{lang} {np.mean(v):.1%}" for lang, v in by_language.items()))
    for outcome in misses if args.misses else ():
        text = str(outcome.example.body["messages"][-1].get("content"))[:80]
        print(f"  {outcome.example.lang} {outcome.example.intent:<14} -> {outcome.route:<18} {text}")


if __name__ == "__main__":
    main()
