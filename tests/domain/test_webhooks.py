"""Webhook signatures and the retry schedule."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from review.domain.webhooks import (
    max_attempts,
    retry_delay,
    secret_problem,
    signature,
    signature_matches,
    url_problem,
)


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body():
    body = b'{"id":"e1"}'
    expected = hmac.new(b"k" * 16, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("k" * 16, "1700000000", body) == f"sha256={expected}"


def test_a_changed_body_timestamp_or_secret_does_not_match():
    header = signature("secret-0123456789", "1700000000", b"{}")
    assert signature_matches("secret-0123456789", "1700000000", b"{}", header)
    assert not signature_matches("secret-0123456789", "1700000000", b"{ }", header)
    assert not signature_matches("secret-0123456789", "1700000001", b"{}", header)
    assert not signature_matches("secret-9876543210", "1700000000", b"{}", header)


def test_one_retry_per_interval_then_none():
    intervals = [10, 60, 300]
    assert max_attempts(intervals) == 4
    assert [retry_delay(intervals, n) for n in range(1, 5)] == [10.0, 60.0, 300.0, None]
    assert retry_delay([], 1) is None


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/x", "http://127.0.0.1:8080/hook?a=1", "HTTPS://A.EXAMPLE"]
)
def test_good_urls(url):
    assert url_problem(url) is None


@pytest.mark.parametrize(
    "url",
    [None, "", "hooks.example.com", "ftp://a.example", "https://", "https://a.example/#frag",
     "https://a.example:0x50/", "https://a.example/\x00", "javascript:alert(1)"],
)  # fmt: skip
def test_bad_urls(url):
    assert url_problem(url) is not None


def test_secrets_need_sixteen_printable_characters():
    assert secret_problem("a" * 16) is None
    assert secret_problem("a" * 15) is not None
    assert secret_problem("a" * 15 + " ") is not None
    assert secret_problem("é" * 16) is not None
    assert secret_problem(None) is not None
