"""``[email]``: the contract keys (docs/architecture.md §9), secrets from the environment, bad values named (exit 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.config import load_config
from sessions.errors import ConfigError
from tests.process import PopupProcess
from tests.test_config import write

LEARNING = {"name": "learning", "address": "learning@lists.example.org"}
MAKERS = {"name": "makers", "address": "makers@lists.example.org"}
EMAIL: dict[str, Any] = {
    "enabled": True,
    "address": "popup@example.org",
    "smtp_host": "smtp.example.org",
    "smtp_port": 465,
    "smtp_tls": "tls",
    "imap_host": "imap.example.org",
    "imap_port": 143,
    "imap_tls": "starttls",
    "imap_folder": "Popup",
    "lists": [LEARNING, MAKERS],
}
ENV = {"POPUP_IMAP_USER": "popup", "POPUP_IMAP_PASSWORD": "imap-secret-value",
       "POPUP_SMTP_USER": "popup", "POPUP_SMTP_PASSWORD": "smtp-secret-value"}


def test_the_email_keys_are_read(tmp_path: Path) -> None:
    email = load_config(write(tmp_path, email=EMAIL), env=ENV).email
    assert email.enabled
    assert (email.smtp_host, email.smtp_port, email.smtp_tls) == ("smtp.example.org", 465, "tls")
    assert (email.imap_host, email.imap_port, email.imap_tls, email.imap_folder) == (
        "imap.example.org", 143, "starttls", "Popup")
    assert [(item.name, item.address) for item in email.lists] == [
        ("learning", "learning@lists.example.org"), ("makers", "makers@lists.example.org")]
    assert email.domain == "example.org"


def test_defaults_and_disabled_need_no_secrets(tmp_path: Path) -> None:
    email = load_config(write(tmp_path), env={}).email
    assert not email.enabled
    assert (email.smtp_port, email.smtp_tls, email.imap_port, email.imap_tls, email.imap_folder) == (
        587, "starttls", 993, "tls", "INBOX")


def test_secrets_come_from_the_environment_and_stay_out_of_repr(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, email=EMAIL), env=ENV)
    assert config.email.imap_password == "imap-secret-value"
    assert "imap-secret-value" not in repr(config)
    assert "smtp-secret-value" not in repr(config)
    assert {"imap-secret-value", "smtp-secret-value"} <= set(config.secrets)


def test_smtp_without_login_is_allowed(tmp_path: Path) -> None:
    env = {"POPUP_IMAP_USER": "popup", "POPUP_IMAP_PASSWORD": "x"}
    assert load_config(write(tmp_path, email=EMAIL), env=env).email.smtp_user == ""


BAD = [
    ("bad smtp_tls", {"smtp_tls": "ssl"}, r"email\.smtp_tls: 'ssl' must be \"starttls\", \"tls\" or \"none\""),
    ("bad imap_tls", {"imap_tls": True}, r"email\.imap_tls: expected a string"),
    ("bad port", {"smtp_port": 70000}, r"email\.smtp_port: 70000 is not a TCP port"),
    ("bad address", {"address": "popup"}, r"email\.address: 'popup' is not an e-mail address"),
    ("list name of two words", {"lists": [LEARNING, {**MAKERS, "name": "the makers"}]},
     r"email\.lists\[1\]\.name: 'the makers' must be one word"),
    ("list name twice", {"lists": [LEARNING, {**MAKERS, "name": "Learning"}]},
     r"email\.lists\[1\]\.name: 'Learning' is used by two lists"),
    ("list without address", {"lists": [LEARNING, {"name": "makers"}]}, r"email\.lists\[1\]\.address: is missing"),
    ("no lists", {"lists": None}, r"email\.lists: \[email\] is enabled but no \[\[email\.lists\]\]"),
    ("bad host", {"imap_host": "imap://x"}, r"email\.imap_host: 'imap://x' is not a host"),
]


def email_with(**changes: Any) -> dict[str, Any]:
    """:data:`EMAIL` with ``changes``; a change to None leaves the key out."""
    return {k: v for k, v in {**EMAIL, **changes}.items() if v is not None}


@pytest.mark.parametrize(("changes", "message"), [(c, m) for _, c, m in BAD], ids=[n for n, _, _ in BAD])
def test_bad_email_values_name_the_key(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, email=email_with(**changes)), env=ENV)


def test_a_missing_imap_secret_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="POPUP_IMAP_PASSWORD is not set"):
        load_config(write(tmp_path, email=EMAIL), env={"POPUP_IMAP_USER": "popup"})
    with pytest.raises(ConfigError, match="POPUP_SMTP_PASSWORD is not set"):
        load_config(write(tmp_path, email=EMAIL), env={**ENV, "POPUP_SMTP_PASSWORD": ""})


async def test_the_cli_exits_2_naming_the_email_key(tmp_path: Path) -> None:
    popup = PopupProcess(write(tmp_path, email=email_with(smtp_tls="ssl")), ENV)
    await popup.launch()
    assert await popup.wait() == 2
    [line] = popup.stderr.strip().splitlines()
    assert "email.smtp_tls: 'ssl'" in line


def test_the_example_config_documents_email_switched_off() -> None:
    email = load_config(Path(__file__).parent.parent.parent / "config.example.toml", env={}).email
    assert not email.enabled
    assert [item.name for item in email.lists] == ["learning"]


def test_a_circle_names_a_list_as_configured(tmp_path: Path) -> None:
    circle = {"name": "town", "channels": ["slack:C0123ABC", "email:Learning"]}
    config = load_config(write(tmp_path, email=EMAIL, circles=[circle]), env=ENV)
    assert [(c.platform, c.channel_id) for c in config.engine.circles[0].channels] == [
        ("slack", "C0123ABC"), ("email", "learning")]
    with pytest.raises(ConfigError, match=r"circles\[0\]\.channels\[1\]: 'email:nowhere' names no list"):
        load_config(write(tmp_path, email=EMAIL, circles=[{**circle, "channels": ["slack:C0123ABC", "email:nowhere"]}]),
                    env=ENV)
