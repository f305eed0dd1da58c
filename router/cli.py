"""Command line: `python -m router validate POLICY` and `python -m router explain POLICY [--json] [PROMPT]`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from router.core.decide import CompiledPolicy, Decision, route_body
from router.errors import PolicyError, RequestRejected
from router.policy.loader import load_policy


def main(argv: list[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    args = _parser().parse_args(argv)
    out = stdout or sys.stdout
    try:
        compiled = CompiledPolicy(load_policy(args.policy))
    except PolicyError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.command == "validate":
        policy = compiled.policy
        print(f"ok: {args.policy}: {len(policy.routes)} routes, {len(policy.models)} models", file=out)
        return 0
    return _explain(compiled, args, stdin or sys.stdin, out)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m router", description="Check a routing policy and see its decisions.")
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check a policy file; exit 1 listing every problem")
    validate.add_argument("policy")
    explain = commands.add_parser(
        "explain", help="print the decision for PROMPT, or for each JSON chat request body read from stdin (one a line)"
    )
    explain.add_argument("policy")
    explain.add_argument("prompt", nargs="?", help="a user message; omit it to read request bodies from stdin")
    explain.add_argument("--json", action="store_true", help="print one JSON object a line")
    return parser


def _explain(compiled: CompiledPolicy, args: argparse.Namespace, stdin: TextIO, out: TextIO) -> int:
    auto = compiled.settings.auto_model
    if args.prompt is not None:
        bodies = [(1, {"model": auto, "messages": [{"role": "user", "content": args.prompt}]})]
    else:
        bodies = ((n, line) for n, line in enumerate(stdin, 1) if line.strip())
    status = 0
    for number, body in bodies:
        if isinstance(body, str):
            try:
                body = json.loads(body)
            except ValueError as exc:
                print(f"line {number}: not JSON: {exc}", file=sys.stderr)
                status = 2
                continue
        if isinstance(body, dict):
            body.setdefault("model", auto)
        print(_render(_decide(compiled, body), args.json), file=out)
    return status


def _decide(compiled: CompiledPolicy, body: object) -> Decision | RequestRejected:
    try:
        return route_body(compiled, body)
    except RequestRejected as exc:
        return exc


def _render(result: Decision | RequestRejected, as_json: bool) -> str:
    if isinstance(result, RequestRejected):
        if as_json:
            return json.dumps({"rejected": result.status, "message": result.message})
        return f"rejected {result.status}: {result.message}"
    if as_json:
        return json.dumps(result.as_dict())
    chain = " -> ".join((result.target, *result.fallbacks))
    return f"route={result.route} model={result.model} targets={chain} tokens~{result.prompt_tokens} | {result.reason}"
