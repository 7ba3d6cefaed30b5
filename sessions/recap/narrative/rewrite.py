"""An optional writer model: it may rewrite the offline draft's prose, and is trusted with nothing.

The model gets the draft (as JSON, :mod:`.draft`), the numbers it may use and the rules; it
answers with a draft of the same shape. That answer goes through the same grounding check as the
offline draft (:func:`.grounding.check`); an answer that is not a draft, fails the check, or does
not come in time is thrown away for the offline draft, with a log line that says why (never the
key, never the text of the replies).

The model is reached through :class:`ProseModel`, a port: ``sessions/`` does no network I/O, and
the composition root (``bot/``) hands in an implementation (an OpenAI-compatible HTTP client).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Protocol

from sessions.errors import PopupError
from sessions.recap.narrative.draft import Draft, DraftError
from sessions.recap.narrative.grounding import Facts, Ungrounded, check

_log = logging.getLogger(__name__)

TIMEOUT = 180.0  # seconds for the model's answer; a local model on a CPU is slow


class ProseModelError(PopupError):
    """The writer model could not be reached or gave no answer (the message says which)."""


class ProseModel(Protocol):
    """A chat model that answers a system prompt and a user message with text."""

    @property
    def name(self) -> str:
        """The model's name, for the log and the article's note."""
        ...

    async def complete(self, system: str, user: str) -> str:
        """The model's answer; :class:`ProseModelError` when there is none."""
        ...


SYSTEM = """You edit the article of a community's learning day. You get a draft as JSON:
{"sections": [{"heading": text, "paragraphs": [[text or {"quote": text, "by": name}, ...], ...]}]}.
Rewrite the prose (the text segments and the headings) so the article reads as one connected story:
where people agreed, where they differed, what stayed open. Rules, all of them checked by a program
that throws your answer away if one is broken:
- Quotes stay objects {"quote": ..., "by": ...}. Keep each quote's text and "by" exactly as given;
  you may drop quotes or move them, never change, merge or invent one. "by" is null when it is null.
- No quotation marks in text segments: every quotation is a quote object.
- Use no number (in digits or in words) other than those listed in "numbers".
- Keep every name listed in "names" somewhere in the article.
- Answer with the JSON object only."""


def request(draft: Draft, facts: Facts) -> str:
    """The user message: the draft and what the prose may use."""
    return json.dumps(
        {
            "numbers": sorted(facts.numbers),
            "names": sorted(facts.voices_due),
            "anonymous": facts.anonymous,
            "max_words": facts.max_words,
            "draft": draft.to_json(),
        },
        ensure_ascii=False,
    )


def parse(answer: str) -> Draft:
    """The draft in a model's answer, also when it is wrapped in a code fence or a sentence."""
    start, end = answer.find("{"), answer.rfind("}")
    if start < 0 or end <= start:
        raise DraftError("the answer holds no JSON object")
    try:
        data = json.loads(answer[start : end + 1])
    except json.JSONDecodeError as exc:
        raise DraftError(f"the answer is not JSON ({exc.msg})") from None
    if isinstance(data, dict) and "draft" in data and "sections" not in data:
        data = data["draft"]
    return Draft.from_json(data)


async def rewrite(draft: Draft, facts: Facts, model: ProseModel, *, seconds: float = TIMEOUT) -> Draft | None:
    """The model's grounded draft, or None (logged) when it is missing or refused."""
    try:
        async with asyncio.timeout(seconds):
            answer = await model.complete(SYSTEM, request(draft, facts))
        grounded = check(parse(answer), facts)
    except TimeoutError:
        _log.warning(
            "story: the writer model %s gave no answer in %.0f s; using the offline draft", model.name, seconds
        )
        return None
    except (ProseModelError, DraftError, Ungrounded) as exc:
        kind = "refused" if isinstance(exc, Ungrounded) else "unusable"
        _log.warning("story: the writer model %s's draft was %s (%s); using the offline draft", model.name, kind, exc)
        return None
    _log.info("story: the writer model %s's draft passed the grounding check", model.name)
    return grounded
