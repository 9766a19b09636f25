"""Settings read when a deployment's flow runs: environment first, then a Prefect Variable,
else one line naming both."""

from __future__ import annotations

import os

import pytest

from pamflow.flows import settings


@pytest.fixture(autouse=True)
def _no_api(monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    for s in settings.ALL:
        monkeypatch.delenv(s.env, raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with temporary_settings({PREFECT_API_URL: None}):
        yield


def test_a_missing_setting_names_the_variable_and_the_prefect_variable():
    with pytest.raises(settings.SettingError) as e:
        settings.required(settings.DATA_DIR)
    message = str(e.value)
    assert "PAMFLOW_DATA_DIR is not set" in message and "'pamflow_data_dir'" in message
    assert "\n" not in message
    assert settings.optional(settings.SCHEDULER) is None


def test_the_environment_is_read_when_asked(monkeypatch):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://10.0.0.1:8786")
    assert settings.required(settings.SCHEDULER) == "tcp://10.0.0.1:8786"


def test_a_prefect_variable_is_read_when_the_environment_is_silent(prefect_server):
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.variables import Variable

    with temporary_settings({PREFECT_API_URL: prefect_server}):
        Variable.set("pamflow_runs_dir", "/srv/runs", overwrite=True)
        try:
            assert settings.required(settings.RUNS_DIR) == "/srv/runs"
            os.environ["PAMFLOW_RUNS_DIR"] = "/env/runs"  # the environment wins
            assert settings.required(settings.RUNS_DIR) == "/env/runs"
        finally:
            os.environ.pop("PAMFLOW_RUNS_DIR", None)
            Variable.unset("pamflow_runs_dir")


def test_overrides_are_a_json_object_or_one_line_error(monkeypatch):
    assert settings.overrides(settings.SPEC_OVERRIDES) == {}
    monkeypatch.setenv("PAMFLOW_SPEC_OVERRIDES", '{"num_examples": 8}')
    assert settings.overrides(settings.SPEC_OVERRIDES) == {"num_examples": 8}
    monkeypatch.setenv("PAMFLOW_SPEC_OVERRIDES", "num_examples: 8")
    with pytest.raises(settings.SettingError, match="PAMFLOW_SPEC_OVERRIDES: not JSON"):
        settings.overrides(settings.SPEC_OVERRIDES)
    monkeypatch.setenv("PAMFLOW_SPEC_OVERRIDES", "[8]")
    with pytest.raises(settings.SettingError, match="expected a JSON object, got list"):
        settings.overrides(settings.SPEC_OVERRIDES)


def test_paths_are_made_absolute_and_urls_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert settings.absolute("data/x") == str(tmp_path / "data" / "x")
    assert settings.absolute("s3://bucket/x") == "s3://bucket/x"
    assert settings.absolute("/abs/x") == "/abs/x"
