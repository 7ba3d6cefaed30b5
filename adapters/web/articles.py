"""The published article: as a page of its own and in ``popup export`` once an organiser published it.

Before anything is published, exports give the generated article (sessions.recap); after, the
newest published version, in Markdown as the organiser wrote it, or as one self-contained HTML page.
"""

from __future__ import annotations

from adapters.web.render import markdown_html, render
from sessions.records import SessionRecord
from sessions.web import ArticleVersion, WebStore


def article_page(session: SessionRecord, version: ArticleVersion, *, standalone: bool, feed_url: str) -> str:
    """The article as HTML: linking the site's stylesheet, or with its styles inline (``standalone``)."""
    return render(
        "article.html.j2",
        session=session,
        version=version,
        body=markdown_html(version.markdown),
        standalone=standalone,
        inline_css=_css() if standalone else "",
        feed_url=feed_url,
    )


async def published_export(store: object, session: SessionRecord, fmt: str) -> str | None:
    """What ``popup export`` writes for ``md``/``html`` when the article is published; else None."""
    if fmt not in ("md", "html") or not isinstance(store, WebStore):
        return None
    version = await store.published_article(session.id)
    if version is None:
        return None
    if fmt == "md":
        return version.markdown if version.markdown.endswith("\n") else version.markdown + "\n"
    return article_page(session, version, standalone=True, feed_url="")


def _css() -> str:
    from importlib import resources

    return resources.files("adapters.web").joinpath("static", "popup.css").read_text(encoding="utf-8")
