"""Hub user names: one normal form for every way a name comes in.

A name is folded (NFKC, then casefold, surrounding spaces dropped) and must then
be ASCII and match a pattern, so no two hub names differ only by case or by a
Unicode look-alike: fullwidth ``ａｌｉｃｅ`` and ``ALICE`` fold to ``alice``;
Cyrillic ``а`` or dotless ``ı`` survive folding as non-ASCII and are refused.
The local password logins (``hub/auth.py``) and OIDC logins (``hub/oidc.py``)
both use ``fold_username``; an identity provider's claim is refused outright
when it is not already folded (``claim_refusal``).
"""

from __future__ import annotations

import re
import unicodedata

# Local accounts: they become unix accounts ("jupyter-NAME", 32 characters at most).
LOCAL_USERNAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,23}$")
# Identity-provider names: also UUID subjects and e-mail addresses, still ASCII and folded.
OIDC_USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,127}$")


def fold_username(name: str) -> str:
    """The one normal form of a hub name: NFKC, casefold, no surrounding spaces."""
    return unicodedata.normalize("NFKC", name).casefold().strip()


def claim_refusal(claim: str, pattern: re.Pattern, fold_case: bool = False) -> str | None:
    """Why an identity provider's name claim cannot be a hub name, or None if it can.

    OIDC subjects are case-sensitive: ``Ada`` and ``ada`` can be two people, and
    folding both to ``ada`` would hand one the other's hub account. So a claim
    must already be in folded form, unless the operator says the provider's
    claim is case-insensitive (``fold_case``; e-mail addresses at most IdPs), in
    which case only case may differ. Compatibility forms (fullwidth letters,
    ligatures, the Kelvin sign) and non-ASCII look-alikes are always refused.
    """
    folded = fold_username(claim)
    if claim != folded:
        differs_only_by_case = unicodedata.is_normalized("NFKC", claim) and claim.strip().lower() == folded
        if not (fold_case and differs_only_by_case):
            return (f"Your identity provider's user name {claim!r} is not in normal form ({folded!r}): "
                    "names differing only by case or by look-alike characters could belong to "
                    "different people, so this hub refuses it. Ask an admin.")
    if not pattern.match(folded):
        return (f"Your identity provider's user name {claim!r} cannot be a hub user name "
                "(ASCII lowercase letters, digits, '.', '_', '@' and '-'). Ask an admin.")
    return None
