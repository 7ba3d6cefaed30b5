"""Our English stopword list: what it must hold, what it must leave alone, and what it costs to load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sessions.recap import stopwords as module
from sessions.recap import themes
from sessions.recap.ranking import _WORD, substance
from sessions.recap.stopwords import STOPWORDS
from sessions.recap.themes import _FILLER, keyphrases

_FUNCTION_WORDS = (
    # articles, determiners, quantifiers
    "a an the this that these those each every either neither no all both some any much many more most "
    "few several such other another own same "
    # pronouns, every case
    "i me my mine myself we us our ours ourselves you your yours yourself he him his himself she her hers "
    "herself it its itself they them their theirs themselves one someone everyone anything nothing "
    # question words
    "who whom whose which what when where why how whether "
    # auxiliaries, modals and their negations
    "am is are was were be been being have has had do does did will would shall should can could may might "
    "must cannot isn't aren't wasn't don't doesn't didn't won't wouldn't can't couldn't shouldn't "
    "i'm you're we've they'll it's that's let's "
    # prepositions and conjunctions
    "about above across after against along among around as at before behind below between beyond by "
    "during except for from in inside into like near of off on onto out over per since through to toward "
    "under until up upon via with within without and or but nor so yet if unless because although though "
    "while whereas than "
    # adverbs that qualify a topic without being one
    "not very really just also still even only too quite rather almost already always never often "
    "sometimes again here there now then today maybe actually honestly "
    # chat
    "yeah yes ok okay lol thanks please tbh imo btw"
).split()

# What replies to "what helped you learn at work?" are about: never stopwords.
_TOPIC_WORDS = (
    "review mentor mentoring docs documentation pairing pair feedback learning learn culture code team "
    "onboarding questions question asking help people time course talks demo wiki safety juniors seniors "
    "habit book conference workshop meetings friday new"
).split()


def test_common_function_words_are_stopwords() -> None:
    assert [w for w in _FUNCTION_WORDS if w not in STOPWORDS] == []


def test_topic_words_are_not_stopwords() -> None:
    assert [w for w in _TOPIC_WORDS if w in STOPWORDS] == []


def test_the_list_is_casefolded_words_sorted_once_each() -> None:
    words = module._WORDS.split()
    assert words == sorted(set(words))  # sorted and without repeats, for review
    assert all(w == w.casefold() and w.strip("'’") == w for w in STOPWORDS)
    # A few hundred words: a function-word list, not a dictionary of everything common.
    assert 350 <= len(words) - sum("'" in w for w in words) <= 500


def test_contractions_have_both_apostrophes() -> None:
    straight = {w for w in STOPWORDS if "'" in w}
    curly = {w for w in STOPWORDS if "’" in w}
    assert {"don't", "i'm", "you're", "we'll", "they've", "it's"} <= straight
    assert curly == {w.replace("'", "’") for w in straight}


def test_ranking_splits_no_stopword_into_substance() -> None:
    # ranking's words split at apostrophes: "didn't" is "didn" there, which must not count.
    assert {piece.casefold() for w in STOPWORDS for piece in _WORD.findall(w)} <= STOPWORDS
    assert substance("I didn’t think we’d ever get there, honestly!") == 0
    assert substance("Pairing with my mentor, honestly") == 2


def test_possessives_of_stopwords_make_no_theme() -> None:
    # themes.py reads "x's" as the noun "x" when "x's" is not a stopword: "let's" must not be "let".
    assert all(w[:-2] in STOPWORDS for w in STOPWORDS if w.endswith("'s"))
    texts = ["Let's pair", "let’s pair", "Everyone's pairing", "everyone’s pairing", "It's pairing"]
    assert {w for p, _ in keyphrases(texts, 6) for w in p.split()} == {"pair", "pairing"}


def test_themes_read_this_list_and_keep_their_filler_apart() -> None:
    assert themes._stop() >= STOPWORDS
    # themes.py's filler is the words that are substance but never a theme: no overlap, one role each.
    assert _FILLER.isdisjoint(STOPWORDS)


def test_loading_the_recap_imports_no_yake_nor_numpy() -> None:
    script = (
        "import sys, sessions.recap\n"
        "from sessions.recap.ranking import substance\n"
        "from sessions.recap.themes import keyphrases\n"
        "assert substance('pairing with a mentor') == 2 and keyphrases(['code review'] * 2, 6)\n"
        "print(sorted(m for m in ('yake', 'numpy') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.stdout.strip() == "[]"
