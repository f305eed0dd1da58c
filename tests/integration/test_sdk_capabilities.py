"""Capabilities and access rules through `litellm.completion`: the SDK's calls keep to the models a
request may use, as the proxy's do (issue 14)."""

from __future__ import annotations

import litellm
import pytest

from router import Identity
from tests.helpers import ROOT, sdk_installed, write_policy

CAPABILITIES = ROOT / "policies" / "examples" / "capabilities.yaml"
IMAGE = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ],
    }
]
POEM = [{"role": "user", "content": "Write a poem about autumn leaves"}]


def test_an_image_goes_to_the_vision_model_and_never_to_one_that_cannot_see(simulator, sim, tmp_path):
    with sdk_installed(simulator.url, write_policy(tmp_path, source=CAPABILITIES)):
        response = litellm.completion(model="auto", messages=IMAGE)
        assert response._hidden_params["router"]["route"] == "vision"
        assert response.choices[0].message.content.startswith("[gpt-4o#")


def test_a_free_tier_identity_is_kept_off_the_premium_model(simulator, sim, tmp_path):
    free = Identity(key_hash="f" * 64, tags=("free",))
    with sdk_installed(simulator.url, write_policy(tmp_path, source=CAPABILITIES), identity=free):
        poem = litellm.completion(model="auto", messages=POEM)
        assert poem._hidden_params["router"]["route"] == "creative"
        assert poem._hidden_params["router"]["model"] == "pro"  # gpt4o is denied: the route's fallback
        with pytest.raises(litellm.PermissionDeniedError) as refused:  # only the premium model sees images
            litellm.completion(model="auto", messages=IMAGE)
        assert refused.value.status_code == 403 and "free-tier" in str(refused.value)
        assert sim.count("gpt-4o") == 0
