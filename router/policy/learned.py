"""The policy's learned classifier, read at load time and checked against the policy: present and
readable, trained with the policy's embedder, naming only routes the policy has, and able to reach
each route's `min_precision`. A problem names the policy file, its line and key path."""

from __future__ import annotations

from dataclasses import dataclass

from router.errors import PolicyIssue
from router.policy import artifact
from router.policy.schema import Policy
from router.policy.source import Located, base_dir


@dataclass(frozen=True)
class Learned:
    model: artifact.Artifact
    thresholds: dict[str, float]  # route -> the probability it needs (0: the classifier's top choice suffices)


def with_classifier(policy: Policy, located: Located, file: str) -> list[PolicyIssue]:
    """Load `policy.classifier` into `policy.learned`; the problems found (then nothing is loaded)."""
    ref = policy.classifier
    if ref is None:
        return []
    key: tuple[str | int, ...] = ("classifier", "path")
    base = base_dir(file)

    def issue(path: tuple[str | int, ...], message: str) -> PolicyIssue:
        return PolicyIssue(file, located.line_of(path), path, message)

    try:
        model = artifact.load(base / ref.path)
    except artifact.ArtifactError as exc:
        return [issue(key, str(exc))]
    issues = []
    if model.embedder != policy.settings.embedder:
        issues.append(
            issue(
                key,
                f"learned with embedder '{model.embedder}', but settings.embedder is "
                f"'{policy.settings.embedder}': learn it again, or name the same embedder",
            )
        )
    names = {route.name for route in policy.routes}
    unknown = [label for label in model.labels if label not in names]
    if unknown:
        issues.append(issue(key, f"it names routes the policy does not have: {', '.join(unknown)}"))
    thresholds = {}
    for i, route in enumerate(policy.routes):
        when = route.when
        if when is None or not when.learned:
            continue
        if route.name not in model.labels:
            issues.append(issue(("routes", i, "when", "learned"), f"the classifier does not know route '{route.name}'"))
            continue
        thresholds[route.name] = 0.0
        if when.min_precision is not None:
            curve = model.curves[route.name]
            found = curve.threshold_for(when.min_precision)
            if found is None:
                top = curve.most_confident()
                where = (
                    "too few prompts to measure it"
                    if top is None
                    else f"{top[1]:.1%} at its most confident (p >= {top[0]:.2f}, {top[2]} prompts)"
                )
                issues.append(
                    issue(
                        ("routes", i, "when", "min_precision"),
                        f"the classifier does not reach {when.min_precision:.1%} precision for route "
                        f"'{route.name}' on prompts it was not trained on: {where}",
                    )
                )
                continue
            thresholds[route.name] = found
    if not issues:
        policy._learned = Learned(model, thresholds)
    return issues
