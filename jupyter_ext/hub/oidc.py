"""LensOAuthenticator: oauthenticator's GenericOAuthenticator with lens's name rules.

GenericOAuthenticator lowercases the name claim, so two identity-provider
subjects differing only by case became one hub user, and non-ASCII look-alikes
became separate users. Here names are folded as local logins fold them
(``jupyter_ext.usernames.fold_username``), a claim not already in folded form is
refused (``claim_refusal``), and the hub name must be ASCII
(``OIDC_USERNAME_RE``, which admits UUID subjects and e-mail addresses).
"""

from __future__ import annotations

from oauthenticator.generic import GenericOAuthenticator
from tornado import web
from traitlets import Bool, default

from jupyter_ext.hub.names import FoldedUsernames
from jupyter_ext.usernames import OIDC_USERNAME_RE, claim_refusal


class LensOAuthenticator(FoldedUsernames, GenericOAuthenticator):
    fold_case = Bool(
        False,
        config=True,
        help="Accept a name claim that differs from its hub name only by case (Ada@Example.org "
        "logs in as ada@example.org). Set it only when the identity provider treats that claim "
        "case-insensitively (e-mail addresses, Keycloak user names); OIDC 'sub' values are "
        "case-sensitive, so by default such a claim is refused rather than merged with another.",
    )

    @default("username_pattern")
    def _default_username_pattern(self):
        return OIDC_USERNAME_RE.pattern

    def user_info_to_username(self, user_info):
        claim = super().user_info_to_username(user_info)
        refusal = claim_refusal(str(claim), self.username_regex or OIDC_USERNAME_RE, self.fold_case)
        if refusal:
            self.log.warning("OIDC login refused: %s", refusal)
            error = web.HTTPError(403, refusal)
            error.jupyterhub_message = refusal  # shown on the hub's error page
            raise error
        return claim
