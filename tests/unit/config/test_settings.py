from pathlib import Path

import pytest

from toolferry.config import Settings


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/srv/a:/srv/b", [Path("/srv/a"), Path("/srv/b")]),
        ("/srv/a,/srv/b", [Path("/srv/a"), Path("/srv/b")]),
        ('["/srv/c"]', [Path("/srv/c")]),
    ],
)
def test_allowed_dirs_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: list[Path]
) -> None:
    monkeypatch.setenv("TOOLFERRY_FILE_ALLOWED_DIRS", value)
    assert Settings().file_allowed_dirs == expected


def test_the_storage_dir_is_always_allowed(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, file_allowed_dirs=[Path("/srv/x")])
    assert settings.allowed_dirs == [tmp_path / "storage", Path("/srv/x")]


def test_a_toml_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "conf.toml"
    config.write_text('port = 9999\nruntime = "none"\n')
    monkeypatch.setenv("TOOLFERRY_CONFIG", str(config))
    monkeypatch.setenv("TOOLFERRY_PORT", "9000")  # the environment wins over the file
    settings = Settings()
    assert (settings.port, settings.runtime) == (9000, "none")


def test_a_missing_config_file_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TOOLFERRY_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ValueError, match="not a file"):
        Settings()
