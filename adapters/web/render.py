"""Templates (Jinja2, autoescaped everywhere) and the article's Markdown as HTML.

Markdown goes through markdown-it in its ``js-default`` preset: raw HTML in the source is shown as
text, not passed through, and links with a ``javascript:``-like scheme are not made links. So an
organiser's article, or a member's words quoted in it, can never put markup of their own on a page.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markdown_it.utils import OptionsDict

_MARKDOWN = MarkdownIt("js-default", {"html": False, "linkify": False, "typographer": False})
_ALIGN = {"text-align:left": "align-left", "text-align:right": "align-right", "text-align:center": "align-center"}


def _cell_open(self: Any, tokens: Sequence[Token], index: int, options: OptionsDict, env: Any) -> str:
    # Table alignment as a class, not a style attribute: the pages' policy allows no inline style.
    token = tokens[index]
    style = token.attrGet("style")
    if style is not None:
        del token.attrs["style"]
        if style in _ALIGN:
            token.attrSet("class", _ALIGN[style])
    return str(self.renderToken(tokens, index, options, env))


_MARKDOWN.add_render_rule("th_open", _cell_open)
_MARKDOWN.add_render_rule("td_open", _cell_open)

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("adapters.web", "templates"),
    autoescape=True,  # HTML and the Atom feed alike: HTML's escapes are XML's too
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def markdown_html(source: str) -> str:
    return str(_MARKDOWN.render(source))


def local(moment: datetime | None, zone: str = "UTC", form: str = "%H:%M") -> str:
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo(zone)).strftime(form)


ENV.filters["local"] = local


def render(name: str, **values: Any) -> str:
    return ENV.get_template(name).render(**values)


def render_macro(name: str, macro: str, *args: Any, **kwargs: Any) -> str:
    """One macro of a template, e.g. a reply as a live page inserts it."""
    module = ENV.get_template(name).module  # made once per template and cached by Jinja
    return str(getattr(module, macro)(*args, **kwargs))  # a Markup
