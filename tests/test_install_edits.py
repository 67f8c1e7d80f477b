"""`mcpmux install`: the host's file edited in place, its backup private, MCPMUX_HOME carried, bad JSON named."""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from mcpmux.cli import host_cmd
from tests.conftest import FIXTURES


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A home and working folder of their own (no real host config is touched), under the usual umask 022."""
    monkeypatch.setenv("HOME", str(tmp_path / "userhome"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "userhome" / ".config"))
    monkeypatch.chdir(tmp_path)
    old = os.umask(0o022)
    yield tmp_path
    os.umask(old)


def run(*args: str) -> Result:
    app = typer.Typer()
    host_cmd.register(app)
    return CliRunner().invoke(app, list(args))


def config_file(tmp_path: Path, text: str, name: str = "mcp.json") -> Path:
    path = tmp_path / "configs" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def removed_lines(old: str, new: str) -> list[str]:
    diff = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True))
    return [line for line in diff if line.startswith("-") and not line.startswith("---")]


def test_install_keeps_the_files_indentation_inline_arrays_and_every_other_line(tmp_path: Path) -> None:
    config = config_file(tmp_path, (FIXTURES / "hosts" / "claude_desktop_config.json").read_text())
    original = config.read_text()
    assert run("install", "claude-desktop", "--path", str(config)).exit_code == 0
    new = config.read_text()
    # The original, byte for byte, with one insertion: a comma and mcpmux's entry after the last server.
    start = new.index(',\n    "mcpmux": {')
    end = new.index('\n  },\n  "globalShortcut"')
    assert new[:start] + new[end:] == original
    assert '"args": ["-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Desktop"]' in new
    entry = json.loads(new)["mcpServers"]["mcpmux"]
    assert f'    "mcpmux": {{\n      "command": {json.dumps(entry["command"])},\n      "args": [' in new
    assert list(json.loads(new)) == ["mcpServers", "globalShortcut"]


def test_install_follows_a_tab_indented_file(tmp_path: Path) -> None:
    config = config_file(tmp_path, '{\n\t"mcpServers": {\n\t\t"a": {"command": "x", "args": ["1", "2"]}\n\t}\n}\n')
    assert run("install", "cursor", "--path", str(config)).exit_code == 0
    new = config.read_text()
    assert new.startswith('{\n\t"mcpServers": {\n\t\t"a": {"command": "x", "args": ["1", "2"]},\n\t\t"mcpmux": {\n')
    assert '\n\t\t\t"command": ' in new
    assert new.endswith("\n\t\t}\n\t}\n}\n")


def test_install_keeps_a_one_line_file_on_one_line(tmp_path: Path) -> None:
    config = config_file(tmp_path, '{"mcpServers": {"a": {"command": "x"}}, "theme": "dark"}')
    assert run("install", "cursor", "--path", str(config)).exit_code == 0
    new = config.read_text()
    assert "\n" not in new
    assert new.startswith('{"mcpServers": {"a": {"command": "x"}, "mcpmux": {"command": ')
    assert new.endswith('}}, "theme": "dark"}')


EMPTY_TABLES = [
    # the file, how it starts after install, how it ends (the entry's own lines in between)
    ('{\n  "mcpServers": {}\n}\n', '{\n  "mcpServers": {\n    "mcpmux": {\n      "command": ', "\n    }\n  }\n}\n"),
    ('{"mcpServers": {}}', '{"mcpServers": {"mcpmux": {"command": ', "}}}"),
    (
        '{\r\n\t"mcpServers": {}\r\n}',
        '{\r\n\t"mcpServers": {\r\n\t\t"mcpmux": {\r\n\t\t\t"command": ',
        "\r\n\t\t}\r\n\t}\r\n}",
    ),
]


@pytest.mark.parametrize(("text", "head", "tail"), EMPTY_TABLES)
def test_install_fills_an_empty_servers_table_in_the_files_style(
    tmp_path: Path, text: str, head: str, tail: str
) -> None:
    config = tmp_path / "mcp.json"
    config.write_bytes(text.encode())
    assert run("install", "cursor", "--path", str(config)).exit_code == 0
    new = config.read_bytes().decode()
    assert new.startswith(head)
    assert new.endswith(tail)
    assert "mcpmux" in json.loads(new)["mcpServers"]


def test_install_adds_a_missing_servers_table_at_the_end_in_the_files_style(tmp_path: Path) -> None:
    config = config_file(tmp_path, '{\n    "theme": "dark",\n    "font": {"size": 12}\n}\n')
    assert run("install", "cursor", "--path", str(config)).exit_code == 0
    new = config.read_text()
    assert new.startswith(
        '{\n    "theme": "dark",\n    "font": {"size": 12},\n    "mcpServers": {\n        "mcpmux": {\n'
    )
    assert list(json.loads(new)) == ["theme", "font", "mcpServers"]


def test_install_replace_removes_fronted_servers_and_keeps_the_rest_as_written(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    profile = mcpmux_home / "profiles" / "desk.toml"
    profile.parent.mkdir(parents=True)
    profile.write_text('[servers.a]\ncommand = "x"\n[servers.c]\ncommand = "y"\n')
    text = '{\n  "mcpServers": {\n    "a": {"command": "x"},\n    "b": {"command": "keep", "args": ["1"]},\n'
    text += '    "c": {"command": "y"}\n  },\n  "theme": "dark"\n}\n'
    config = config_file(tmp_path, text)
    result = run("install", "cursor", "--path", str(config), "--profile", "desk", "--replace")
    assert result.exit_code == 0, result.output
    new = config.read_text()
    assert list(json.loads(new)["mcpServers"]) == ["b", "mcpmux"]
    assert new.startswith('{\n  "mcpServers": {\n    "b": {"command": "keep", "args": ["1"]},\n    "mcpmux": {\n')
    assert new.endswith('\n    }\n  },\n  "theme": "dark"\n}\n')


def test_install_reports_invalid_json_as_invalid_json_naming_the_file_and_line(tmp_path: Path) -> None:
    config = config_file(tmp_path, '{\n  "mcpServers": {\n    "a": {"command": "x"\n  }\n}\n')
    before = config.read_text()
    result = run("install", "cursor", "--path", str(config))
    assert result.exit_code == 1
    message = str(result.exception)
    assert message.startswith(f"{config}:6:1: not valid JSON (Expecting ',' delimiter)")
    assert "not valid JSON" in message
    assert "comments" not in message
    assert config.read_text() == before
    assert list(config.parent.glob("*.bak-*")) == []


def test_install_carries_mcpmux_home_into_the_hosts_entry(tmp_path: Path, mcpmux_home: Path) -> None:
    config = tmp_path / "configs" / "mcp.json"
    assert run("install", "cursor", "--path", str(config)).exit_code == 0
    entry = json.loads(config.read_text())["mcpServers"]["mcpmux"]
    assert entry["env"] == {"MCPMUX_HOME": str(mcpmux_home.resolve())}


def test_install_without_mcpmux_home_sets_no_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCPMUX_HOME")
    config = tmp_path / "configs" / "mcp.json"
    assert run("install", "cursor", "--path", str(config)).exit_code == 0
    assert "env" not in json.loads(config.read_text())["mcpServers"]["mcpmux"]


def test_the_backup_is_owner_only_and_a_warning_names_the_plaintext_credentials_it_holds(tmp_path: Path) -> None:
    config = tmp_path / "configs" / "claude_desktop_config.json"
    config.parent.mkdir()
    shutil.copy(FIXTURES / "hosts" / "claude_desktop_config.json", config)
    config.chmod(0o644)
    result = run("install", "claude-desktop", "--path", str(config))
    assert result.exit_code == 0, result.output
    (backup,) = config.parent.glob("*.bak-*")
    assert backup.stat().st_mode & 0o777 == 0o600
    assert config.stat().st_mode & 0o777 == 0o644  # the host's own file keeps its mode
    assert f"WARNING: the backup {backup} holds plaintext credentials" in result.stderr
    assert "github.env.GITHUB_PERSONAL_ACCESS_TOKEN, brave search.env.BRAVE_API_KEY" in result.stderr
    assert "GITHUB_TOOLSETS" not in result.stderr
    assert "mcpmux import claude-desktop" in result.stderr


def test_a_backup_without_credentials_gets_no_warning(tmp_path: Path) -> None:
    config = config_file(tmp_path, '{"mcpServers": {"a": {"command": "x", "env": {"SORT_KEY": "name"}}}}\n')
    result = run("install", "cursor", "--path", str(config))
    assert result.exit_code == 0
    assert "WARNING" not in result.stderr


def test_install_help_lists_only_the_hosts_it_supports_and_import_help_all() -> None:
    def help_of(command: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "mcpmux", command, "--help"],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    install, imported = help_of("install"), help_of("import")
    assert "claude-desktop, cursor, vscode or claude-code." in install
    assert "windsurf" not in install
    assert "claude-desktop, cursor, vscode, claude-code or windsurf." in imported


def test_install_shared_makes_the_hosts_serve_attach_to_the_profiles_shared_gateway(tmp_path: Path) -> None:
    config = tmp_path / "configs" / "mcp.json"
    assert run("install", "cursor", "--path", str(config), "--shared").exit_code == 0
    args = json.loads(config.read_text())["mcpServers"]["mcpmux"]["args"]
    assert args[-2:] == ["serve", "--shared"]


def test_install_keeps_a_byte_order_mark_and_edits_the_json_after_it(tmp_path: Path) -> None:
    path = tmp_path / "configs" / "mcp.json"
    path.parent.mkdir()
    path.write_bytes(b'\xef\xbb\xbf{\n  "mcpServers": {\n    "a": {"command": "x"}\n  }\n}\n')
    result = run("install", "cursor", "--path", str(path))
    assert result.exit_code == 0, result.output
    written = path.read_bytes()
    assert written.startswith(b"\xef\xbb\xbf{\n")
    servers = json.loads(written.decode("utf-8-sig"))["mcpServers"]
    assert set(servers) == {"a", "mcpmux"}
    (backup,) = path.parent.glob("*.bak-*")
    assert backup.read_bytes().startswith(b"\xef\xbb\xbf")  # the backup is the file as it was
