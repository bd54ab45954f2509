"""Names made from text people typed: one folding to ASCII, one slug.

Playbook, group and action names become HubSpot property names, Jira labels,
file names and demo e-mail addresses; each must be plain ASCII. Folding is
Unicode NFKD (é -> e, ü -> u) plus the letters NFKD does not decompose (ł, ø,
æ, ß, ı); apostrophes vanish ("O'Brien" -> "OBrien"); anything else non-ASCII
is dropped.
"""

from __future__ import annotations

import re
import unicodedata

_TRANSLIT = str.maketrans(
    {"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ß": "ss", "ı": "i", "'": ""}
)


def ascii_fold(text: str) -> str:
    """`text` in ASCII letters, case kept: "Łukasz Müller" -> "Lukasz Muller"."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_TRANSLIT))
    return decomposed.encode("ascii", "ignore").decode("ascii")


def slug(text: str, sep: str = "_") -> str:
    """Lower-case ASCII letters and digits, runs of anything else as one `sep`, none at
    either end: "Süpport & care" -> "support_care"; "" when nothing is left."""
    return re.sub(r"[^a-z0-9]+", sep, ascii_fold(text).lower()).strip(sep)
