"""The e-mail benchmark runs end to end at a tiny size (figures live in ``make bench``, not here)."""

from __future__ import annotations

import pytest

from bench import __main__ as suite
from bench import email_ingest
from tests.email.servers import dovecot_binary

pytestmark = pytest.mark.slow


def test_email_ingest_at_tiny_size() -> None:
    dovecot_binary()  # skips (or fails under POPUP_REQUIRE_DOVECOT) without Dovecot
    result = email_ingest.run(mails=30, lists=3)
    assert result["ingest"]["stored"] == 30
    assert result["fan_out"]["lists"] == 3
    assert "email ingest:" in email_ingest.report(result)
    assert suite.summary({"email_ingest": result}).startswith("bench: email 30 waiting mails stored in ")
