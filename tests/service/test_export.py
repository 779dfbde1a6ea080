"""Export and import through the paths users run: the HTTP routes (behind the tenant's key) and the CLI.
Export -> import into a NEW database reproduces the user byte for byte (SQLite and PostgreSQL); a bad file
is refused naming the record and field, and nothing of it is stored."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from prefscribe.cli import app
from prefscribe.store import Store

from .conftest import items


def _user_with_history(service) -> None:
    """Two model updates, an edit and a rollback: every kind of version, with interactions."""
    assert service.ingest("u1", items(3)).status_code == 201
    service.worker.step()
    service.ingest("u1", [{"chosen": "tea", "timestamp": 12.5, "domain": "food", "meta": {"k": [1, "ü"]}}] +
                   items(2, start=3))
    service.worker.step()
    h = service.auth()
    assert service.client.put("/v1/users/u1/profile", json={"profile": "Edited.  Two spaces!\nLine two.",
                                                            "editor": "ann"}, headers=h).status_code == 201
    assert service.client.post("/v1/users/u1/profile/rollback", json={"version": 2}, headers=h).status_code == 201


def test_export_then_import_into_a_new_database_reproduces_the_user(make_service, another_db):
    service = make_service()
    _user_with_history(service)
    exported = service.client.get("/v1/users/u1/export?format=json", headers=service.auth())
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/json")
    doc = exported.json()
    assert [v["kind"] for v in doc["versions"]] == ["update", "update", "edit", "rollback"]
    assert len(doc["interactions"]) == 6 and doc["format_version"] == 1

    # a new, empty database of the same kind (PostgreSQL: a second schema; SQLite: a second file)
    other = Store(another_db)
    try:
        tenant = other.tenant("elsewhere").id
        state = other.import_user(tenant, _read(exported.text), None)
        assert (state.versions, state.interactions, state.head_version) == (4, 6, 4)
        again = other.export_user(tenant, "u1")
        from prefscribe.formats import get_format

        assert get_format("json").dump(again) == exported.text  # byte for byte
        # the imported user carries on: new interactions are pending from where the export left off
        assert other.head(tenant, "u1")[0].pending == 6 - doc["versions"][-1]["covered_through"]
    finally:
        other.close()


def test_import_over_http_is_one_transaction_and_names_what_is_wrong(make_service):
    service = make_service()
    _user_with_history(service)
    h = service.auth()
    doc = service.client.get("/v1/users/u1/export", headers=h).json()
    doc["versions"][3]["parent"] = 9  # the last record is bad: nothing before it may be stored either
    r = service.client.post("/v1/users/u2/import", content=json.dumps(doc), headers=h)
    assert r.status_code in (400, 422) and "versions[3].parent" in r.text
    assert service.client.get("/v1/users/u2", headers=h).status_code == 404

    doc["versions"][3]["parent"] = 3
    r = service.client.post("/v1/users/u2/import", content=json.dumps(doc), headers=h)
    assert r.status_code == 201 and r.json()["versions"] == 4 and r.json()["user_id"] == "u2"
    assert service.client.post("/v1/users/u2/import", content=json.dumps(doc), headers=h).status_code == 409
    # another tenant sees neither user, and cannot export them
    assert service.client.get("/v1/users/u2/export", headers=service.auth(service.key_b)).status_code == 404
    assert service.client.get("/v1/users/u2/export").status_code == 401


def test_foreign_formats_carry_the_profile_text(make_service):
    service = make_service()
    _user_with_history(service)
    h = service.auth()
    head = service.client.get("/v1/users/u1/profile", headers=h).json()["profile"]
    for n, fmt in enumerate(["letta", "mem0"]):
        exported = service.client.get(f"/v1/users/u1/export?format={fmt}", headers=h)
        assert exported.status_code == 200
        r = service.client.post(f"/v1/users/from-{fmt}/import", content=exported.content, headers=h)
        assert r.status_code == 201, r.text
        imported = service.client.get(f"/v1/users/from-{fmt}/profile", headers=h).json()
        assert imported["profile"] == head and imported["editor"] == f"import:{fmt}"
    md = service.client.get("/v1/users/u1/export?format=markdown", headers=h)
    assert md.headers["content-type"].startswith("text/markdown") and head.split("\n")[0] in md.text
    assert service.client.get("/v1/users/u1/export?format=yaml", headers=h).status_code == 422


def test_the_cli_exports_and_imports_between_databases(make_service, db_url, another_db, tmp_path):
    service = make_service()
    _user_with_history(service)
    runner = CliRunner()
    out = tmp_path / "u1.json"
    r = runner.invoke(app, ["export", "u1", "--db", db_url, "--tenant", "tenant-a", "--out", str(out)])
    assert r.exit_code == 0, r.output
    other = another_db
    r = runner.invoke(app, ["import", str(out), "--db", other, "--tenant", "tenant-b", "--user", "moved"])
    assert r.exit_code == 0 and "4 versions, 6 interactions" in r.output, r.output
    r = runner.invoke(app, ["export", "moved", "--db", other, "--tenant", "tenant-b"])
    assert json.loads(r.stdout) == {**json.loads(out.read_text()), "user_id": "moved"}

    bad = tmp_path / "bad.json"
    bad.write_text(out.read_text().replace('"covers": 3', '"covers": -1', 1))
    r = runner.invoke(app, ["import", str(bad), "--db", other, "--tenant", "tenant-b", "--user", "never"])
    assert r.exit_code != 0 and "versions[0].covers" in r.output
    r = runner.invoke(app, ["export", "never", "--db", other, "--tenant", "tenant-b"])
    assert r.exit_code != 0  # nothing was half-imported


def _read(text: str):
    from prefscribe.formats import read_document

    return read_document(text, "export.json")


def test_any_user_id_exports_with_a_valid_attachment_header(make_service):
    """A user id may hold quotes, spaces or any Unicode; the header carries an ASCII name and the exact one
    (RFC 6266 filename*), and never breaks the response (the fuzzer found a 500 here)."""
    service = make_service()
    h = service.auth()
    user = 'Zoë "z" 中'
    assert service.client.post(f"/v1/users/{user}/interactions", json={"interactions": [{"chosen": "tea"}]},
                               headers=h).status_code in (200, 201, 202)
    exported = service.client.get(f"/v1/users/{user}/export?format=markdown", headers=h)
    assert exported.status_code == 200
    disposition = exported.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="Zo___z___.md"')
    assert disposition.endswith("filename*=UTF-8''Zo%C3%AB%20%22z%22%20%E4%B8%AD.md")
