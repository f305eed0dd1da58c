"""The policy's field types: token counts and durations as people write them ("128k", "5m"),
keywords, regexes, examples and names checked one by one, and the strict base of every section."""

from __future__ import annotations

import re
import typing
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

_SUFFIXES = {"k": 1_000, "m": 1_000_000}
_DURATIONS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")


def token_count(value: object) -> object:
    """Accept 128000, "128000", "128k" or "1.5m"; anything else is left for pydantic to refuse."""
    if isinstance(value, str):
        text = value.strip().lower().replace("_", "")
        if text and text[-1] in _SUFFIXES:
            try:
                return int(float(text[:-1]) * _SUFFIXES[text[-1]])
            except ValueError:
                return value
    return value


def duration(value: object) -> object:
    """Accept seconds as a number, or "500ms", "30s", "5m", "1h", "1d"."""
    if isinstance(value, str):
        match = _DURATION.match(value.lower())
        if match:
            return float(match.group(1)) * _DURATIONS[match.group(2)]
    return value


def _keyword(value: str) -> str:
    normalized = normalize_keyword(value)
    if not normalized.rstrip("*").strip():
        raise ValueError("keyword must not be empty")
    if "*" in normalized[:-1]:
        raise ValueError("'*' is allowed only at the end of a keyword (a prefix match)")
    return normalized


def normalize_keyword(value: str) -> str:
    """Keywords and prompt text are compared lower-cased with runs of white space folded to one."""
    return " ".join(value.lower().split())


def _regex(value: str) -> str:
    if not value:
        raise ValueError("regex must not be empty")
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regex {value!r}: {exc}") from None
    return value


def _example(value: str) -> str:
    if not value.strip():
        raise ValueError("an example must not be empty")
    return value.strip()


def _name(value: str) -> str:
    if not value.strip():
        raise ValueError("name must not be empty")
    return value


TokenCount = Annotated[int, BeforeValidator(token_count), Field(gt=0)]
Duration = Annotated[float, BeforeValidator(duration), Field(gt=0)]
Scope = Literal["key", "team", "shared"]
Keyword = Annotated[str, AfterValidator(_keyword)]
Regex = Annotated[str, AfterValidator(_regex)]
Name = Annotated[str, AfterValidator(_name)]
Example = Annotated[str, AfterValidator(_example), Field(max_length=4000)]
Similarity = Annotated[float, Field(gt=0, le=1)]
MessageScope = Literal["last_user", "user", "system", "all"]
# What a model can take: images, audio, files in the messages, tool definitions and tool history, a
# JSON answer (`json_object`), one that follows a schema (`json_schema`, which implies `json`), and
# reasoning controls the client sets (`reasoning_effort`, `thinking`).
Capability = Literal["vision", "audio", "files", "tools", "json", "json_schema", "reasoning"]
CAPABILITIES: tuple[str, ...] = typing.get_args(Capability)
# Languages the detector tells apart (router/core/language.py): CJK and other scripts by their
# characters, Latin-script languages by their commonest words; `und` when it cannot tell.
Language = Literal["zh", "ja", "ko", "ru", "ar", "he", "el", "hi", "th", "en", "fr", "de", "es", "it", "pt", "und"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
