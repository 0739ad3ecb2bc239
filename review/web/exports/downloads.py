"""Sending a snapshot download: one file from disk, or the whole folder zipped on the fly."""

from __future__ import annotations

from flask import Response, send_file, stream_with_context

from review.services.dataset_archive import zip_stream
from review.services.datasets import DownloadTarget


def send_target(target: DownloadTarget) -> Response:
    """The response for a download the service has approved (and audited)."""
    if target.path is not None:
        return send_file(
            target.path,
            mimetype=target.mimetype,
            as_attachment=True,
            download_name=target.filename,
        )
    top = target.filename.removesuffix(".zip")
    chunks = zip_stream(target.directory, top, target.members)
    response = Response(stream_with_context(chunks), mimetype=target.mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{target.filename}"'
    return response
