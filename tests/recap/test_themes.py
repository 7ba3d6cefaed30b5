"""Themes: keyphrases, deterministic, linked to the replies that carry them."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from sessions.recap.ranking import RankedReply
from sessions.recap.stopwords import STOPWORDS
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
# Chat as it comes: emoji, mentions, links, other scripts, and many phrases said equally often
# (ties, which must fall the same way in every process).
CHAT = [
    *TEXTS,
    "Pair programming with <@U123> every week 🙌",
    "pair programming! and code review :tada:",
    "Парное программирование, каждый день",
    "парное программирование помогло https://wiki.example.com/pairing.html",
    "हिन्दी सीखना मज़ेदार था",
    "हिन्दी सीखना और code review",
    "Le café du matin: on parle de l'équipe",
    "le café avec l'équipe, @marie",
]


def _reply(i: int, text: str) -> RankedReply:
    return RankedReply(
        id=i,
        prompt_id=1,
        reactions=0,
        substance=0,
        created_at=T0,
        edited=False,
        author_name="x",
        text=text,
        platform="console",
        channel_id="C1",
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
            [sys.executable, "-c", script, json.dumps(CHAT)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1
    assert json.loads(outputs.pop()) == [list(kv) for kv in keyphrases(CHAT, 8)]


def test_a_frequent_pair_beats_its_words() -> None:
    texts = [
        "Code review taught me the most.",
        "A kind code review beats a course.",
        "Code review with seniors, weekly.",
        "Reading code every morning.",
        "Learning from pairing.",
    ]
    phrases = [p for p, _ in keyphrases(texts, 6)]
    assert phrases[0] == "code review"
    # "review" is only ever said in the pair, which speaks for it; "code" is also said on its own
    # once, so it stays, below the pair.
    assert "review" not in phrases
    assert phrases.index("code") > 0


def test_a_word_said_mostly_on_its_own_stays_above_its_pair() -> None:
    texts = ["Our learning culture matters.", "A learning culture, finally."]
    texts += [f"Learning from {source}." for source in ("books", "talks", "peers", "mistakes", "juniors")]
    phrases = [p for p, _ in keyphrases(texts, 6)]
    assert phrases[:2] == ["learning", "learning culture"]
    assert "culture" not in phrases


def test_a_pair_said_once_is_not_a_phrase() -> None:
    texts = ["Kind mentors help.", "Mentors listen.", "Mentors ask questions.", "Questions matter."]
    phrases = [p for p, _ in keyphrases(texts, 6)]
    assert phrases[:2] == ["mentors", "questions"]
    assert not [p for p in phrases if " " in p]
    # With one or two replies, one reply is all a theme can have (see choose_themes).
    assert keyphrases(["Kind mentors help."], 6)[0][0] == "kind mentors"


def test_sentence_ends_and_punctuation_split_phrases() -> None:
    apart = [
        "We tried code. Review came later.",
        "Some code! Review it?",
        "code, review",
        "code 🙌 review",
        "code https://example.com/x review",
        "code\nreview",
        "code - review",
        "code; review",
    ]
    # Each twice, so that a pair would be said by two replies, were it one.
    assert not [p for p, _ in keyphrases(apart * 2, 6) if " " in p]
    together = ["code review", "Code-review!", "code  review", "CODE REVIEW"]
    assert keyphrases(together, 6)[0][0] == "code review"


def test_stopwords_and_filler_break_phrases() -> None:
    texts = ["Pairing with the seniors", "pairing with the seniors", "Honestly great mentors", "great mentors honestly"]
    phrases = [p for p, _ in keyphrases(texts, 6)]
    assert set(phrases) == {"pairing", "seniors", "mentors"}


def test_words_of_other_scripts_are_words() -> None:
    texts = [
        "Парное программирование помогает",
        "парное программирование!",
        "हिन्दी सीखना मज़ेदार",  # Devanagari's vowel signs are combining marks, not \w
        "हिन्दी सीखना",
        "Un café, merci",
        "Café au lait",
    ]
    phrases = [p for p, _ in keyphrases(texts, 6)]
    assert {"парное программирование", "हिन्दी सीखना", "café"} <= set(phrases)
    corpus = Corpus.of([_reply(i, t) for i, t in enumerate(texts, start=1)], {w for p in phrases for w in p.split()})
    assert carriers("हिन्दी सीखना", corpus) == [3, 4]
    assert carriers("парное программирование", corpus) == [1, 2]


def test_links_mentions_and_emoji_codes_are_not_words() -> None:
    texts = [
        "<@U123> showed me <https://wiki.example.com/x|wiki.example.com/x> :tada:",
        "ask @alice or bob@example.com :+1: <#C1|general>",
        "see https://example.com/review and www.example.org &amp; more",
        "the team's wiki, the team’s wiki",
    ]
    words = {w for p, _ in keyphrases(texts, 6) for w in p.split()}
    assert words.isdisjoint({"u123", "https", "example", "com", "alice", "bob", "tada", "general", "amp", "www", "org"})
    assert {"team", "wiki"} <= words  # a possessive is its noun
    assert "team wiki" not in {p for p, _ in keyphrases(texts, 6)}  # carriers could not find it in "team's wiki"


def test_the_order_of_replies_does_not_matter() -> None:
    # The replies are a bag: likes decide which ones the sample holds, not how they score.
    shuffled = list(CHAT)
    random.Random(7).shuffle(shuffled)
    assert keyphrases(shuffled, 6) == keyphrases(CHAT, 6)


_VOCABULARY = (
    "the and of with a it's don't team's Code code review Review mentor pairing culture learning café "
    "обучение हिन्दी 42 x ab"
).split()
_GLUE = (" ", "  ", ", ", ". ", "! ", "? ", "\n", " - ", "-", " 🙌 ", " https://x.io/a ", " <@U1> ", " :tada: ")
_CHATS = st.lists(
    st.lists(st.tuples(st.sampled_from(_VOCABULARY), st.sampled_from(_GLUE)), max_size=12).map(
        lambda pieces: "".join(word + glue for word, glue in pieces)
    ),
    max_size=10,
)


@settings(max_examples=200, deadline=None)
@given(_CHATS)
def test_keyphrases_are_whole_carried_phrases_in_any_order(texts: list[str]) -> None:
    found = keyphrases(texts, 4)
    stop = STOPWORDS
    assert len(found) <= 12
    assert found == sorted(found, key=lambda item: (item[1], item[0]))
    assert found == keyphrases(texts[::-1], 4)
    corpus = Corpus.of([_reply(i, t) for i, t in enumerate(texts, start=1)], {w for p, _ in found for w in p.split()})
    for phrase, _ in found:
        words = phrase.split()
        assert 1 <= len(words) <= 2
        assert words[0] not in stop
        assert words[-1] not in stop
        assert carriers(phrase, corpus), phrase  # every theme can link to a reply that says it



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
