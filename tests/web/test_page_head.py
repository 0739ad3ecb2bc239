"""What every page's head links to is served: a browser asks /favicon.ico (a 404 and a
console error on every first visit) unless the page names an icon."""

from __future__ import annotations

import re


def test_every_page_names_an_icon_that_is_served(client):
    login_page = client.get("/login")
    icon = re.search(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)">', login_page.text)
    assert icon is not None
    served = client.get(icon.group(1))
    try:
        assert served.status_code == 200
        assert served.mimetype == "image/svg+xml" and b"<svg" in served.data
    finally:
        served.close()  # a static file is streamed from an open file
