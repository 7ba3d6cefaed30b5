"""The writer model over HTTP: an OpenAI-compatible chat completions endpoint (a local llama.cpp
server, Ollama, or a hosted service), implementing :class:`sessions.recap.narrative.ProseModel`.

One request per story, each on a session of its own (a recap is rare; nothing to keep open). The key
(``POPUP_LLM_API_KEY``) is sent as a bearer token and appears in no message and no log line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import aiohttp

from sessions.recap.narrative import ProseModelError

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class StorySettings:
    """``[story]`` of the configuration."""

    llm_base_url: str = ""  # e.g. http://127.0.0.1:8080/v1; empty = the offline draft only
    llm_model: str = ""
    api_key: str = field(default="", repr=False)  # from POPUP_LLM_API_KEY


class OpenAIChatModel:
    """``POST {base_url}/chat/completions`` with a system and a user message."""

    def __init__(self, *, base_url: str, model: str, api_key: str = "", timeout: float = 180.0) -> None:
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._model = model
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    @property
    def name(self) -> str:
        return self._model

    async def complete(self, system: str, user: str) -> str:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        body = {
            "model": self._model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "temperature": 0.3,
        }
        try:
            async with (
                aiohttp.ClientSession(timeout=self._timeout) as session,
                session.post(self._url, json=body, headers=headers) as response,
            ):
                if response.status != 200:
                    raise ProseModelError(f"the endpoint answered HTTP {response.status}")
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ProseModelError(f"the endpoint could not be used ({type(exc).__name__})") from None
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise ProseModelError("the answer has no choices[0].message.content") from None
        if not isinstance(content, str):
            raise ProseModelError("the answer's content is not text")
        return content


def prose_model(settings: StorySettings) -> OpenAIChatModel | None:
    """The configured writer model, or None (the offline draft only)."""
    if not settings.llm_base_url:
        return None
    return OpenAIChatModel(base_url=settings.llm_base_url, model=settings.llm_model, api_key=settings.api_key)
