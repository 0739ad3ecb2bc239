"""A snapshot folder as a zip, produced while it is sent: nothing is built on disk or held
in memory beyond one chunk."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

CHUNK = 1 << 20
# Parquet is compressed already; deflating it again costs time and saves nothing.
_STORED_SUFFIXES = (".parquet",)


class _Pipe(io.RawIOBase):
    """A write-only, unseekable sink whose bytes are taken out by the generator."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        chunk = bytes(data)
        self.chunks.append(chunk)
        return len(chunk)

    def drain(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


def zip_stream(directory: Path, top: str, members: Sequence[str]) -> Iterator[bytes]:
    """Yield a zip of `members` (paths relative to `directory`) under the folder `top`."""
    pipe = _Pipe()
    # An unseekable target makes zipfile write data descriptors instead of seeking back.
    with zipfile.ZipFile(pipe, "w", allowZip64=True) as archive:
        for member in members:
            compression = (
                zipfile.ZIP_STORED if member.endswith(_STORED_SUFFIXES) else zipfile.ZIP_DEFLATED
            )
            info = zipfile.ZipInfo(f"{top}/{member}", date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = compression
            with (
                (directory / member).open("rb") as source,
                archive.open(info, "w", force_zip64=True) as target,
            ):
                while chunk := source.read(CHUNK):
                    target.write(chunk)
                    if data := pipe.drain():
                        yield data
            if data := pipe.drain():
                yield data
    if data := pipe.drain():
        yield data
