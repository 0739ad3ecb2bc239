"""The browser fixtures (a live server, headless Chromium) for this folder's browser test."""

from tests.browser.conftest import browser, live_server  # noqa: F401
