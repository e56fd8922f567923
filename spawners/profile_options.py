"""kubespawner's per-profile choices (``profile_options``) in the lens catalog.

Same shape and meaning as kubespawner 7.1.0's ``profile_list[*].profile_options``
(https://jupyterhub-kubespawner.readthedocs.io/en/latest/spawner.html,
``profile_list``)::

    profile_options:
      image:                              # option name (user_options key)
        display_name: Image
        choices:
          pangeo: {display_name: Pangeo, default: true, kubespawner_override: {image: "pangeo/pangeo-notebook:2026.1"}}
        unlisted_choice:
          enabled: true
          display_name: Other image
          validation_regex: "^pangeo/.+$"
          validation_message: Must be a pangeo image
          kubespawner_override: {image: "{value}"}

A spawn names the choice as ``user_options[NAME]`` or a free value as
``user_options["NAME--unlisted-choice"]`` (the form fields are
``profile-option-SLUG--NAME[--unlisted-choice]``, as upstream). Upstream's
rules hold: no value means the default choice; a free value must be enabled
and match ``validation_regex`` (``re.match``, i.e. anchored at the start);
an option with only ``unlisted_choice`` needs a value. lens refuses what
upstream would silently ignore or fail on with a 500: an unknown choice, a
non-string value, a value with control characters; those are 400s.

Pure data and functions: ``parse_profile_options`` (catalog validation) and
``resolve_options`` (a spawn's choices -> kubespawner_override).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

OPTION_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$")
UNLISTED_SUFFIX = "--unlisted-choice"
UNLISTED_CHOICE = "unlisted-choice"  # the form's "Other..." entry, as kubespawner's form.html
MAX_UNLISTED_LENGTH = 512
OPTION_KEYS = {"display_name", "choices", "unlisted_choice"}
CHOICE_KEYS = {"display_name", "default", "kubespawner_override"}
UNLISTED_KEYS = {
    "enabled", "display_name", "display_name_in_choices", "validation_regex",
    "validation_message", "kubespawner_override",
}


@dataclass(frozen=True)
class Choice:
    slug: str
    display_name: str
    default: bool = False
    kubespawner_override: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UnlistedChoice:
    enabled: bool = False
    display_name: str = ""
    display_name_in_choices: str = "Other..."
    validation_regex: str | None = None
    validation_message: str = ""
    kubespawner_override: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProfileOption:
    name: str
    display_name: str
    choices: tuple[Choice, ...] = ()
    unlisted_choice: UnlistedChoice = UnlistedChoice()

    @property
    def default_choice(self) -> Choice | None:
        """The choice marked default, else the first (upstream's initialisation)."""
        return next((c for c in self.choices if c.default), self.choices[0] if self.choices else None)

    def get(self, slug: str) -> Choice | None:
        return next((c for c in self.choices if c.slug == slug), None)


class OptionsError(ValueError):
    """A catalog problem in profile_options: (field path, message)."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}")
        self.where, self.message = where, message


def _mapping(raw, where: str, allowed: set[str]) -> dict:
    if not isinstance(raw, dict):
        raise OptionsError(where, "must be a mapping")
    unknown = set(raw) - allowed
    if unknown:
        raise OptionsError(f"{where}.{sorted(unknown)[0]}", f"unknown key; allowed: {', '.join(sorted(allowed))}")
    return raw


def _override(raw, where: str) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
        raise OptionsError(where, "must be a mapping of kubespawner trait names")
    return dict(raw)


def _text(raw, where: str, default: str) -> str:
    if raw is None:
        return default
    if not isinstance(raw, str):
        raise OptionsError(where, "must be a string")
    return raw


def parse_profile_options(raw: Any) -> tuple[ProfileOption, ...]:
    """Validate a profile's ``profile_options`` (raises OptionsError naming the key)."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise OptionsError("profile_options", "must be a mapping of option name to option")
    options = []
    for name, spec in raw.items():
        where = f"profile_options.{name}"
        if not isinstance(name, str) or not OPTION_NAME_RE.match(name) or name.endswith(UNLISTED_SUFFIX):
            raise OptionsError(where, f"option names must match {OPTION_NAME_RE.pattern} (not ending in {UNLISTED_SUFFIX})")
        if name == "profile":
            raise OptionsError(where, "'profile' is the profile's own user option")
        spec = _mapping(spec, where, OPTION_KEYS)
        choices_raw = spec.get("choices") or {}
        if not isinstance(choices_raw, dict):
            raise OptionsError(f"{where}.choices", "must be a mapping of choice slug to choice")
        choices = []
        for slug, c in choices_raw.items():
            cwhere = f"{where}.choices.{slug}"
            if not isinstance(slug, str) or not slug:
                raise OptionsError(cwhere, "choice slugs must be non-empty strings")
            c = _mapping(c, cwhere, CHOICE_KEYS)
            choices.append(
                Choice(
                    slug=slug,
                    display_name=_text(c.get("display_name"), f"{cwhere}.display_name", slug),
                    default=bool(c.get("default", False)),
                    kubespawner_override=_override(c.get("kubespawner_override"), f"{cwhere}.kubespawner_override"),
                )
            )
        if sum(c.default for c in choices) > 1:
            raise OptionsError(f"{where}.choices", "only one choice may be the default")
        u = _mapping(spec.get("unlisted_choice") or {}, f"{where}.unlisted_choice", UNLISTED_KEYS)
        uwhere = f"{where}.unlisted_choice"
        regex = u.get("validation_regex")
        if regex is not None:
            if not isinstance(regex, str):
                raise OptionsError(f"{uwhere}.validation_regex", "must be a string")
            try:
                re.compile(regex)
            except re.error as exc:
                raise OptionsError(f"{uwhere}.validation_regex", f"invalid regular expression: {exc}") from None
        unlisted = UnlistedChoice(
            enabled=bool(u.get("enabled", False)),
            display_name=_text(u.get("display_name"), f"{uwhere}.display_name", ""),
            display_name_in_choices=_text(u.get("display_name_in_choices"), f"{uwhere}.display_name_in_choices", "Other..."),
            validation_regex=regex,
            validation_message=_text(u.get("validation_message"), f"{uwhere}.validation_message", ""),
            kubespawner_override=_override(u.get("kubespawner_override"), f"{uwhere}.kubespawner_override"),
        )
        if not choices and not unlisted.enabled:
            raise OptionsError(where, "needs choices and/or an enabled unlisted_choice")
        options.append(
            ProfileOption(
                name=name,
                display_name=_text(spec.get("display_name"), f"{where}.display_name", name),
                choices=tuple(choices),
                unlisted_choice=unlisted,
            )
        )
    return tuple(options)


class _KeepUnknownFields(dict):
    """``format_map`` mapping that leaves ``{other}`` fields as written."""

    def __missing__(self, key):
        return "{" + key + "}"


def format_value(template: Any, value: str) -> Any:
    """kubespawner's ``recursive_format``: ``{value}`` in strings, keys and nested values
    (lists, sets, dicts). Other fields stay as written (``${JUPYTER_USER}`` passes
    through) and ``{{``/``}}`` are format escapes, as upstream."""
    if isinstance(template, str):
        return template.format_map(_KeepUnknownFields(value=value))
    if isinstance(template, list):
        return [format_value(v, value) for v in template]
    if isinstance(template, set):
        return {format_value(v, value) for v in template}
    if isinstance(template, dict):
        return {format_value(k, value): format_value(v, value) for k, v in template.items()}
    return template


class ChoiceError(ValueError):
    """A spawn's option value that the profile does not accept (a 400)."""


def resolve_options(options: tuple[ProfileOption, ...], user_options: dict[str, Any] | None) -> list[tuple[str, str, dict]]:
    """The chosen value of every option, as (name, choice-or-value, kubespawner_override).

    Raises ChoiceError with a user-facing message for a value upstream would
    refuse (or silently ignore).
    """
    user_options = user_options or {}
    result = []
    for option in options:
        choice = user_options.get(option.name)
        unlisted = user_options.get(option.name + UNLISTED_SUFFIX)
        for key, value in ((option.name, choice), (option.name + UNLISTED_SUFFIX, unlisted)):
            if value is not None and not isinstance(value, str):
                raise ChoiceError(f"Option {key!r} must be a string.")
        if unlisted:
            u = option.unlisted_choice
            if not u.enabled:
                raise ChoiceError(f"Option {option.display_name!r} does not accept a value of your own.")
            if len(unlisted) > MAX_UNLISTED_LENGTH or any(ord(ch) < 32 or ord(ch) == 127 for ch in unlisted):
                raise ChoiceError(f"Option {option.display_name!r}: the value is too long or has control characters.")
            if u.validation_regex and not re.match(u.validation_regex, unlisted):
                detail = u.validation_message or f"it must match {u.validation_regex}"
                raise ChoiceError(f"Option {option.display_name!r}: {unlisted!r} is not accepted: {detail}.")
            result.append((option.name, unlisted, format_value(u.kubespawner_override, unlisted)))
            continue
        if choice:
            picked = option.get(choice)
            if picked is None:
                known = ", ".join(c.slug for c in option.choices) or "none"
                raise ChoiceError(f"Option {option.display_name!r} has no choice {choice!r}; choices: {known}.")
        else:
            picked = option.default_choice
            if picked is None:
                raise ChoiceError(f"Option {option.display_name!r} needs a value.")
        result.append((option.name, picked.slug, dict(picked.kubespawner_override)))
    return result


def to_kubespawner(options: tuple[ProfileOption, ...]) -> dict[str, Any]:
    """The options in kubespawner's ``profile_options`` shape (for ``profile_list``)."""
    out = {}
    for o in options:
        u = o.unlisted_choice
        out[o.name] = {
            "display_name": o.display_name,
            "choices": {
                c.slug: {"display_name": c.display_name, "default": c is o.default_choice,
                         "kubespawner_override": dict(c.kubespawner_override)}
                for c in o.choices
            },
            "unlisted_choice": {
                k: v
                for k, v in {
                    "enabled": u.enabled,
                    "display_name": u.display_name,
                    "display_name_in_choices": u.display_name_in_choices,
                    "validation_regex": u.validation_regex,
                    "validation_message": u.validation_message,
                    "kubespawner_override": dict(u.kubespawner_override),
                }.items()
                if v is not None
            },
        }
    return out
