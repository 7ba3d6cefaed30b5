"""What a member wrote in a reply mail, without what their mail program or the list added.

Cut at the first line where quoted mail, a signature or a list footer begins (Gmail's "On … wrote:",
Outlook's "From:/Sent:" block and "-----Original Message-----", Apple Mail's "On …, at …, … wrote:",
"-- ", "Sent from my iPhone", Mailman's and Google Groups' footers); lines quoted with ">" go
wherever they are (inline answers keep the answers). HTML-only mails are made text first, without
their quoted parts (``blockquote``, Gmail's ``gmail_quote``, Outlook's reply header and after).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# A line where what follows is not the member's own words.
_CUT_LINE = re.compile(
    r"""^(?:
        --\s?                                                  # the signature delimiter "-- "
      | _{8,}\s*                                               # Outlook's rule, Mailman's footer rule
      | -{2,}\s*(?:Original\ Message|Ursprüngliche\ Nachricht|Message\ d'origine|Forwarded\ message)\s*-{2,}.*
      | (?:Sent\ from\ my\ \w+|Sent\ from\ Mail\ for\ Windows|Get\ Outlook\ for\ \w+).*
      | You\ received\ this\ message\ because\ you\ are\ subscribed\ to.*
      | To\ unsubscribe\ from\ this\ group.*
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
# "On Mon, 1 Jan 2024 at 10:00, Ann <ann@example.org> wrote:" (Gmail, Apple Mail, Thunderbird), in a
# few languages; mail programs wrap it, so it is looked for over two lines.
_ATTRIBUTION = re.compile(
    r"^(?:On\s.{1,300}\swrote|Le\s.{1,300}\sa\s+écrit|Am\s.{1,300}\sschrieb.{0,200}|El\s.{1,300}\sescribió"
    r"|Op\s.{1,300}\sschreef.{0,200})\s?:\s*$",
    re.IGNORECASE,
)
# Outlook's header block of the mail answered: "From: …" with "Sent:"/"Date:" within the next lines.
_HEADER_FROM = re.compile(r"^\*?(?:From|Von|De)\s?:\*?\s", re.IGNORECASE)
_HEADER_NEXT = re.compile(r"^\*?(?:Sent|Date|Gesendet|Envoyé|To|Subject)\s?:\*?\s", re.IGNORECASE)
_QUOTED = re.compile(r"^\s*>")
_MAX_CHARS = 10_000  # a reply is a few paragraphs; a whole book pasted in is cut here


def strip_reply(text: str) -> str:
    """The member's own words in a plain-text reply."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        if _begins_other_text(lines, index):
            break
        if _QUOTED.match(line):
            continue
        kept.append(line.rstrip())
    return _tidy("\n".join(kept))[:_MAX_CHARS]


def _begins_other_text(lines: list[str], index: int) -> bool:
    line = lines[index].strip()
    if not line:
        return False
    if _CUT_LINE.match(line):
        return True
    following = lines[index + 1].strip() if index + 1 < len(lines) else ""
    if _ATTRIBUTION.match(line) or (following and _ATTRIBUTION.match(f"{line} {following}")):
        return True
    if _HEADER_FROM.match(line):
        return any(_HEADER_NEXT.match(later.strip()) for later in lines[index + 1 : index + 5])
    return False


def _tidy(text: str) -> str:
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def html_to_text(html: str) -> str:
    """The text of an HTML mail, without its quoted parts."""
    parser = _TextOfHtml()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):  # html.parser gives up on a few broken inputs
        pass
    return parser.text()


_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"})
_BLOCK = frozenset({"p", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "pre", "hr"})
_HIDDEN = frozenset({"head", "style", "script", "title", "blockquote"})
# Outlook marks where the answered mail begins; everything from there on is quoted.
_QUOTE_STARTS = frozenset({"appendonsend", "divrplyfwdmsg", "mail-editor-reference-message-container"})
_QUOTE_CLASSES = frozenset({"gmail_quote", "gmail_extra", "moz-cite-prefix", "yahoo_quoted"})


class _TextOfHtml(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._skipping = 0  # depth inside an element whose content is not the member's
        self._ended = False  # past the start of the quoted mail

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._ended:
            return
        if self._skipping:
            if tag not in _VOID:
                self._skipping += 1
            return
        values = dict(attrs)
        if (values.get("id") or "").lower() in _QUOTE_STARTS:
            self._ended = True
            return
        classes = set((values.get("class") or "").lower().split())
        if tag in _HIDDEN or classes & _QUOTE_CLASSES:
            if tag not in _VOID:
                self._skipping = 1
            return
        if tag == "br":
            self._parts.append("\n")
        elif tag in _BLOCK:
            self._break(2 if tag == "p" else 1)

    def handle_endtag(self, tag: str) -> None:
        if self._ended:
            return
        if self._skipping:
            self._skipping -= 1
            return
        if tag in _BLOCK:
            self._break(2 if tag == "p" else 1)

    def _break(self, lines: int) -> None:
        """Start a new line (``lines`` 2: a new paragraph) unless the text is at one already."""
        trailing = 0
        for part in reversed(self._parts):
            stripped = part.rstrip("\n")
            trailing += len(part) - len(stripped)
            if stripped:
                break
        if self._parts:
            self._parts.append("\n" * max(0, lines - trailing))

    def handle_data(self, data: str) -> None:
        if not self._skipping and not self._ended:
            self._parts.append(data)

    def text(self) -> str:
        joined = "".join(self._parts).replace("\xa0", " ")
        lines = [" ".join(line.split()) for line in joined.split("\n")]
        return _tidy("\n".join(lines))
