"""PII redaction: what must go, and look-alikes that must stay."""

import pytest

from review.domain.redaction import (
    PatternError,
    compile_patterns,
    iban_valid,
    luhn_valid,
    redact_text,
    redact_value,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe+x@example.co.uk today", "write to [EMAIL] today"),
        ("card 4111 1111 1111 1111 ok", "card [CARD] ok"),
        ("card 5500-0000-0000-0004.", "card [CARD]."),
        ("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN [IBAN] please"),
        ("GB82WEST12345698765432", "[IBAN]"),
        ("call +49 30 1234567 or (555) 123-4567", "call [PHONE] or [PHONE]"),
    ],
)
def test_pii_is_replaced_by_its_kind(text, expected):
    assert redact_text(text).text == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 4111 1111 1111 1112 failed",  # 16 digits, Luhn fails: not a card
        "ref DE89 3704 0044 0532 0130 01",  # IBAN shape, checksum fails
        "shipped on 2024-01-15, order 12345678, total 42.50",
    ],
)
def test_look_alikes_are_kept(text):
    assert redact_text(text).text == text


def test_checksums():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("DE89 3704 0044 0532 0130 00") and not iban_valid("DE89370400440532013001")


def test_queue_patterns_apply_first_and_bad_ones_are_refused():
    patterns = compile_patterns([r"ACCT-\d{6}"])
    assert redact_text("account ACCT-123456 locked", patterns).text == "account [REDACTED] locked"
    with pytest.raises(PatternError):
        compile_patterns(["(unclosed"])


def test_nested_payloads_are_walked_and_counted():
    value, counts = redact_value({"a": ["x@y.io", {"b": "+44 20 7946 0958"}], "n": 4})
    assert value == {"a": ["[EMAIL]", {"b": "[PHONE]"}], "n": 4}
    assert counts == {"EMAIL": 1, "PHONE": 1}
