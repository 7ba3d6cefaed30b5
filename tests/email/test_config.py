"""``[email]``: the keys of DESIGN 4.2, secrets from the environment, bad values named (exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import load_config
from sessions.errors import ConfigError
from tests.test_config import GOOD, write

EMAIL = """
[email]
enabled = true
address = "popup@example.org"
smtp_host = "smtp.example.org"
smtp_port = 465
smtp_tls = "tls"
imap_host = "imap.example.org"
imap_port = 143
imap_tls = "starttls"
imap_folder = "Popup"
  [[email.lists]]
  name = "learning"
  address = "learning@lists.example.org"
  [[email.lists]]
  name = "makers"
  address = "makers@lists.example.org"
"""
ENV = {"POPUP_IMAP_USER": "popup", "POPUP_IMAP_PASSWORD": "imap-secret-value",
       "POPUP_SMTP_USER": "popup", "POPUP_SMTP_PASSWORD": "smtp-secret-value"}


def test_the_email_keys_are_read(tmp_path: Path) -> None:
    email = load_config(write(tmp_path, GOOD + EMAIL), env=ENV).email
    assert email.enabled
    assert (email.smtp_host, email.smtp_port, email.smtp_tls) == ("smtp.example.org", 465, "tls")
    assert (email.imap_host, email.imap_port, email.imap_tls, email.imap_folder) == (
        "imap.example.org", 143, "starttls", "Popup")
    assert [(item.name, item.address) for item in email.lists] == [
        ("learning", "learning@lists.example.org"), ("makers", "makers@lists.example.org")]
    assert email.domain == "example.org"


def test_defaults_and_disabled_need_no_secrets(tmp_path: Path) -> None:
    email = load_config(write(tmp_path, GOOD), env={}).email
    assert not email.enabled
    assert (email.smtp_port, email.smtp_tls, email.imap_port, email.imap_tls, email.imap_folder) == (
        587, "starttls", 993, "tls", "INBOX")


def test_secrets_come_from_the_environment_and_stay_out_of_repr(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD + EMAIL), env=ENV)
    assert config.email.imap_password == "imap-secret-value"
    assert "imap-secret-value" not in repr(config)
    assert "smtp-secret-value" not in repr(config)
    assert {"imap-secret-value", "smtp-secret-value"} <= set(config.secrets)


def test_smtp_without_login_is_allowed(tmp_path: Path) -> None:
    env = {"POPUP_IMAP_USER": "popup", "POPUP_IMAP_PASSWORD": "x"}
    assert load_config(write(tmp_path, GOOD + EMAIL), env=env).email.smtp_user == ""


BAD = [
    ("bad smtp_tls", EMAIL.replace('smtp_tls = "tls"', 'smtp_tls = "ssl"'),
     r"email\.smtp_tls: 'ssl' must be \"starttls\", \"tls\" or \"none\""),
    ("bad imap_tls", EMAIL.replace('imap_tls = "starttls"', "imap_tls = true"), r"email\.imap_tls: expected a string"),
    ("bad port", EMAIL.replace("smtp_port = 465", "smtp_port = 70000"), r"email\.smtp_port: 70000 is not a TCP port"),
    ("bad address", EMAIL.replace('address = "popup@example.org"', 'address = "popup"'),
     r"email\.address: 'popup' is not an e-mail address"),
    ("list name of two words", EMAIL.replace('name = "makers"', 'name = "the makers"'),
     r"email\.lists\[1\]\.name: 'the makers' must be one word"),
    ("list name twice", EMAIL.replace('name = "makers"', 'name = "Learning"'),
     r"email\.lists\[1\]\.name: 'Learning' is used by two lists"),
    ("list without address", EMAIL.replace('  address = "makers@lists.example.org"\n', ""),
     r"email\.lists\[1\]\.address: is missing"),
    ("no lists", EMAIL.split("  [[email.lists]]")[0],
     r"email\.lists: \[email\] is enabled but no \[\[email\.lists\]\]"),
    ("bad host", EMAIL.replace('imap_host = "imap.example.org"', 'imap_host = "imap://x"'),
     r"email\.imap_host: 'imap://x' is not a host"),
]


@pytest.mark.parametrize(("text", "message"), [(t, m) for _, t, m in BAD], ids=[n for n, _, _ in BAD])
def test_bad_email_values_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, GOOD + text), env=ENV)


def test_a_missing_imap_secret_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="POPUP_IMAP_PASSWORD is not set"):
        load_config(write(tmp_path, GOOD + EMAIL), env={"POPUP_IMAP_USER": "popup"})
    with pytest.raises(ConfigError, match="POPUP_SMTP_PASSWORD is not set"):
        load_config(write(tmp_path, GOOD + EMAIL), env={**ENV, "POPUP_SMTP_PASSWORD": ""})


def test_the_cli_exits_2_naming_the_email_key(tmp_path: Path) -> None:
    config = write(tmp_path, GOOD + EMAIL.replace('smtp_tls = "tls"', 'smtp_tls = "ssl"'))
    result = subprocess.run([sys.executable, "-m", "bot.cli", "run", "--config", str(config)],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "email.smtp_tls: 'ssl'" in line


def test_the_example_config_documents_email_switched_off() -> None:
    email = load_config(Path(__file__).parent.parent.parent / "config.example.toml", env={}).email
    assert not email.enabled
    assert [item.name for item in email.lists] == ["learning"]
