"""The outlets beside the chat: ``[web]``, ``[email]`` (mailing lists) and ``[story]`` (the optional
writer model), their secrets from the environment."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from adapters.email.settings import TLS_FORMS, EmailSettings, MailingList, Tls
from adapters.web.settings import SECRET_VARIABLE as WEB_SECRET_VARIABLE
from adapters.web.settings import WebSettings
from bot.config.reader import Reader, require_secret
from bot.prose_model import StorySettings
from sessions.channels import EMAIL_LIST_NAME
from sessions.errors import ConfigError

_STORY_KEYS = ("llm_base_url", "llm_model")


def read_story(story: Reader, env: Mapping[str, str]) -> StorySettings:
    for key in story.table:
        if key not in _STORY_KEYS:
            raise story.fail(key, f"is not a [story] key (the keys are {' and '.join(_STORY_KEYS)})")
    base = story.get("llm_base_url", str, "").strip()
    if base and not base.startswith(("http://", "https://")):
        raise story.fail("llm_base_url", f"{base!r} must be an http(s) URL, e.g. http://127.0.0.1:8080/v1")
    model = story.get("llm_model", str, "").strip()
    if base and not model:
        raise story.fail("llm_model", "is empty; name the model when llm_base_url is set")
    # The key is optional (a local server needs none); it is read only when a model is configured.
    key = env.get("POPUP_LLM_API_KEY", "").strip() if base else ""
    return StorySettings(llm_base_url=base.rstrip("/"), llm_model=model, api_key=key)


def read_web(web: Reader, env: Mapping[str, str] | None) -> WebSettings:
    enabled = web.get("enabled", bool, False)
    port = web.get("port", int, 8080)
    if not 0 <= port <= 65535:
        raise web.fail("port", f"{port} is not a TCP port")
    public_url = web.get("public_url", str, "").strip()
    if public_url and (not public_url.startswith(("http://", "https://")) or "?" in public_url or "#" in public_url):
        raise web.fail("public_url", f"{public_url!r} must be an http(s) URL without a query, e.g. https://popup.example.org")
    settings = WebSettings(enabled=enabled, host=web.get("host", str, "127.0.0.1"), port=port, public_url=public_url)
    if not enabled or env is None:
        return settings
    secret = require_secret(env, WEB_SECRET_VARIABLE, web)
    if len(secret) < 16:
        # Say what it should be, never what it is.
        raise ConfigError(
            f"{web.source}: [web]: {WEB_SECRET_VARIABLE} is too short (at least 16 characters; "
            "e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return dataclasses.replace(settings, secret=secret)


# A plain addr-spec (local@domain): enough to tell a typo from an address; the mail server judges the rest.
_ADDRESS = re.compile(r"[^@\s<>\"(),;:]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")


def read_email(email: Reader, env: Mapping[str, str] | None) -> EmailSettings:
    enabled = email.get("enabled", bool, False)
    defaults = EmailSettings()

    def address(reader: Reader, key: str, default: str, *, required: bool) -> str:
        value = str(reader.get(key, str, default, required=required)).strip()
        if not _ADDRESS.fullmatch(value):
            raise reader.fail(key, f"{value!r} is not an e-mail address (name@example.org)")
        return value

    def port(key: str, default: int) -> int:
        value = email.get(key, int, default)
        if not 1 <= value <= 65535:
            raise email.fail(key, f"{value} is not a TCP port")
        return int(value)

    def tls(key: str, default: Tls) -> Tls:
        value = email.get(key, str, default)
        for form in TLS_FORMS:
            if value == form:
                return form
        raise email.fail(key, f'{value!r} must be "starttls", "tls" or "none"')

    def host(key: str, default: str) -> str:
        value = email.get(key, str, default).strip()
        if not value or any(ch.isspace() or ch in "/:@" for ch in value.strip("[]")):
            raise email.fail(key, f"{value!r} is not a host name or address")
        return str(value)

    folder = email.get("imap_folder", str, defaults.imap_folder)
    if not folder.strip() or any(ch in folder for ch in '\r\n"'):
        raise email.fail("imap_folder", f"{folder!r} is not a folder name")
    lists: list[MailingList] = []
    for index, table in enumerate(email.get("lists", list, [])):
        where = f"lists[{index}]"
        if not isinstance(table, dict):
            raise email.fail(where, "expected an [[email.lists]] table")
        entry = Reader(email.source, table, email.key(where))
        name = entry.get("name", str, required=True).strip()
        if not EMAIL_LIST_NAME.fullmatch(name):
            raise entry.fail("name", f"{name!r} must be one word of letters, digits, - or _ (it is typed after "
                                     "/popup invite email:)")
        if name.lower() in {item.name.lower() for item in lists}:
            raise entry.fail("name", f"{name!r} is used by two lists")
        lists.append(MailingList(name=name, address=address(entry, "address", "", required=True)))
    settings = EmailSettings(
        enabled=enabled,
        address=address(email, "address", defaults.address, required=enabled),
        smtp_host=host("smtp_host", defaults.smtp_host),
        smtp_port=port("smtp_port", defaults.smtp_port),
        smtp_tls=tls("smtp_tls", defaults.smtp_tls),
        imap_host=host("imap_host", defaults.imap_host),
        imap_port=port("imap_port", defaults.imap_port),
        imap_tls=tls("imap_tls", defaults.imap_tls),
        imap_folder=folder,
        lists=tuple(lists),
    )
    if enabled and not lists:
        raise email.fail("lists", "[email] is enabled but no [[email.lists]] is configured")
    if not enabled or env is None:
        return settings
    smtp_user = env.get("POPUP_SMTP_USER", "").strip()
    smtp_password = env.get("POPUP_SMTP_PASSWORD", "")
    if bool(smtp_user) != bool(smtp_password):
        missing = "POPUP_SMTP_PASSWORD" if smtp_user else "POPUP_SMTP_USER"
        raise ConfigError(f"{email.source}: [email]: POPUP_SMTP_USER and POPUP_SMTP_PASSWORD go together; {missing} "
                          "is not set (set neither for a server that takes mail without logging in)")
    return dataclasses.replace(
        settings,
        smtp_user=smtp_user,
        smtp_password=smtp_password,
        imap_user=require_secret(env, "POPUP_IMAP_USER", email),
        imap_password=require_secret(env, "POPUP_IMAP_PASSWORD", email),
    )
