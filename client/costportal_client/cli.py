"""The `costportal-client` command: backfill historical usage from JSONL files."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TextIO

from ._version import __version__
from .backfill import PATH_TO_CHOICES, BackfillSummary, run_backfill
from .transport import MAX_RECORDS_PER_REQUEST, PortalTransport, RetryPolicy


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="costportal-client", description="Report LLM usage to costportal.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    backfill = commands.add_parser(
        "backfill",
        help="send historical usage from JSONL files",
        description=(
            "Send usage records from JSONL files: one record per line, in the portal's format or as "
            "home-grown log lines (timestamp, request_id, model, user_id, cost_center, path, "
            "input_tokens, output_tokens, latency_ms). Lines without a request_id get one derived "
            "from the file name, line number and content, so running it again is counted once."
        ),
    )
    backfill.add_argument("files", nargs="+", metavar="FILE.jsonl")
    backfill.add_argument("--url", default=os.environ.get("COSTPORTAL_URL"), help="portal URL (env COSTPORTAL_URL)")
    backfill.add_argument(
        "--api-key",
        default=os.environ.get("COSTPORTAL_API_KEY"),
        help="API key with the ingest scope (env COSTPORTAL_API_KEY; prefer the variable, arguments show in `ps`)",
    )
    backfill.add_argument("--batch-size", type=int, default=500, help="records per request (default 500, max 5000)")
    backfill.add_argument(
        "--path-to",
        choices=PATH_TO_CHOICES,
        default="both",
        help="where a log line's `path` goes: the feature, a `path` tag, or both (default)",
    )
    backfill.add_argument("--provider", help="provider for lines that name none")
    backfill.add_argument("--environment", help="environment for lines that name none")
    backfill.add_argument(
        "--max-attempts", type=int, default=5, help="attempts per batch on network errors, 429 and 5xx"
    )
    backfill.add_argument("--retry-base-delay", type=float, default=0.5, help="first backoff in seconds (doubles)")
    backfill.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for one answer")
    backfill.add_argument("--list-limit", type=int, default=1000, help="most rejected records to list (default 1000)")
    backfill.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def _print_summary(summary: BackfillSummary, out: TextIO, list_limit: int) -> None:
    out.write(f"lines: {summary.lines}\n")
    out.write(f"accepted: {summary.accepted}\n")
    out.write(f"duplicates: {summary.duplicates}\n")
    out.write(f"rejected: {summary.rejected}\n")
    out.write(f"invalid lines: {summary.invalid}\n")
    out.write(f"not sent: {summary.not_sent}\n")
    if summary.failure:
        out.write(f"stopped sending: {summary.failure}\n")
    if summary.rejections:
        out.write("rejected records:\n")
        for rejection in summary.rejections[:list_limit]:
            label = f" request_id={rejection.request_id}" if rejection.request_id else ""
            out.write(f"  {rejection.source}{label}: {rejection.message}\n")
        hidden = len(summary.rejections) - list_limit
        if hidden > 0:
            out.write(f"  ... and {hidden} more\n")


def backfill_command(args: argparse.Namespace) -> int:
    if not args.url or not args.api_key:
        sys.stderr.write("costportal-client: set --url and --api-key (or COSTPORTAL_URL and COSTPORTAL_API_KEY)\n")
        return 2
    if not 1 <= args.batch_size <= MAX_RECORDS_PER_REQUEST:
        sys.stderr.write(f"costportal-client: --batch-size must be between 1 and {MAX_RECORDS_PER_REQUEST}\n")
        return 2
    missing = [path for path in args.files if not os.path.isfile(path)]
    if missing:
        sys.stderr.write(f"costportal-client: no such file: {', '.join(missing)}\n")
        return 2
    try:
        transport = PortalTransport(args.url, args.api_key, timeout=args.timeout)
    except ValueError as exc:
        sys.stderr.write(f"costportal-client: {exc}\n")
        return 2
    policy = RetryPolicy(max_attempts=max(1, args.max_attempts), base_delay=args.retry_base_delay)
    try:
        summary = run_backfill(
            args.files,
            transport,
            batch_size=args.batch_size,
            policy=policy,
            progress=None if args.quiet else sys.stderr,
            path_to=args.path_to,
            default_provider=args.provider,
            default_environment=args.environment,
        )
    finally:
        transport.close()
    _print_summary(summary, sys.stdout, args.list_limit)
    return 0 if summary.succeeded else 1


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    args = _parser().parse_args(argv)
    if args.command == "backfill":
        return backfill_command(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
