"""Webhook secrets sealed at rest: what a copy of the database shows, and key rotation."""

from __future__ import annotations

import pytest

from models import QueueWebhook
from review.domain.webhooks import MAX_SECRET_LENGTH
from review.sealed_secrets import SEALED_PREFIX, SecretBox, SecretUnreadable, is_sealed

SECRET = "whsec-0123456789-abcdefghij"


def test_a_sealed_secret_opens_to_itself_and_shows_nothing_of_it():
    box = SecretBox("key-one")
    sealed = box.seal(SECRET)
    assert is_sealed(sealed) and SECRET not in sealed
    assert box.seal(SECRET) != sealed  # a fresh IV each time: equal secrets do not show
    assert box.open(sealed) == SECRET


def test_the_longest_secret_fits_the_column_once_sealed():
    longest = "~" * MAX_SECRET_LENGTH
    sealed = SecretBox("key-one").seal(longest)
    assert len(sealed) <= QueueWebhook.__table__.c.secret.type.length


def test_a_rotated_key_still_opens_what_it_sealed_while_it_is_a_fallback():
    sealed = SecretBox("old-key").seal(SECRET)
    assert SecretBox("new-key", ["old-key"]).open(sealed) == SECRET
    with pytest.raises(SecretUnreadable, match="set the secret again"):
        SecretBox("new-key").open(sealed)


def test_a_damaged_value_is_unreadable_not_a_crash():
    box = SecretBox("key-one")
    sealed = box.seal(SECRET)
    for damaged in (sealed[:-4] + "AAAA", SEALED_PREFIX + "not-a-token", SEALED_PREFIX):
        with pytest.raises(SecretUnreadable):
            box.open(damaged)


def test_a_secret_stored_before_sealing_opens_as_it_is():
    assert not is_sealed(SECRET)
    assert SecretBox("key-one").open(SECRET) == SECRET


def test_keys_come_from_the_config_with_their_fallbacks():
    sealed = SecretBox("old").seal(SECRET)
    config = {"SECRET_KEY": "new", "SECRET_KEY_FALLBACKS": ["old"]}
    assert SecretBox.from_config(config).open(sealed) == SECRET
    with pytest.raises(SecretUnreadable):
        SecretBox.from_config({"SECRET_KEY": "new"}).open(sealed)
