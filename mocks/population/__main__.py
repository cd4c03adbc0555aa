"""``python -m mocks.population --host 127.0.0.1 --port 8082`` runs the fake population database."""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn

from mocks.population.app import DEFAULT_INTEGRATION_CODE, create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m mocks.population", description="Fake national population database (SOAP)."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--citizens", type=Path, default=None, help="citizens.json (default: the fake sample)")
    parser.add_argument("--integration-code", default=DEFAULT_INTEGRATION_CODE, help="MaTichHop the server accepts")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    app = create_app(args.citizens, integration_code=args.integration_code)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
