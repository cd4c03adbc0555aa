"""Mock provincial one-stop system: send fake dossier lifecycles to the hub.

    HUB_SYSTEM_KEY_ONESTOP=... python -m mocks.onestop --hub-url http://127.0.0.1:8080 \\
        --key-env HUB_SYSTEM_KEY_ONESTOP --rate 2 --dossiers 20 [--forever] [--seed 1]

Prints one line per message on standard output (``MaHoSo type status -> 202 id``), retries on
standard error, and a summary at the end. Exit status: 0 every message accepted; 1 a message was
refused (4xx) or the key was rejected; 2 bad arguments or no key; 3 a message was given up after
retries (the hub stayed unreachable or kept answering 5xx); 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

import httpx

from mocks.onestop.generator import DEFAULT_AGENCY_CODE, DossierGenerator
from mocks.onestop.sender import BackoffPolicy, LifecycleSender, SendReport

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_GAVE_UP = 3
EXIT_INTERRUPTED = 130


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def _ratio(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mocks.onestop",
        description="Mock provincial one-stop system: sends fake dossier lifecycles to the hub.",
    )
    parser.add_argument("--hub-url", default="http://127.0.0.1:8080", help="hub base URL")
    parser.add_argument(
        "--key-env",
        default="HUB_SYSTEM_KEY_ONESTOP",
        help="name of the environment variable holding the one-stop system's hub key",
    )
    parser.add_argument("--rate", type=_positive_float, default=2.0, help="messages per second")
    parser.add_argument("--dossiers", type=int, default=20, help="number of dossiers (10 messages each)")
    parser.add_argument("--forever", action="store_true", help="keep generating new dossiers until interrupted")
    parser.add_argument("--seed", type=int, default=1, help="same seed, same dossiers and idempotency keys")
    parser.add_argument("--agency-code", default=DEFAULT_AGENCY_CODE, help="receiving agency code")
    parser.add_argument(
        "--nfd-ratio", type=_ratio, default=0.2, help="share of dossiers sent in decomposed (NFD) Unicode"
    )
    parser.add_argument("--max-attempts", type=int, default=8, help="attempts per message on 429/5xx/connection errors")
    return parser


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _stdout(line: str) -> None:
    print(line, flush=True)


async def _run(args: argparse.Namespace, key: str, sender_box: list[LifecycleSender]) -> SendReport:
    generator = DossierGenerator(args.seed, args.agency_code, nfd_ratio=args.nfd_ratio)
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as client:
        sender = LifecycleSender(
            args.hub_url,
            key,
            rate=args.rate,
            seed=args.seed,
            client=client,
            backoff=BackoffPolicy(max_attempts=max(1, args.max_attempts)),
            echo=_stdout,
            echo_retry=_stderr,
        )
        sender_box.append(sender)
        return await sender.run(generator.lifecycle(None if args.forever else args.dossiers))


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.dossiers < 0:
        parser.error(f"--dossiers must be 0 or more, got {args.dossiers}")
    key = os.environ.get(args.key_env, "").strip()
    if not key:
        _stderr(
            f"No hub key: the environment variable {args.key_env} is not set or is empty. "
            f"Set it to the key the hub issued to the one-stop system, e.g. `export {args.key_env}=...`."
        )
        return EXIT_USAGE

    sender_box: list[LifecycleSender] = []
    try:
        report = asyncio.run(_run(args, key, sender_box))
    except KeyboardInterrupt:
        if sender_box:
            _stderr(f"Interrupted. {sender_box[0].report.summary()}")
        return EXIT_INTERRUPTED

    _stderr(report.summary())
    if report.stopped:
        _stderr(f"{report.stopped} (key read from {args.key_env})")
    if report.refused:
        return EXIT_REFUSED
    if report.gave_up:
        _stderr(
            f"{report.gave_up} message(s) could not be delivered: start the hub (or fix its storage) and "
            "rerun with the same --seed; the idempotency keys make resending safe."
        )
        return EXIT_GAVE_UP
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
