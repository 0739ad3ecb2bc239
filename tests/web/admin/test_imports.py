"""Import pages: upload, mapping, the report before anything is written, confirm, and the
background job with its polled progress fragment."""

from __future__ import annotations

import io
import re

from sqlalchemy import func, select

from models import Item
from review.db import db_session
from tests.workers.helpers import run_worker

CSV = (
    "ticket_id,subject,body,ai_label,score,model\n"
    "T-1,Refund,Please refund,approve,0.6,legacy\n"
    "T-2,Spam,Win a prize,reject,0.8,legacy\n"
    "T-3,Odd,Too sure,approve,1.5,legacy\n"
    ",No id,Lost,approve,0.5,legacy\n"
    "T-5,Typo,Label typo,aprove,0.5,legacy\n"
)


def items(app) -> int:
    with app.app_context():
        return db_session().scalar(select(func.count(Item.id)))


def stored_uploads(upload_dir) -> list:
    """Uploaded files (the error reports beside them are named import-<id>-errors.csv)."""
    return [p for p in upload_dir.glob("*.csv") if not p.name.startswith("import-")]


def upload(client, csrf, slug: str, content: str, name: str = "tickets.csv"):
    return client.post(
        f"/admin/queues/{slug}/import",
        data={"file": (io.BytesIO(content.encode()), name), "csrf_token": csrf},
        content_type="multipart/form-data",
    )


def mapping_form(csrf: str, **overrides) -> dict:
    form = {
        "id_column": "ticket_id",
        "payload_columns": ["subject", "body"],
        "label_column": "ai_label",
        "confidence_column": "score",
        "model_column": "model",
        "csrf_token": csrf,
    }
    form.update(overrides)
    return form


def test_upload_map_report_then_confirm(app, client, factory, admin, csrf, upload_dir):
    factory.queue("support")
    response = upload(client, csrf, "support", CSV)
    assert response.status_code == 303
    page_url = response.headers["Location"]
    page = client.get(page_url).text
    assert 'option value="ticket_id" selected' in page  # the suggested mapping
    assert len(stored_uploads(upload_dir)) == 1  # the upload is on disk

    checked = client.post(f"{page_url}/mapping", data=mapping_form(csrf))
    assert checked.status_code == 303
    report = client.get(page_url).text
    assert 'data-count="total">5<' in report and 'data-count="errors">3<' in report
    rows = dict(re.findall(r'<tr data-line="(\d+)">.*?<td>([^<]*)</td></tr>', report, re.S))
    assert sorted(rows) == ["4", "5", "6"]
    assert "confidence “1.5” (column “score”)" in rows["4"]
    assert "missing external id" in rows["5"]
    assert "label “aprove” (column “ai_label”)" in rows["6"]
    assert "Import 2 new items, skip 3 bad rows" in report
    assert items(app) == 0  # nothing before confirmation

    download = client.get(f"{page_url}/report.csv")
    assert download.status_code == 200
    assert download.text.splitlines()[1].startswith("4,T-3,confidence")
    download.close()

    done = client.post(f"{page_url}/confirm", data={"csrf_token": csrf})
    assert done.status_code == 303
    assert "2 items created, 0 already in the queue, 3 rows skipped." in client.get(page_url).text
    assert items(app) == 2
    assert not stored_uploads(upload_dir)  # the upload is deleted once imported


def test_reuploading_the_fixed_file_imports_only_the_fixed_rows(app, client, factory, admin, csrf):
    factory.queue("support")
    first = upload(client, csrf, "support", CSV).headers["Location"]
    client.post(f"{first}/mapping", data=mapping_form(csrf))
    client.post(f"{first}/confirm", data={"csrf_token": csrf})
    fixed = CSV.replace("1.5", "0.9").replace(",No id", "T-4,No id").replace("aprove", "approve")
    second = upload(client, csrf, "support", fixed).headers["Location"]
    client.post(f"{second}/mapping", data=mapping_form(csrf))
    report = client.get(second).text
    assert 'data-count="new">3<' in report and 'data-count="existing">2<' in report
    client.post(f"{second}/confirm", data={"csrf_token": csrf})
    assert items(app) == 5


def test_bad_files_and_mappings_show_errors_next_to_fields(app, client, factory, admin, csrf):
    factory.queue("support")
    wrong = upload(client, csrf, "support", "x", name="data.xlsx")
    assert wrong.status_code == 422
    assert 'id="file-error">must be a .csv, .jsonl or .ndjson file<' in wrong.text
    page_url = upload(client, csrf, "support", CSV).headers["Location"]
    bad = client.post(
        f"{page_url}/mapping", data=mapping_form(csrf, confidence_column="", model_column="")
    )
    assert bad.status_code == 422
    assert (
        'id="confidence_column-error">a recommended label needs its confidence column<' in bad.text
    )
    assert 'id="model_name-error">' in bad.text
    early = client.post(f"{page_url}/confirm", data={"csrf_token": csrf})
    assert early.status_code == 303 and items(app) == 0


def test_large_files_run_as_a_job_with_polled_progress(app, client, factory, admin, csrf):
    app.config["IMPORT_INLINE_MAX_BYTES"] = 0  # every file goes to the worker
    factory.queue("support")
    page_url = upload(client, csrf, "support", CSV).headers["Location"]
    client.post(f"{page_url}/mapping", data=mapping_form(csrf))

    fragment = client.get(page_url, headers={"HX-Request": "true", "HX-Target": "import-status"})
    assert fragment.text.lstrip().startswith('<section id="import-status"')
    assert 'data-status="validating"' in fragment.text
    assert 'hx-trigger="every 1s"' in fragment.text  # keeps polling while the job runs
    assert "<html" not in fragment.text

    run_worker(app)
    fragment = client.get(page_url, headers={"HX-Request": "true", "HX-Target": "import-status"})
    assert 'data-status="validated"' in fragment.text
    assert "every 1s" not in fragment.text  # finished: polling stops

    client.post(f"{page_url}/confirm", data={"csrf_token": csrf})
    assert 'data-status="importing"' in client.get(page_url).text
    run_worker(app)
    assert 'data-status="done"' in client.get(page_url).text
    assert items(app) == 2


def test_discarding_an_upload_deletes_the_file(app, client, factory, admin, csrf, upload_dir):
    factory.queue("support")
    page_url = upload(client, csrf, "support", CSV).headers["Location"]
    assert client.post(f"{page_url}/cancel", data={"csrf_token": csrf}).status_code == 303
    assert not stored_uploads(upload_dir)
    assert items(app) == 0
