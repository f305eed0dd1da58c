"""The policy's rules over traffic: who may use what (`access`), spend limits (`budgets`) and timed
traffic shifts (`shifts`)."""

from __future__ import annotations

import typing
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from router.policy.fields import Duration, Name, Strict, duration


def parse_window(value: object) -> object:
    """ "hour", "day", "month" (calendar, in the policy's time zone) or "rolling <duration>"."""
    if isinstance(value, str) and value.strip().lower().startswith("rolling"):
        seconds = duration(value.strip()[len("rolling") :].strip())
        if not isinstance(seconds, float) or seconds <= 0:
            raise ValueError(f"bad rolling window {value!r}: write e.g. 'rolling 30m' or 'rolling 24h'")
        return f"rolling {seconds:g}"
    if value not in ("hour", "day", "month"):
        raise ValueError(f"window must be hour, day, month or 'rolling <duration>', not {value!r}")
    return value


def _names(value: object) -> object:
    return (value,) if isinstance(value, str) else value


Window = Annotated[str, BeforeValidator(parse_window)]
NameList = Annotated[tuple[Name, ...], BeforeValidator(_names)]


class Who(Strict):
    """Who asks, from the authenticated identity (never a field the client sets): every field given
    must hold, each listing the values it accepts; an empty `who` is everyone."""

    keys: tuple[Name, ...] = ()  # key aliases or SHA-256 hashes
    teams: tuple[Name, ...] = ()
    users: tuple[Name, ...] = ()
    tags: tuple[Name, ...] = ()  # the key's tags (the request's too with settings.trust_request_tags)
    # the key's metadata fields (and the request's that settings.trusted_metadata names)
    metadata: dict[Name, tuple[str, ...]] = Field(default_factory=dict)


class Access(Strict):
    """What an identity may use, whichever route or model name its request takes: routes, fallbacks,
    shifts, downgrades and conversation affinity all skip models it may not use. A request that
    names such a model is refused with a 403, or (`on_deny: downgrade`) served by `to`."""

    name: Name
    who: Who = Who()
    models: NameList = ()  # only these models (default: any)
    deny: NameList = ()  # never these
    regions: NameList = ()  # only models in these regions (data residency)
    on_deny: Literal["reject", "downgrade"] = "reject"
    to: Name | None = None  # downgrade: the model that serves a request naming a denied one

    @model_validator(mode="after")
    def _consistent(self) -> Access:
        if not (self.models or self.deny or self.regions):
            raise ValueError("an access rule needs `models`, `deny` or `regions`: what it limits")
        if self.on_deny == "downgrade" and self.to is None:
            raise ValueError("on_deny: downgrade needs `to`: the model that serves instead")
        return self


class Budget(Strict):
    name: Name
    per: Literal["key", "team", "user", "tag", "model", "route", "global"] = "global"
    window: Window = "day"
    limit_usd: float | None = Field(None, gt=0)
    limit_tokens: int | None = Field(None, gt=0)
    limit_reasoning_tokens: int | None = Field(None, gt=0)
    on_exceed: Literal["warn", "downgrade", "reject"] = "reject"
    to: NameList = ()  # downgrade: a model, or a ladder of ever cheaper ones
    routes: NameList = ()  # apply only to these routes (default: all)
    models: NameList = ()  # apply only when one of these models serves (default: all)

    @model_validator(mode="after")
    def _consistent(self) -> Budget:
        if self.limit_usd is None and self.limit_tokens is None and self.limit_reasoning_tokens is None:
            raise ValueError("a budget needs limit_usd, limit_tokens or limit_reasoning_tokens")
        if self.on_exceed == "downgrade" and not self.to:
            raise ValueError("on_exceed: downgrade needs `to`: the model (or ladder of models) to move to")
        return self


Metric = Literal["p50_latency", "p95_latency", "p99_latency", "ttft_p95", "error_rate"]
METRICS: tuple[str, ...] = typing.get_args(Metric)


class Trigger(Strict):
    """One metric over a sliding window: latencies in seconds ("3s", "800ms"), error rate as a share."""

    p50_latency: Duration | None = None
    p95_latency: Duration | None = None
    p99_latency: Duration | None = None
    ttft_p95: Duration | None = None  # time to first token of streamed answers
    error_rate: float | None = Field(None, gt=0, le=1)
    window: Duration = 300.0
    min_samples: int = Field(20, gt=0)

    @model_validator(mode="after")
    def _one_metric(self) -> Trigger:
        if len([m for m in METRICS if getattr(self, m) is not None]) != 1:
            raise ValueError(f"give exactly one of {', '.join(METRICS)}")
        return self

    @property
    def metric(self) -> str:
        return next(m for m in METRICS if getattr(self, m) is not None)

    @property
    def threshold(self) -> float:
        return getattr(self, self.metric)


class Probe(Strict):
    """After the hold, this share of the watched model's traffic goes back to it; the shift ends
    when the probe's figure is under `recover_below` times the threshold, and holds again otherwise."""

    percent: float = Field(10.0, gt=0, le=100)
    # Default: twice the trigger's. A p95 from few probes is noisy: replaying a latency that hovers
    # at the threshold (scripts/bench_shift.py), 5 probes ended the shift one time in eight and 20
    # one time in 45; at 40 a false return needs ~38 of 40 probes under 80 % of the threshold.
    min_samples: int | None = Field(None, gt=0)
    # The longest a probe phase lasts (default: the trigger's window). At low traffic the probe
    # share may never gather `min_samples`; by then the phase ends on the probes there were (none:
    # the shift ends, as there is no traffic to protect), so no shift outlives hold + this.
    max_duration: Duration | None = None
    recover_below: float = Field(0.8, gt=0, le=1)  # hysteresis: return only well under the threshold


class Shift(Strict):
    name: Name | None = None  # default: "<watch>-<metric>" ("region-<region>-<metric>")
    watch: Name | None = None  # a model; or
    region: Name | None = None  # every model in a region: their figures together, their traffic moves
    when: Trigger
    to: NameList
    percent: float = Field(100.0, gt=0, le=100)
    hold: Duration = 300.0
    probe: Probe = Probe()
    # Whether requests that name the watched model themselves move too. Default: only for error-rate
    # rules (a model failing outright would fail them too); a slow model still gives the answer asked for.
    move_named: bool | None = None

    @model_validator(mode="after")
    def _watches_one_thing(self) -> Shift:
        if (self.watch is None) == (self.region is None):
            raise ValueError("give `watch` (a model) or `region` (every model in it), one of the two")
        return self

    @property
    def key(self) -> str:
        return self.name or f"{self.watched}-{self.when.metric}"

    @property
    def watched(self) -> str:
        """What the rule watches, as names and messages show it."""
        return self.watch if self.watch is not None else f"region-{self.region}"

    @property
    def moves_named(self) -> bool:
        return self.when.metric == "error_rate" if self.move_named is None else self.move_named
