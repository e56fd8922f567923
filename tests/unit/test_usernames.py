"""jupyter_ext.usernames: one folded form of every hub name, and which OIDC claims pass."""

from __future__ import annotations

import pytest

from jupyter_ext.usernames import LOCAL_USERNAME_RE, OIDC_USERNAME_RE, claim_refusal, fold_username


@pytest.mark.parametrize(("raw", "folded"), [
    ("alice", "alice"), (" Alice ", "alice"), ("ALICE", "alice"),
    ("ａｌｉｃｅ", "alice"),  # fullwidth
    ("\u212aate", "kate"),  # KELVIN SIGN
    ("stra\u00dfe", "strasse"),  # casefold, not lower
    ("alıce", "alıce"),  # dotless i stays non-ASCII
])
def test_fold_username(raw, folded):
    assert fold_username(raw) == folded


def test_local_names_and_the_password_login_share_the_fold():
    from jupyter_ext.accounts import USERNAME_RE
    from jupyter_ext.hub.auth import LensPasswordAuthenticator

    assert USERNAME_RE is LOCAL_USERNAME_RE
    auth = LensPasswordAuthenticator()
    assert auth.normalize_username("ＣＡＲＬＡ") == "carla"
    assert not auth.validate_username(auth.normalize_username("carlа"))  # Cyrillic a


@pytest.mark.parametrize("claim", [
    "ada", "3f2a9c1e-7b4d-4e1a-9c55-0d2b8e6f1a77", "ada.lovelace@example.org", "http_ada-1",
])
def test_folded_ascii_claims_are_accepted(claim):
    assert claim_refusal(claim, OIDC_USERNAME_RE) is None


@pytest.mark.parametrize(("claim", "why"), [
    ("Ada", "normal form"),  # a different OIDC subject from "ada"
    ("ADA@example.org", "normal form"),
    ("ａｄａ", "normal form"),  # fullwidth
    ("\u212aate", "normal form"),  # Kelvin sign
    ("аda", "cannot be a hub user name"),  # Cyrillic a: folded, but not ASCII
    ("adı", "cannot be a hub user name"),  # dotless i
    ("ada\u0307", "normal form"),  # a + combining dot: NFKC composes it to U+0227
    ("", "cannot be a hub user name"),
    ("a" * 129, "cannot be a hub user name"),
    ("-ada", "cannot be a hub user name"),
])
def test_claims_differing_by_case_or_look_alikes_are_refused(claim, why):
    assert why in claim_refusal(claim, OIDC_USERNAME_RE)


def test_fold_case_admits_case_only_and_nothing_else():
    assert claim_refusal("Ada.Lovelace@Example.org", OIDC_USERNAME_RE, fold_case=True) is None
    assert "normal form" in claim_refusal("ＡＤＡ", OIDC_USERNAME_RE, fold_case=True)
    assert "normal form" in claim_refusal("\u212aate", OIDC_USERNAME_RE, fold_case=True)
    assert "normal form" in claim_refusal("STRASSE\u00df", OIDC_USERNAME_RE, fold_case=True)
    assert "cannot be" in claim_refusal("Аda", OIDC_USERNAME_RE, fold_case=True)  # Cyrillic A


def test_the_oidc_authenticator_refuses_through_its_claim_hook():
    from tornado import web

    from jupyter_ext.hub.oidc import LensOAuthenticator

    auth = LensOAuthenticator(username_claim="sub")
    assert auth.user_info_to_username({"sub": "ada"}) == "ada"
    assert auth.normalize_username("ＡＤＡ") == "ada"
    for claim in ("Ada", "аda"):
        with pytest.raises(web.HTTPError) as err:
            auth.user_info_to_username({"sub": claim})
        assert err.value.status_code == 403 and repr(claim) in err.value.jupyterhub_message
    assert LensOAuthenticator(username_claim="sub", fold_case=True).user_info_to_username({"sub": "Ada"}) == "Ada"
