"""Browser fixtures of the end-to-end tests: Debian's Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

from tests.conftest import CHROMIUM_ARGS


@pytest.fixture(scope="module")
async def browser(chromium_executable: str) -> AsyncIterator[Browser]:
    """One headless Chromium per test module (skipped without Chromium, a failure in CI)."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium_executable, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()
