"""Fixtures of the worker tests: the fake Anthropic API and an app that calls it."""

from tests.workers.claude_helpers import claude_app, fake_anthropic  # noqa: F401
