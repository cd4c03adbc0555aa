"""``python -m mocks.vnpost --port 8085 --callback-url http://127.0.0.1:8080/v1/callbacks/vnpost``."""

from __future__ import annotations

import argparse

import uvicorn

from mocks.vnpost.app import DEFAULT_CALLBACK_TOKEN, DEFAULT_PASSWORD, DEFAULT_USERNAME, create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mocks.vnpost", description="Fake VNPost API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8085)
    parser.add_argument("--username", default=DEFAULT_USERNAME)
    parser.add_argument("--password", default=DEFAULT_PASSWORD)
    parser.add_argument("--callback-url", default=None, help="where tracking callbacks are posted (the hub)")
    parser.add_argument("--callback-token", default=DEFAULT_CALLBACK_TOKEN, help="sent as X-VNPost-Token")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    app = create_app(
        username=args.username,
        password=args.password,
        callback_url=args.callback_url,
        callback_token=args.callback_token,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
