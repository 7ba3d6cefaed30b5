"""Themes: yake keyphrases, deterministic, linked to the replies that carry them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sessions.recap.ranking import RankedReply
from sessions.recap.story import gather_story
from sessions.recap.themes import Corpus, carriers, keyphrases, sample_texts
from storage.sqlite import SqliteStore
from tests.recap.conftest import T0, sample_day

TEXTS = [
    "Code review is where we learn the most about our codebase.",
    "A kind code review teaches more than a course.",
    "Pairing sessions and code review build a learning culture.",
    "Psychological safety makes a learning culture possible.",
    "Managers protect time to learn; learning culture needs time.",
    "Mentoring juniors taught me to explain code review comments.",
]


def _reply(i: int, text: str) -> RankedReply:
    return RankedReply(
        id=i, prompt_id=1, reactions=0, substance=0, created_at=T0, edited=False, author_name="x", text=text
    )


def test_keyphrases_are_deterministic_and_meaningful() -> None:
    first = keyphrases(TEXTS, 6)
    assert first == keyphrases(TEXTS, 6) == keyphrases(list(TEXTS), 6)
    phrases = [p for p, _ in first]
    assert "code review" in phrases
    assert "learning culture" in phrases
    assert all(p == p.casefold() for p in phrases)
    assert [s for _, s in first] == sorted(s for _, s in first)


def test_keyphrases_are_the_same_in_another_process() -> None:
    # String hashing is salted per process; the themes must not depend on it.
    script = (
        "import json, sys; from sessions.recap.themes import keyphrases; "
        "print(json.dumps(keyphrases(json.loads(sys.argv[1]), 8)))"
    )
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", script, json.dumps(TEXTS)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1
    assert json.loads(outputs.pop()) == [list(kv) for kv in keyphrases(TEXTS, 8)]


def test_carriers_match_whole_words_case_insensitively() -> None:
    texts = ("Code Review rocks", "codereview", "code, review!", "recode review")
    corpus = Corpus.of([_reply(i, t) for i, t in enumerate(texts, start=1)], {"code", "review"})
    assert carriers("code review", corpus) == [1, 3]
    assert carriers("review", corpus) == [1, 3, 4]
    assert carriers("don't", Corpus.of([_reply(5, "I don't know"), _reply(6, "dont")], {"don't"})) == [5]
    assert carriers("know", Corpus.of([_reply(5, "I don't know")], ())) == [5]  # unindexed words still match


def test_sample_is_bounded_by_words_best_first() -> None:
    replies = [_reply(i, f"word{i} " * 10) for i in range(10)]
    texts = sample_texts(replies, 25)
    assert [len(t.split()) for t in texts] == [10, 10, 5]
    assert texts[0].startswith("word0")


async def test_story_themes_link_to_replies(store: SqliteStore) -> None:
    day = await sample_day(store)
    story = await gather_story(store, await day.fresh())
    again = await gather_story(store, await day.fresh())
    assert story.themes == again.themes
    assert [p.themes for p in story.prompts] == [p.themes for p in again.prompts]
    assert story.themes, "a day with shared words has themes"
    by_id = {r.id: r for p in story.prompts for r in p.shown}
    for theme in story.themes:
        assert theme.reply_ids
        for rid in theme.reply_ids:
            assert theme.phrase.split()[0] in by_id[rid].text.casefold()
    assert story.theme_sample.complete
