"""`mcpmux import` and `mcpmux install` against sample host configs (copied to temp dirs; never the real files)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import typer
from keyrings.alt.file import PlaintextKeyring
from typer.testing import CliRunner, Result

from mcpmux.cli import host_cmd
from mcpmux.profile.load import load_profile
from mcpmux.profile.model import SecretRef, SecretTemplate

HOSTS_DIR = Path(__file__).parent / "fixtures" / "hosts"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_keyring: PlaintextKeyring) -> Path:
    """A home folder and working directory of their own, so no real host config is read or written."""
    monkeypatch.setenv("HOME", str(tmp_path / "userhome"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "userhome" / ".config"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str, stdin: str | None = None) -> Result:
    app = typer.Typer()
    host_cmd.register(app)
    return CliRunner().invoke(app, list(args), input=stdin)


def sample(name: str, tmp_path: Path) -> Path:
    copy = tmp_path / "configs" / name
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(HOSTS_DIR / name, copy)
    return copy


IMPORTS: list[tuple[str, str, list[str], dict[tuple[str, str, str], str]]] = [
    # host, sample, servers expected, {env or header path: secret name}
    (
        "claude-desktop",
        "claude_desktop_config.json",
        ["filesystem", "github", "brave-search"],
        {
            ("github", "env", "GITHUB_PERSONAL_ACCESS_TOKEN"): "github-github-personal-access-token",
            ("brave-search", "env", "BRAVE_API_KEY"): "brave-search-brave-api-key",
        },
    ),
    (
        "cursor",
        "cursor_mcp.json",
        ["postgres", "linear", "docs"],
        {
            ("postgres", "env", "PGPASSWORD"): "postgres-pgpassword",
            ("linear", "headers", "Authorization"): "linear-authorization",
        },
    ),
    ("vscode", "vscode_mcp.json", ["fetch", "github", "legacy"], {}),
    ("claude-code", "claude.json", ["sentry", "time"], {("sentry", "headers", "X-API-Key"): "sentry-x-api-key"}),
    (
        "windsurf",
        "windsurf_mcp_config.json",
        ["slack", "figma"],
        {("slack", "env", "SLACK_BOT_TOKEN"): "slack-slack-bot-token"},
    ),
]


@pytest.mark.parametrize(("host", "name", "servers", "secrets"), IMPORTS)
def test_import_writes_a_profile_that_loads_with_every_credential_moved_into_the_keyring(
    tmp_path: Path,
    mcpmux_home: Path,
    file_keyring: PlaintextKeyring,
    host: str,
    name: str,
    servers: list[str],
    secrets: dict[tuple[str, str, str], str],
) -> None:
    source = sample(name, tmp_path)
    result = run("import", host, "--path", str(source), "--yes")
    assert result.exit_code == 0, result.output
    target = mcpmux_home / "profiles" / f"{host}.toml"
    profile = load_profile(target)
    assert [s.name for s in profile.servers] == servers
    config_text = source.read_text()
    text = target.read_text()
    for (server, table, var), secret in secrets.items():
        spec = profile.server(server)
        assert spec is not None
        assert getattr(spec, table)[var] == SecretRef(secret)
        stored = file_keyring.get_password("mcpmux", secret)
        assert stored is not None and stored in config_text
        assert stored not in text  # the value is in the keyring only
        assert stored not in result.output


def test_import_yes_names_the_backend_of_each_stored_credential_and_warns_that_a_file_backend_is_plaintext(
    tmp_path: Path, file_keyring: PlaintextKeyring
) -> None:
    result = run("import", "cursor", "--path", str(sample("cursor_mcp.json", tmp_path)), "--yes")
    assert result.exit_code == 0, result.output
    stored = [line for line in result.stderr.splitlines() if line.startswith("stored ")]
    assert stored and all(line.endswith("in keyrings.alt.file.PlaintextKeyring") for line in stored)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING: ")]
    assert len(warnings) == 1
    assert f"it keeps secrets UNENCRYPTED in {file_keyring.file_path}" in warnings[0]


def test_import_converts_remote_entries_disabled_flags_and_vscode_inputs(tmp_path: Path, mcpmux_home: Path) -> None:
    assert run("import", "vscode", "--path", str(sample("vscode_mcp.json", tmp_path)), "--yes").exit_code == 0
    profile = load_profile(mcpmux_home / "profiles" / "vscode.toml")
    github = profile.server("github")
    assert github is not None and github.url == "https://api.githubcopilot.com/mcp/"
    assert github.headers["Authorization"] == SecretTemplate(("Bearer ", SecretRef("github-token")))
    result = run("import", "windsurf", "--path", str(sample("windsurf_mcp_config.json", tmp_path)), "--yes")
    figma = load_profile(mcpmux_home / "profiles" / "windsurf.toml").server("figma")
    assert figma is not None and figma.url == "https://figma.example.com/mcp" and not figma.enabled
    assert "servers.slack.disabledTools: not converted" in result.stderr


def test_import_reports_what_it_could_not_convert(tmp_path: Path) -> None:
    result = run("import", "vscode", "--path", str(sample("vscode_mcp.json", tmp_path)), "--yes")
    assert "note: servers.fetch.envFile: not converted" in result.stderr
    assert "note: servers.legacy: was an SSE server" in result.stderr
    assert "mcpmux secret set github-token" in result.stderr


def test_import_reads_claude_codes_local_scope_for_the_current_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mcpmux_home: Path
) -> None:
    project = tmp_path / "work" / "example-project"
    project.mkdir(parents=True)
    source = sample("claude.json", tmp_path)
    source.write_text(source.read_text().replace("/work/example-project", str(project.resolve())))
    monkeypatch.chdir(project)
    assert run("import", "claude-code", "--path", str(source), "--yes").exit_code == 0
    profile = load_profile(mcpmux_home / "profiles" / "claude-code.toml")
    assert [s.name for s in profile.servers] == ["sentry", "time", "db"]


def test_import_without_yes_off_a_terminal_refuses_and_writes_nothing(tmp_path: Path, mcpmux_home: Path) -> None:
    result = run("import", "cursor", "--path", str(sample("cursor_mcp.json", tmp_path)))
    assert result.exit_code == 1
    assert "rerun with --yes" in str(result.exception)
    assert not (mcpmux_home / "profiles" / "cursor.toml").exists()


def test_import_never_overwrites_a_profile(tmp_path: Path, mcpmux_home: Path) -> None:
    source = str(sample("cursor_mcp.json", tmp_path))
    assert run("import", "cursor", "--path", source, "--yes", "--name", "mine").exit_code == 0
    before = (mcpmux_home / "profiles" / "mine.toml").read_text()
    result = run("import", "cursor", "--path", source, "--yes", "--name", "mine")
    assert result.exit_code == 1 and "already exists" in str(result.exception)
    assert (mcpmux_home / "profiles" / "mine.toml").read_text() == before


def _backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.bak-*"))


def test_install_adds_the_entry_keeps_everything_else_backs_up_and_prints_the_diff(tmp_path: Path) -> None:
    config = sample("claude_desktop_config.json", tmp_path)
    original = config.read_text()
    result = run("install", "claude-desktop", "--path", str(config))
    assert result.exit_code == 0, result.output
    data = json.loads(config.read_text())
    assert list(data) == ["mcpServers", "globalShortcut"]
    assert list(data["mcpServers"]) == ["filesystem", "github", "brave search", "mcpmux"]
    entry = data["mcpServers"]["mcpmux"]
    assert Path(entry["command"]).is_absolute() and entry["args"][-1] == "serve"
    assert data["mcpServers"]["github"] == json.loads(original)["mcpServers"]["github"]
    (backup,) = _backups(config)
    assert backup.read_text() == original
    assert '+    "mcpmux": {' in result.stdout


def test_install_twice_changes_nothing_the_second_time(tmp_path: Path) -> None:
    config = sample("cursor_mcp.json", tmp_path)
    assert run("install", "cursor", "--path", str(config)).exit_code == 0
    after_first = config.read_text()
    result = run("install", "cursor", "--path", str(config))
    assert result.exit_code == 0 and "nothing changed" in result.stderr
    assert config.read_text() == after_first
    assert len(_backups(config)) == 1


def test_install_with_replace_removes_the_servers_the_profile_fronts(tmp_path: Path, mcpmux_home: Path) -> None:
    config = sample("claude_desktop_config.json", tmp_path)
    assert run("import", "claude-desktop", "--path", str(config), "--yes", "--name", "desk").exit_code == 0
    result = run("install", "claude-desktop", "--path", str(config), "--profile", "desk", "--replace")
    assert result.exit_code == 0, result.output
    data = json.loads(config.read_text())
    assert list(data["mcpServers"]) == ["mcpmux"]
    assert data["mcpServers"]["mcpmux"]["args"][-3:] == ["serve", "--profile", "desk"]
    assert "removed (now behind mcpmux): filesystem, github, brave search" in result.stderr


def test_install_pins_a_project_profile_by_its_absolute_path(tmp_path: Path) -> None:
    profile = tmp_path / "profiles" / "team.toml"
    profile.parent.mkdir()
    profile.write_text(f'[servers.t]\ncommand = "{sys.executable}"\n')
    config = tmp_path / "configs" / "mcp.json"
    assert run("install", "cursor", "--path", str(config), "--profile", "team").exit_code == 0
    assert json.loads(config.read_text())["mcpServers"]["mcpmux"]["args"][-1] == str(profile.resolve())


def test_install_creates_a_missing_config_with_the_hosts_shape(tmp_path: Path) -> None:
    config = tmp_path / "new" / "mcp.json"
    assert run("install", "vscode", "--path", str(config)).exit_code == 0
    entry = json.loads(config.read_text())["servers"]["mcpmux"]
    assert entry["type"] == "stdio"
    assert _backups(config) == []


def test_install_refuses_to_rewrite_a_file_with_comments(tmp_path: Path) -> None:
    config = sample("vscode_mcp.json", tmp_path)
    before = config.read_text()
    result = run("install", "vscode", "--path", str(config))
    assert result.exit_code == 1 and "has comments" in str(result.exception)
    assert config.read_text() == before and _backups(config) == []


def test_install_into_windsurf_is_refused_with_the_supported_hosts() -> None:
    result = run("install", "windsurf", "--path", "x.json")
    assert result.exit_code == 1 and "claude-desktop, cursor, vscode, claude-code" in str(result.exception)
