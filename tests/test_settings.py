"""The settings registry: the README's configuration table is checked against it, and the
sources (environment, TOML file, overrides) take precedence in the documented order."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cdrapi.settings import FieldSource, Settings, SettingsError, TokenScope, load_settings

README = Path(__file__).parents[1] / "README.md"


def readme_table() -> dict[str, tuple[str, str]]:
    rows = re.findall(r"^\| `(CDRAPI_[A-Z_]+)` \| (.*?) \| (.*?) \|$", README.read_text(), re.M)
    return {name: (default, meaning) for name, default, meaning in rows}


def test_readme_documents_every_setting_as_the_registry_does() -> None:
    table = readme_table()
    assert set(table) == {f"CDRAPI_{name.upper()}" for name in Settings.model_fields}
    for name, field in Settings.model_fields.items():
        default, meaning = table[f"CDRAPI_{name.upper()}"]
        assert default == (f"`{field.default}`" if field.default else "(none)")
        assert meaning == field.description


def test_environment_file_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "cdrapi.toml"
    config.write_text('db = "sqlite:///file.db"\napi_token = "a, b"\ntimezone = "UTC"\n')
    assert load_settings(config).db == "sqlite:///file.db"
    assert load_settings(config).tokens == ["a", "b"]
    monkeypatch.setenv("CDRAPI_DB", "sqlite:///env.db")
    assert load_settings(config).db == "sqlite:///env.db"
    assert load_settings(config, db="sqlite:///cli.db").db == "sqlite:///cli.db"
    monkeypatch.setenv("CDRAPI_CONFIG", str(config))
    assert load_settings().timezone == "UTC"


def test_bad_configuration_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="config file not found"):
        load_settings(tmp_path / "missing.toml")
    with pytest.raises(SettingsError, match="unknown time zone 'Mars/Olympus'"):
        load_settings(timezone="Mars/Olympus")
    broken = tmp_path / "broken.toml"
    broken.write_text("db = \n")
    with pytest.raises(SettingsError, match=r"broken\.toml"):
        load_settings(broken)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('dbb = "x"\n')
    with pytest.raises(SettingsError, match="dbb"):
        load_settings(unknown)


def test_scoped_tokens_from_the_file_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "cdrapi.toml"
    config.write_text(
        '[[tokens]]\ntoken = "support"\nprojects = [2]\n\n'
        '[[tokens]]\ntoken = "agents"\nextensions = ["101", 102]\nprojects = [1]\n'
    )
    assert load_settings(config).scoped_tokens == (
        TokenScope(token="support", projects=(2,)),
        TokenScope(token="agents", projects=(1,), extensions=("101", "102")),
    )
    assert load_settings(config).tokens == []  # they are not tokens that see every call
    monkeypatch.setenv("CDRAPI_SCOPED_TOKENS", '[{"token": "env", "extensions": ["7"]}]')
    assert load_settings(config).scoped_tokens == (TokenScope(token="env", extensions=("7",)),)
    monkeypatch.setenv("CDRAPI_SCOPED_TOKENS", "[{")
    with pytest.raises(SettingsError, match="scoped_tokens"):
        load_settings()
    both = tmp_path / "both.toml"
    both.write_text('scoped_tokens = []\n[[tokens]]\ntoken = "x"\nprojects = [1]\n')
    with pytest.raises(SettingsError, match=r"\[\[tokens\]\] or scoped_tokens, not both"):
        load_settings(both)


def test_crm_fields_from_the_file_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "cdrapi.toml"
    config.write_text(
        '[fields]\ncustomer_id = "customer_id"\n'
        'external_id = { column = "userfield", pattern = "ext=(\\\\d+)" }\n'
    )
    chosen = load_settings(config)
    assert chosen.crm_fields == {
        "customer_id": FieldSource(column="customer_id"),
        "external_id": FieldSource(column="userfield", pattern=r"ext=(\d+)"),
    }
    # as `cdrapi serve` hands it to its workers: JSON in the environment
    dumped = chosen.model_dump(mode="json")["crm_fields"]
    monkeypatch.setenv("CDRAPI_CRM_FIELDS", json.dumps(dumped))
    assert load_settings().crm_fields == chosen.crm_fields
    # field by field, the environment wins over the file
    monkeypatch.setenv("CDRAPI_CRM_FIELDS", '{"comments": "note", "customer_id": "crm"}')
    assert load_settings(config).crm_fields == {
        "customer_id": FieldSource(column="crm"),
        "external_id": FieldSource(column="userfield", pattern=r"ext=(\d+)"),
        "comments": FieldSource(column="note"),
    }
    monkeypatch.setenv("CDRAPI_CRM_FIELDS", '{"comment": "note"}')
    with pytest.raises(SettingsError, match=r"\[fields\] has no field 'comment'"):
        load_settings()
    monkeypatch.delenv("CDRAPI_CRM_FIELDS")
    both = tmp_path / "both.toml"
    both.write_text('crm_fields = {}\n[fields]\ncomments = "note"\n')
    with pytest.raises(SettingsError, match=r"\[fields\] or crm_fields, not both"):
        load_settings(both)
    assert load_settings().crm_fields == {}  # none: ingestion maps nothing
