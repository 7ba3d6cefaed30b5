"""Popup on the web: each session's participant page (a channel of its own, platform ``web``),
the organiser's dashboard and article editor, and the published articles with their Atom feed.

Rooms: :mod:`.settings`, :mod:`.adapter` (the port), :mod:`.server` (the aiohttp application and
its safety middleware), :mod:`.page`, :mod:`.dashboard` and :mod:`.public` (the routes),
:mod:`.auth` (signing, cookies, CSRF), :mod:`.limits`, :mod:`.live` (Server-Sent Events),
:mod:`.qr`, :mod:`.render` (templates and Markdown) and :mod:`.store` (what it keeps).
"""
