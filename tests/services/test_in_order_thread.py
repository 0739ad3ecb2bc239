"""The export's background hashing and writing: done in the order given, errors surface."""

from __future__ import annotations

import hashlib

import pytest

from review.services.dataset_writers import InOrderThread


def test_tasks_run_in_the_order_given_so_a_hash_matches_hashing_in_line():
    chunks = [bytes([n]) * (5000 + n) for n in range(50)]
    background = hashlib.sha256()
    io = InOrderThread(ahead=2)
    for chunk in chunks:
        io.submit(background.update, chunk)
    io.close()
    assert background.hexdigest() == hashlib.sha256(b"".join(chunks)).hexdigest()


def test_an_error_in_a_task_is_raised_to_the_caller():
    def fail(_data: bytes) -> None:
        raise OSError("disk full")

    io = InOrderThread(ahead=1)
    io.submit(fail, b"x")
    with pytest.raises(OSError, match="disk full"):
        io.submit(fail, b"y")  # waits for the first task, which failed
    io.close()

    last = InOrderThread(ahead=4)
    last.submit(fail, b"z")
    with pytest.raises(OSError, match="disk full"):
        last.close()  # the end of the export waits for, and reports, the last task
