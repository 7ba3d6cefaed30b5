"""A small concept lexicon: the ideas a learning day's replies keep coming back to, in five languages.

Replies that share no word often share an idea: "nobody has time to review", "meetings eat the
slack we need" and "protect Friday afternoons" are all about time. Word overlap cannot see that;
this lexicon can, for the ideas it knows. Each concept has a short readable label (the theme's
name when the concept leads a theme) and stems in English, Dutch, German, French and Spanish,
written casefolded and without accents (tokens are folded the same way, see ``features.py``).

A stem matches a token that starts with it; a stem ending in ``=`` matches only the whole token
(short words such as "ask" would otherwise match "asked" fine but also words they only begin).
Our own list, written for this project (MIT). It knows the vocabulary of learning at work and
in communities; replies about anything else still group by the words they share.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True, slots=True, kw_only=True)
class Concept:
    key: str
    label: str
    stems: tuple[str, ...]


_CONCEPTS: tuple[tuple[str, str, str], ...] = (
    (
        "time",
        "Time to learn",
        """
        time= times= timebox unhurried hurry hurried rush busy busier deadline calendar schedul afternoon
        friday fridays slack= overload workload capacity bandwidth meeting focus= interrupt backlog
        sprint overtime spare breathing
        tijd druk drukte vergader agenda haast vrijdag middag
        zeit besprechung termin hektik freitag nachmittag stress
        temps reunion vendredi deborde surcharge
        tiempo reunion reuniones viernes tarde prisa agobi
        """,
    ),
    (
        "docs",
        "Written knowledge",
        """
        doc= docs= docum wiki readme handbook runbook notes= note= written write= writing writeup
        confluence notion manual= page= pages= playbook adr= adrs=
        opschrijv schrijf kennisbank handleiding
        aufschreib schreib wissensdatenbank anleitung
        ecrire ecrit redige consign
        escrib manual= apuntes
        """,
    ),
    (
        "safety",
        "Safe to ask",
        """
        afraid fear scared safe= safety psycholog stupid dumb judg blame embarrass shame ashamed
        nervous vulnerab brave courage ask= asks= asked= asking question questions= silly admit
        bang= veilig dom= vragen vraag= schaam
        angst sicher dumm frage fragen blamier
        peur securite bete juge honte oser
        miedo seguro segura pregunta preguntar verguenza tonto
        """,
    ),
    (
        "pairing",
        "Learning side by side",
        """
        pair= pairs= paired pairing mentor mentee buddy buddies shadow
        coach apprentic senior seniors= together
        samen koppel maatje
        zusammen tandem paar= paaren
        binome ensemble parrain
        pareja juntos juntas acompan padrino
        """,
    ),
    (
        "review",
        "Feedback and review",
        """
        review feedback critique retro= retros= retrospective comment= comments= pr= prs=
        blameless postmortem incident
        terugkoppel nabespreking
        ruckmeld besprechen
        retour= relecture
        revision comentario retroaliment
        """,
    ),
    (
        "sharing",
        "Sharing what we learn",
        """
        demo= demos= show= shows= showed showcase presentation present= talk= talks= lunch
        brownbag meetup share= shared= sharing teach teaching explain guild club til=
        spreads spread=
        delen= deel= presentat vertel uitleg
        teilen vortrag prasent erzahl
        partag presentation expliqu
        compartir charla presentac explic
        """,
    ),
    (
        "leaders",
        "Support from leaders",
        """
        manager managers= management leadership leader leaders= lead= boss budget reward recogni
        celebrat praise promotion permission priorit okr okrs= goal goals= shoutout
        appreciat sponsor
        leidinggev baas waardeer beloning
        chef fuhrung anerkenn lob= belohn
        direction reconnaiss valoris
        jefe jefes lider liderazgo reconoc premi
        """,
    ),
    (
        "newcomers",
        "Welcoming newcomers",
        """
        newcomer newbie onboard hire= hires= hired starter starters= junior juniors= intern interns=
        welcome
        nieuwkomer inwerk nieuwe= starter
        neuling einarbeit neue= neuen=
        nouveau nouveaux nouvelle integration
        nuevo nuevos nueva incorpora
        """,
    ),
    (
        "practice",
        "Room to experiment",
        """
        experiment fail failure failing mistake mistakes= sandbox hackathon prototype playground
        tinker explore
        fout= fouten= uitproberen
        fehler ausprobier
        erreur essayer echec
        error= errores= equivoc probar
        """,
    ),
    (
        "courses",
        "Courses and reading",
        """
        course courses= training book= books= conference udemy certific workshop tutorial video
        podcast reading= class= classes=
        cursus boek= boeken= opleiding
        kurs kurse= buch= bucher schulung
        cours= formation livre
        curso libro libros= formacion
        """,
    ),
)


@cache
def concepts() -> tuple[Concept, ...]:
    return tuple(Concept(key=key, label=label, stems=tuple(words.split())) for key, label, words in _CONCEPTS)


@dataclass(frozen=True, slots=True)
class ConceptIndex:
    """Stems by length, for a lookup per token that costs one dict probe per distinct stem length."""

    exact: dict[str, tuple[str, ...]]
    prefixes: dict[str, tuple[str, ...]]
    lengths: tuple[int, ...]

    def of(self, token: str) -> tuple[str, ...]:
        """The concept keys that ``token`` (casefolded, accent-folded) belongs to."""
        found = self.exact.get(token, ())
        for length in self.lengths:
            if length > len(token):
                break
            keys = self.prefixes.get(token[:length])
            if keys:
                found = (*found, *keys)
        return found


@cache
def concept_index() -> ConceptIndex:
    exact: dict[str, list[str]] = {}
    prefixes: dict[str, list[str]] = {}
    for concept in concepts():
        for stem in concept.stems:
            table, word = (exact, stem[:-1]) if stem.endswith("=") else (prefixes, stem)
            keys = table.setdefault(word, [])
            if concept.key not in keys:
                keys.append(concept.key)
    return ConceptIndex(
        exact={w: tuple(k) for w, k in exact.items()},
        prefixes={w: tuple(k) for w, k in prefixes.items()},
        lengths=tuple(sorted({len(w) for w in prefixes})),
    )


def label_of(key: str) -> str:
    return next(c.label for c in concepts() if c.key == key)
