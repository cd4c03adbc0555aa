"""``python -m bench [--quick]``: run the benchmarks and print one line per figure.

Lines on stdout are ``name value unit ratio=<hub/baseline>``; details (baseline values, each
repetition) go to stderr as ``# …`` lines. See ``bench/README.md`` for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import fields
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import aiormq
import orjson

from bench.figures import Report
from bench.profiling import summarize
from bench.scenarios import SCENARIOS, Bench, BenchConfig, say
from bench.services import BROKER_URL, BenchError, wait_for_broker

__all__ = ["main"]


def parse_args(argv: list[str] | None) -> tuple[BenchConfig, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Hub throughput, latency and memory as ratios to raw RabbitMQ, measured in the same run.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition: a smoke run under 60 s")
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated benchmarks to run (default all: {','.join(SCENARIOS)})",
    )
    parser.add_argument("--store", choices=["sqlite", "postgresql"], help="the hub's store (default sqlite)")
    parser.add_argument("--repeat", type=int, help="repetitions per figure; the median is reported")
    parser.add_argument("--messages", type=int, help="messages per broker-path run")
    parser.add_argument("--warmup", type=int, help="messages sent through each hub before anything is measured")
    parser.add_argument("--retry-messages", type=int, help="messages per retry-overhead run")
    parser.add_argument("--scale-deliveries", type=int, help="deliveries per scale run (messages × targets)")
    parser.add_argument("--backlog", type=int, help="size of the queued backlog to drain")
    parser.add_argument("--store-messages", type=int, help="messages written to measure the store size")
    parser.add_argument("--latency-rate", type=float, help="offered load of the latency runs, msg/s")
    parser.add_argument("--latency-seconds", type=float, help="duration of each latency run")
    parser.add_argument("--ingress-seconds", type=float, help="duration of each ingress load run")
    parser.add_argument("--prefetch", type=int, help="prefetch of the hub worker and the raw consumer")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    parser.add_argument(
        "--profile", type=Path, help="record the hub's processes with py-spy into this folder and summarize"
    )
    parser.add_argument("--keep", action="store_true", help="keep the run folder (logs, SQLite files)")
    args = parser.parse_args(argv)
    config = BenchConfig.quick_defaults() if args.quick else BenchConfig()
    overrides = {
        "store": args.store,
        "repeat": args.repeat,
        "messages": args.messages,
        "warmup": args.warmup,
        "retry_messages": args.retry_messages,
        "scale_deliveries": args.scale_deliveries,
        "backlog": args.backlog,
        "store_messages": args.store_messages,
        "latency_rate": args.latency_rate,
        "latency_seconds": args.latency_seconds,
        "ingress_seconds": args.ingress_seconds,
        "prefetch": args.prefetch,
    }
    for key, value in overrides.items():
        if value is not None:
            setattr(config, key, value)
    unknown = set(args.only.split(",")) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIOS)}")
    return config, args


async def run(config: BenchConfig, selected: list[str], run_dir: Path, profile_dir: Path | None) -> Report:
    report = Report()
    run_id = uuid.uuid4().hex[:8]
    async with Bench(config, run_dir, run_id, report) as bench:
        bench.profile_dir = profile_dir
        for name in SCENARIOS:
            if name in selected:
                await _run_scenario(bench, name)
    return report


async def _run_scenario(bench: Bench, name: str) -> None:
    """Run one benchmark; once more if RabbitMQ went away meanwhile (others may restart it on a shared
    machine). A benchmark that fails is reported and the others still run."""
    for attempt in (1, 2):
        started = time.monotonic()
        try:
            await SCENARIOS[name](bench)
            say(f"{name}: done in {time.monotonic() - started:.0f} s")
        except (BenchError, aiormq.exceptions.AMQPError, ConnectionError, TimeoutError) as exc:
            if attempt == 1 and _broker_trouble(exc) and await wait_for_broker():
                say(f"{name}: RabbitMQ went away during the run ({exc}); running {name} again")
                with contextlib.suppress(Exception):
                    await bench.reset_shared()
                continue
            bench.report.failures.append(f"{name}: {exc}")
            print(f"bench: {name} failed: {exc}", file=sys.stderr, flush=True)
        return


_BROKER_TROUBLE = ("CONNECTION_FORCED", "Connection reset", "Connect call failed", "RabbitMQ")


def _broker_trouble(exc: BaseException) -> bool:
    if isinstance(exc, aiormq.exceptions.AMQPError | ConnectionError):
        return True
    text = str(exc)
    log_hint = ""
    if isinstance(exc, BenchError) and " see " in text:
        # A child process that died: its log says whether the broker connection was lost.
        path = Path(text.rsplit(" see ", 1)[1].split(";", maxsplit=1)[0].rstrip("."))
        with contextlib.suppress(OSError):
            log_hint = path.read_text(encoding="utf-8", errors="replace")[-20_000:] if path.is_file() else ""
    return any(marker in text or marker in log_hint for marker in _BROKER_TROUBLE)


#: The packages the hub's hot paths and the baselines run on. The bare ingress endpoint goes through
#: FastAPI and Starlette where the hub's POST does not, so their versions move `ingress_accept`.
_PACKAGES = (
    "fastapi", "starlette", "uvicorn", "uvloop", "httptools", "aio-pika", "aiormq", "pamqp",
    "pydantic", "pydantic-core", "sqlalchemy", "structlog", "orjson", "httpx",
)  # fmt: skip


def environment() -> dict[str, Any]:
    """What a run's figures depend on besides the code: the CPU, Python and the packages' versions."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    packages: dict[str, str] = {}
    for name in _PACKAGES:
        with contextlib.suppress(PackageNotFoundError):
            packages[name] = version(name)
    commit = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,  # this checkout's commit, wherever the run was started from
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    return {
        "commit": commit,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "packages": packages,
    }


def main(argv: list[str] | None = None) -> None:
    config, args = parse_args(argv)
    # asyncio's child watcher complains about processes that exited while it was not looking.
    logging.getLogger("asyncio").addFilter(lambda record: "Unknown child process" not in record.getMessage())
    selected = args.only.split(",")
    run_dir = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    started = time.monotonic()
    settings = ", ".join(f"{f.name}={getattr(config, f.name)}" for f in fields(config))
    say(f"run folder {run_dir}; {settings}")
    machine = environment()
    say(
        f"commit {machine['commit'] or '?'}; {machine['cores']} × {machine['cpu']}; Python {machine['python']}; "
        + ", ".join(f"{name} {v}" for name, v in machine["packages"].items())
    )
    keep = args.keep
    try:
        report = asyncio.run(run(config, selected, run_dir, args.profile))
        keep = keep or bool(report.failures)  # the logs and the store say why
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        sys.exit(2)
    except (aiormq.exceptions.AMQPConnectionError, ConnectionError) as exc:
        print(
            f"bench: RabbitMQ at {BROKER_URL} cannot be reached ({exc}); start it, or set BENCH_BROKER_URL.",
            file=sys.stderr,
        )
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        if not keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    say(f"finished in {time.monotonic() - started:.0f} s")
    if report.failures:
        say(f"{len(report.failures)} benchmark(s) failed: " + "; ".join(report.failures))
    if args.profile:
        for collapsed in sorted(args.profile.glob("*.txt")):
            say(f"profile {collapsed}:")
            for line in summarize(collapsed).splitlines():
                say(f"  {line}")
    if args.json:
        args.json.write_bytes(
            orjson.dumps(
                {
                    "environment": machine,
                    "figures": [
                        {
                            "name": f.name,
                            "value": f.value,
                            "unit": f.unit,
                            "ratio": f.ratio,
                            "baseline": f.baseline,
                            "baseline_name": f.baseline_name,
                            "samples": f.samples,
                            "note": f.note,
                        }
                        for f in report.figures
                    ],
                },
                option=orjson.OPT_INDENT_2,
            )
        )
    if report.failures:
        sys.exit(1)
