"""Where the audit key lives: the OS keyring (this run's file keyring), else a 0600 file; keyring calls bounded."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keyring.core
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail, null

from mcpmux.audit.key import KEYRING_NAME, SERVICE, AuditKey, available_keys, key_file, obtain_key
from mcpmux.audit.verify import verify
from mcpmux.errors import AuditError, SecretError
from mcpmux.secrets import store
from tests.audit_helpers import write_log
from tests.conftest_keyring import BlockingKeyring


def test_the_first_writer_makes_the_key_in_the_keyring_and_every_later_one_finds_the_same(
    file_keyring: KeyringBackend, tmp_path: Path
) -> None:
    log = tmp_path / "state" / "audit.jsonl"
    key, no_keyring = obtain_key(log)
    assert (key.source, no_keyring) == ("keyring", None)
    assert "keyrings.alt.file.PlaintextKeyring" in key.where and KEYRING_NAME in key.where
    assert file_keyring.get_password(SERVICE, KEYRING_NAME) == key.secret.hex()
    again, _ = obtain_key(log)
    assert again.id == key.id
    assert not key_file(log).exists()
    found, notes = available_keys(log)
    assert ([k.id for k in found], notes) == ([key.id], [])


def test_writers_starting_at_once_agree_on_one_key(file_keyring: KeyringBackend, tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"

    def obtain(_: int) -> AuditKey:
        return obtain_key(log)[0]

    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(obtain, range(8)))
    assert len({k.id for k in keys}) == 1
    assert file_keyring.get_password(SERVICE, KEYRING_NAME) == keys[0].secret.hex()


def test_the_keyring_entry_is_out_of_reach_of_profiles_and_mcpmux_secret() -> None:
    assert SERVICE == store.SERVICE
    with pytest.raises(SecretError):
        store.check_secret_name(KEYRING_NAME)


@pytest.fixture
def no_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyring.core, "_keyring_backend", fail.Keyring())


@pytest.mark.usefixtures("no_keyring")
def test_with_no_usable_keyring_the_key_lives_in_a_0600_file_and_verify_says_so(tmp_path: Path) -> None:
    log = tmp_path / "state" / "audit.jsonl"
    key, no_keyring = obtain_key(log)
    assert key.source == "file" and key.where == str(key_file(log))
    assert no_keyring is not None and "NoKeyringError" in no_keyring
    assert stat.S_IMODE(key_file(log).stat().st_mode) == 0o600
    assert obtain_key(log)[0].id == key.id
    write_log(log, 2, key=key)
    found, notes = available_keys(log)
    assert [k.id for k in found] == [key.id]
    assert notes and notes[0].startswith("the OS keyring cannot be read here")
    segment = verify(log, found, notes).segments[0]
    assert f"keyed with the key file {key_file(log)} (0600" in str(segment)


def test_a_keyring_that_forgets_what_it_was_given_is_not_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(keyring.core, "_keyring_backend", null.Keyring())
    key, no_keyring = obtain_key(tmp_path / "audit.jsonl")
    assert key.source == "file"
    assert no_keyring is not None and "did not keep the key" in no_keyring


@pytest.fixture
def stuck_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[BlockingKeyring]:
    stuck = BlockingKeyring()
    monkeypatch.setattr(keyring.core, "_keyring_backend", stuck)
    yield stuck
    stuck.release.set()  # let the abandoned daemon threads end


def test_a_keyring_that_never_answers_is_abandoned_after_the_bound(
    stuck_keyring: BlockingKeyring, tmp_path: Path
) -> None:
    key, no_keyring = obtain_key(tmp_path / "audit.jsonl", timeout=0.2)
    assert key.source == "file"
    assert no_keyring == "the keyring did not answer within 0.2 s (locked?)"
    found, notes = available_keys(tmp_path / "audit.jsonl", timeout=0.2)
    assert [k.id for k in found] == [key.id] and "did not answer within 0.2 s" in notes[0]


@pytest.mark.usefixtures("no_keyring")
@pytest.mark.parametrize("mode", [0o640, 0o604])
def test_a_key_file_others_could_read_is_refused_naming_the_file_and_the_fix(tmp_path: Path, mode: int) -> None:
    log = tmp_path / "audit.jsonl"
    obtain_key(log)
    key_file(log).chmod(mode)
    with pytest.raises(AuditError) as refused:
        obtain_key(log)
    assert str(key_file(log)) in str(refused.value) and "chmod 600" in str(refused.value)
    found, notes = available_keys(log)
    assert found == [] and str(key_file(log)) in notes[-1]


@pytest.mark.usefixtures("no_keyring")
def test_a_damaged_key_file_is_refused_rather_than_replaced(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    obtain_key(log)
    key_file(log).write_text("not a key\n")
    with pytest.raises(AuditError, match="damaged; delete it to start a new key"):
        obtain_key(log)
