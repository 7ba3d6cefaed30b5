"""The engine's neutral messages as the pages keep them (JSON) and show them."""

from __future__ import annotations

import json
from typing import Any

from sessions.model import Message, Quote, Section


def message_to_json(content: Message) -> str:
    """Text parts only: attachments (the recap's chart and files) are not kept for the page."""
    return json.dumps(
        {
            "title": content.title,
            "body": content.body,
            "sections": [
                {
                    "heading": s.heading,
                    "lines": list(s.lines),
                    "quotes": [{"text": q.text, "author": q.author, "note": q.note} for q in s.quotes],
                }
                for s in content.sections
            ],
            "attachments": [a.filename for a in content.attachments],
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def message_from_json(text: str) -> Message:
    data: dict[str, Any] = json.loads(text)
    return Message(
        title=str(data.get("title", "")),
        body=str(data.get("body", "")),
        sections=tuple(
            Section(
                heading=str(s.get("heading", "")),
                lines=tuple(str(line) for line in s.get("lines", ())),
                quotes=tuple(
                    Quote(text=str(q["text"]), author=q.get("author"), note=str(q.get("note", "")))
                    for q in s.get("quotes", ())
                ),
            )
            for s in data.get("sections", ())
        ),
    )
