"""English stopwords: the words of a chat reply that do not say what it is about.

Our own list (the project is MIT), written for chat replies. ranking.py's "substance" and
themes.py's keyphrases share it, so the two judge what a reply is about the same way. It holds

- function words: articles and determiners, pronouns in every case, auxiliaries and modals with
  their negations, prepositions, conjunctions, question words;
- quantifiers, small number words, and the adverbs of degree, time, frequency and stance ("very",
  "still", "today", "often", "honestly") that qualify a topic without being one;
- the light verbs chat leans on ("get", "go", "make", "know", "think", "want", "need", "try"):
  "I think pairing helps" is about pairing;
- chat's interjections and discourse shorthand ("yeah", "ok", "lol", "thanks", "tbh", "imo").

Contractions are listed as themes.py sees them: whole and casefolded, with a straight apostrophe
(it folds ’ into ' first), and also with ’ for a reader that does not fold. ranking.py splits
words at any apostrophe, so what a negation leaves of three letters or more ("don", "isn", "won")
is listed as well (shorter pieces, "t" or "ll", never count there). So are the spellings chat drops
the apostrophe from ("dont", "im", "thats").

Words that mean something, however vague ("great", "stuff"), are not here: they are substance in a
reply, and themes.py keeps its own short list of those that never make a theme.
"""

from __future__ import annotations

# Sorted, a line or more per initial, so that a word is easy to find in review and a change is
# one line of a diff.
_WORDS = """
a able about above absolutely across actually after afterwards again against ago ah ain ain't all
almost along alongside alot already alright also although always am amid among amongst an and
another any anybody anyhow anymore anyone anything anyway anyways anywhere apart are aren aren't
arent around as aside at away
back basically be because been before behind being below beneath beside besides between beyond both
btw but by bye
came can can't cannot cant cause certainly come comes concerning could could've couldn couldn't
couldnt cuz
definitely despite did didn didn't didnt do does doesn doesn't doesnt doing don don't done dont down
during
each eg eight either else elsewhere enough especially etc even ever every everybody everyone
everything everywhere except
few fewer first five for four from further furthermore fwiw fyi
get gets getting go goes going gone gonna got gotta gotten
had hadn hadn't haha half has hasn hasn't hasnt have haven haven't havent having he he'd he'll he's
hehe hello hence her here here's heres hers herself hey hi him himself his hmm honestly how how's
however
i i'd i'll i'm i've idk ie if iirc im imho imo in indeed inside instead into is isn isn't isnt it
it'd it'll it's its itself ive
just
kinda knew know known knows
last later least less let let's lets like literally little lmao lol look looked looking looks lot
lots
made mainly make makes making many may maybe me meanwhile meh might might've mightn mightn't mine
more moreover most mostly much must must've mustn mustn't my myself
nah near nearly need needed needn needn't needs neither never next ngl nine no nobody none nope nor
not nothing now nowhere
of off often oh ok okay omg on once one ones oneself only onto or other others otherwise ought our
ours ourselves out outside over own
past per perhaps please plenty pls plus probably
quite
rather really regarding
said same saw say says second see seem seemed seems seen sees seriously seven several shall shan
shan't she she'd she'll she's should should've shouldn shouldn't shouldnt simply since six so some
somebody somehow someone something sometimes somewhat somewhere soon sorry sorta still such sure
take taken takes tbh ten than thank thanks that that'd that'll that's thats the their theirs them
themselves then there there'd there'll there're there's therefore theres these they they'd they'll
they're they've theyre think thinks third this tho those though thought three through throughout
thru thus thx till to today tomorrow tonight too took totally toward towards tried tries truly try
trying twice two
ugh uh um under underneath unless unlike until up upon ur us usually
versus very via vs
wanna want wanted wants was wasn wasn't wasnt we we'd we'll we're we've well went were weren weren't
werent what what'd what'll what're what's whatever whats when when's whenever where where's whereas
whereby wherever whether which whichever while whilst who who'd who'll who's who've whoever whole
whom whose why why's will with within without won won't wont would would've wouldn wouldn't wouldnt
wow
y'all yay yea yeah yep yes yesterday yet you you'd you'll you're you've your youre yours yourself
yourselves yup
zero
"""

STOPWORDS: frozenset[str] = frozenset(_WORDS.split()) | frozenset(
    w.replace("'", "’") for w in _WORDS.split() if "'" in w
)
