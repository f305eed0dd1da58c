"""The policy file's shape: frozen pydantic models that reject unknown keys.

Checks that look at one field live here (a keyword is not empty, a regex compiles); checks that
relate fields to each other (a route names a model that exists) live in `crossref.py`, so that
both kinds are reported together even when the file is otherwise broken.
"""

from __future__ import annotations

from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, PrivateAttr, model_validator

from router.policy.fields import (
    Capability,
    Duration,
    Example,
    Keyword,
    Language,
    MessageScope,
    Name,
    Regex,
    Scope,
    Similarity,
    Strict,
    TokenCount,
)
from router.policy.observe import CaptureConfig, LedgerConfig, MetricsConfig, Slo, WebhookConfig
from router.policy.traffic import Access, Budget, NameList, Shift, Who


class Price(Strict):
    """US dollars per million tokens; cached input and reasoning default to input and output."""

    input: float = Field(0.0, ge=0)
    cached_input: float | None = Field(None, ge=0)
    output: float = Field(0.0, ge=0)
    reasoning: float | None = Field(None, ge=0)


class ModelSpec(Strict):
    target: Name  # a model group (model_name) of the LiteLLM proxy, or a LiteLLM model string in the SDK
    price: Price = Price()
    context: TokenCount
    aliases: tuple[Name, ...] = ()
    tags: tuple[str, ...] = ()
    # How a route's reasoning cap reaches the provider: `reasoning_effort` (OpenAI, DeepSeek, most
    # OpenAI-compatible APIs), a `thinking` token budget (Anthropic style), or not at all.
    reasoning_control: Literal["effort", "budget", "none"] = "effort"
    keepalive: Duration | None = None  # ping the model this often (a one-token request) to keep it warm
    # What the model can take. Left out: not declared, and never checked (policies written before
    # capabilities existed keep working); declared: a request that needs more never reaches it.
    capabilities: tuple[Capability, ...] | None = None
    # Where the model's deployments run, for data residency (`access`, routes' `regions`): one region,
    # or several for a model group with deployments in each (their `litellm_params.region_name` says
    # which; a request pinned to one of them reaches only its deployments).
    region: NameList = ()


class When(Who):
    """Every condition given must hold; an empty `when` is refused (leave `when` out instead)."""

    any: tuple[Keyword, ...] = ()
    all: tuple[Keyword, ...] = ()
    none: tuple[Keyword, ...] = ()
    regex: tuple[Regex, ...] = ()
    min_tokens: TokenCount | None = None
    max_tokens: TokenCount | None = None
    code: bool | None = None
    # Routing by meaning: the closest of these utterances (and `examples_file`'s) scores `similarity` or more.
    examples: tuple[Example, ...] = ()
    examples_file: str | None = None
    similarity: Similarity | None = None
    # The policy's `classifier` names this route (with the probability that gave `min_precision` on held-out prompts).
    learned: bool = False
    min_precision: Similarity | None = None
    messages: MessageScope = "last_user"
    # Who asks (the fields of `Who`), and what the request is and needs:
    images: bool | None = None
    audio: bool | None = None
    files: bool | None = None
    tools: bool | None = None  # tool definitions, or tool calls and results in the conversation
    json_output: bool | None = Field(None, alias="json")  # response_format json_object or json_schema
    stream: bool | None = None
    min_output_tokens: TokenCount | None = None  # the output it asks room for: max_tokens, else
    max_output_tokens: TokenCount | None = None  # settings.default_output_tokens
    language: tuple[Language, ...] = ()  # of the text in `messages` scope


class RouteCache(Strict):
    """A route's own cache switches; unset fields follow the policy's `cache` section."""

    enabled: bool = True
    exact: bool | None = None
    semantic: bool | None = None
    threshold: float | None = Field(None, gt=0, le=1)


class RouteReasoning(Strict):
    max_tokens: TokenCount  # a cap on reasoning tokens per request


class Route(Strict):
    name: Name
    description: str = ""
    when: When | None = None
    use: Name
    fallbacks: tuple[Name, ...] = ()  # tried in order on errors, timeouts and rate limits
    cache: RouteCache = RouteCache()
    reasoning: RouteReasoning | None = None
    timeout: Duration | None = None  # per attempt; default `settings.timeout`
    retries: int | None = Field(None, ge=0, le=10)  # of the same model before its fallbacks; default `settings.retries`
    on_truncation: Name | None = None  # a larger-context model that retries answers cut off at its limit
    regions: NameList = ()  # only models in these regions serve the route (default: any)


class ExactCache(Strict):
    enabled: bool = True
    ttl: Duration = 3600.0
    max_entries: int = Field(10_000, gt=0)  # the in-process tier; the shared store keeps entries for `ttl`
    scope: Scope = "key"


class SemanticCache(Strict):
    enabled: bool = True
    # Defaults chosen with the default embedder on GPTCache's pairs and our own harder set
    # (scripts/bench_semantic_cache.py; the curves are in README.md, "Semantic cache").
    threshold: float = Field(0.70, gt=0, le=1)
    margin: float = Field(0.02, ge=0, lt=1)  # cached prompts scoring within this of the best are a close call
    tiebreak: float = Field(0.10, ge=0, lt=1)  # a close call is served when one prompt shares this much more of
    # the question's words (the second stage, router/cache/guard.py); 0 refuses every close call
    ttl: Duration = 86400.0
    max_entries: int = Field(100_000, gt=0)  # vectors kept in each instance's index
    scope: Scope = "key"
    # local: the static model distilled from all-MiniLM-L6-v2 (router/cache/embedders.py);
    # minilm: the full model on torch; any other name: an embedding model group of the proxy.
    embedder: Name = "local"
    # A second model that re-scores a semantic hit before it is served (the same names as
    # `embedder`); the hit is refused under `verify_threshold`. It runs only for would-be hits.
    verify: Name | None = None
    verify_threshold: float = Field(0.80, gt=0, le=1)

    @model_validator(mode="after")
    def _verify_with_another_model(self) -> SemanticCache:
        if self.verify is not None and self.verify == self.embedder:
            raise ValueError(f"`verify` must name another model than `embedder` (both are '{self.embedder}')")
        return self


class CacheConfig(Strict):
    deterministic_only: bool = True  # cache only requests with temperature 0 or a fixed seed
    exact: ExactCache = ExactCache()
    semantic: SemanticCache = SemanticCache()


class StateConfig(Strict):
    backend: Literal["memory", "sqlite", "redis"] = "sqlite"
    # The SQLite file; for every backend, spend the store could not take at shutdown waits in
    # `pending/` beside it until the next start.
    path: str = ".router/state.db"
    url: str | None = None

    @model_validator(mode="after")
    def _redis_needs_url(self) -> StateConfig:
        if self.backend == "redis" and not self.url:
            raise ValueError("the redis backend needs `url`, e.g. redis://127.0.0.1:6379/0")
        return self


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (an IANA name such as UTC or Europe/Berlin)") from None
    return value


class Unavailable(Strict):
    """The answer when every model a request may use has failed: a 503, never LiteLLM's 500."""

    message: str = "All models for this request are unavailable right now; please retry later."
    retry_after: Duration = 30.0


class Limits(Strict):
    """What one request may hold, refused before any work (LiteLLM's own included) so that no
    request can stall the proxy for others: 10,000 messages cost LiteLLM ~2 s of CPU before a hook
    runs, and values nested 1,000 deep exhaust the recursion of whatever walks them."""

    max_body_bytes: TokenCount = 16_000_000  # "16m"; answered 413
    max_messages: int = Field(2000, gt=0)  # answered 413
    max_parts: int = Field(4000, gt=0)  # content parts of all messages together; answered 413
    max_depth: int = Field(32, gt=1)  # nesting of JSON objects and lists in the body; answered 400


class Settings(Strict):
    auto_model: Name = "auto"
    max_prompt_chars: int = Field(1_000_000, gt=0)
    timezone: Annotated[str, AfterValidator(_timezone)] = "UTC"  # where calendar budget windows begin
    default_output_tokens: int = Field(1024, gt=0)  # the output a budget reserves for when max_tokens is unset
    # What a budget reserves for a request's output: an estimate from the route and model's recent
    # answers (bounded by max_tokens), or always max_tokens (default_output_tokens without it).
    reserve_output: Literal["mean", "p90", "p95", "p99", "worst_case"] = "mean"
    # A share of each budget limit an instance reserves at once and admits its requests against in
    # memory (router.engine.leases): one store round trip per lease instead of one per request, for
    # up to this share of the limit counted early on each instance. 0: every request is reserved alone.
    budget_lease: float = Field(0.0, ge=0, le=0.1)
    trust_request_tags: bool = False  # let `metadata.tags` sent by clients count for per-tag budgets and `when.tags`
    # Request metadata fields `when.metadata` and `access` may read as the caller's: only fields an
    # upstream gateway sets (clients can write any metadata; the key's own always counts).
    trusted_metadata: tuple[Name, ...] = ()
    timeout: Duration = 60.0  # seconds per attempt before a model counts as failed
    retries: int = Field(1, ge=0, le=10)  # retries of the same model (5xx, timeouts) before its fallbacks
    unavailable: Unavailable = Unavailable()
    limits: Limits = Limits()
    # A model name the policy does not list (nor its aliases or targets): `refuse` answers 400;
    # `allow` passes it to LiteLLM unreserved, priced by LiteLLM after the call.
    unlisted_models: Literal["refuse", "allow"] = "refuse"
    # Routing by meaning: the embedder routes' `examples` are compared with (the semantic cache's,
    # when it has one: one embedder a process), the similarity an example must reach, and how far
    # a later route's example must score above the first matching one's to take the request.
    embedder: Name = "local"
    similarity: Similarity = 0.6
    semantic_margin: float = Field(0.05, ge=0, lt=1)


class Affinity(Strict):
    """Later turns of a conversation stay on the route and model its first turn was given (unless
    the context guard, an explicit model, a shift or a budget says otherwise), on every instance
    through the state store. A conversation is its sender with a session id from the request's
    metadata, or with its opening (system prompt and first user message)."""

    ttl: Duration = 1800.0  # since the conversation's last turn
    session_fields: tuple[Name, ...] = ("session_id",)  # metadata fields that name a conversation


class ClassifierRef(Strict):
    """The artifact `python -m router learn` wrote, relative to the policy file; read at load time."""

    path: str


class Policy(Strict):
    version: Literal[1]
    settings: Settings = Settings()
    models: dict[Name, ModelSpec] = Field(min_length=1)
    routes: tuple[Route, ...] = Field(min_length=1)
    cache: CacheConfig | None = None  # no `cache` section: no response cache
    access: tuple[Access, ...] = ()
    budgets: tuple[Budget, ...] = ()
    shifts: tuple[Shift, ...] = ()
    state: StateConfig = StateConfig()
    classifier: ClassifierRef | None = None
    affinity: Affinity | None = None  # no `affinity` section: every turn is routed afresh
    ledger: LedgerConfig = LedgerConfig()
    capture: CaptureConfig = CaptureConfig()
    metrics: MetricsConfig = MetricsConfig()
    slos: tuple[Slo, ...] = ()
    webhook: WebhookConfig | None = None  # no section: no webhook alerts
    # What the loader read for `classifier`: the artifact and each learned route's threshold.
    _learned: object = PrivateAttr(None)

    @property
    def learned(self):
        """The loaded classifier (router.policy.learned.Learned), or None."""
        return self._learned

    @property
    def routes_by_meaning(self) -> bool:
        """Some route compares the request with examples or asks the classifier: requests are embedded."""
        return any(r.when is not None and (r.when.examples or r.when.learned) for r in self.routes)
