"""The spawn form: one card per profile with its $/h, disabled ones with the reason."""

from __future__ import annotations

from html import escape

from .pricing import format_rate
from .profile_options import UNLISTED_CHOICE, UNLISTED_SUFFIX, ProfileOption
from .profiles import Catalog


def render_options(slug: str, options: tuple[ProfileOption, ...], selected: dict | None = None) -> str:
    """One field per profile option, named as kubespawner's form names them
    (``profile-option-SLUG--NAME``, ``...--unlisted-choice``); the server
    validates again (``resolve_options``), the HTML ``pattern`` only helps."""
    selected = selected or {}
    parts = []
    for o in options:
        name = f"profile-option-{slug}--{o.name}"
        field_id = f"lens-opt-{slug}-{o.name}"
        parts.append(
            f'<div class="lens-option" data-option="{escape(o.name)}" style="margin:4px 0 0 24px">'
            f'<label for="{escape(field_id)}"><small>{escape(o.display_name)}</small></label> '
        )
        unlisted_value = selected.get(o.name + UNLISTED_SUFFIX) or ""
        if o.choices:
            current = selected.get(o.name) or (o.default_choice.slug if o.default_choice else "")
            parts.append(f'<select id="{escape(field_id)}" name="{escape(name)}">')
            for c in o.choices:
                sel = " selected" if c.slug == current and not unlisted_value else ""
                parts.append(f'<option value="{escape(c.slug)}"{sel}>{escape(c.display_name)}</option>')
            if o.unlisted_choice.enabled:
                sel = " selected" if unlisted_value else ""
                parts.append(
                    f'<option value="{UNLISTED_CHOICE}"{sel}>{escape(o.unlisted_choice.display_name_in_choices)}</option>'
                )
            parts.append("</select>")
        u = o.unlisted_choice
        if u.enabled:
            attrs = [f'name="{escape(name + UNLISTED_SUFFIX)}"', 'type="text"', f'value="{escape(unlisted_value)}"']
            if not o.choices:
                attrs.append(f'id="{escape(field_id)}"')
            if u.display_name:
                attrs.append(f'placeholder="{escape(u.display_name)}"')
            if u.validation_regex:
                # HTML patterns must match the whole value; upstream's regex is anchored at the start only
                attrs.append(f'pattern="{escape(u.validation_regex)}.*"')
            if u.validation_message:
                attrs.append(f'title="{escape(u.validation_message)}"')
            parts.append(f" <input {' '.join(attrs)}>")
        parts.append("</div>")
    return "".join(parts)


def render_form(
    catalog: Catalog,
    *,
    groups: set[str] | list[str],
    admin: bool,
    rates: dict[str, float | None],
    unavailable: dict[str, str],
    budget_note: str | None = None,
    selected: str | None = None,
    selected_options: dict | None = None,
) -> str:
    """HTML for JupyterHub's options form (field names: ``profile``, and
    kubespawner's ``profile-option-SLUG--NAME`` for a profile's options)."""
    visible = [p for p in catalog.profiles if p.allowed_for(groups, admin)]
    chosen = selected if selected in {p.slug for p in visible if p.slug not in unavailable} else None
    if chosen is None:
        chosen = next(
            (p.slug for p in visible if p.default and p.slug not in unavailable),
            next((p.slug for p in visible if p.slug not in unavailable), None),
        )
    parts = ['<div class="lens-profiles">']
    if budget_note:
        parts.append(f'<p class="lens-budget alert alert-info">{escape(budget_note)}</p>')
    for p in visible:
        reason = unavailable.get(p.slug)
        attrs = []
        if reason:
            attrs.append("disabled")
        elif p.slug == chosen:
            attrs.append("checked")
        rate = format_rate(rates.get(p.slug))
        hw = []
        if p.cpu.limit:
            hw.append(f"{p.cpu.limit:g} CPU")
        if p.memory.limit:
            hw.append(f"{p.memory.limit / 1e9:g} GB RAM")
        if p.gpu_count:
            hw.append(f"{p.gpu_count}× {p.gpu_type}")
        parts.append(
            f'<label class="lens-profile{" lens-unavailable" if reason else ""}" '
            f'data-profile="{escape(p.slug)}" style="display:block;border:1px solid #ccc;'
            f'border-radius:6px;padding:8px 12px;margin:6px 0;{"opacity:.55;" if reason else ""}">'
            f'<input type="radio" name="profile" value="{escape(p.slug)}" {" ".join(attrs)}> '
            f"<strong>{escape(p.display_name)}</strong> "
            f'<span class="lens-rate" style="float:right">{escape(rate)}</span><br>'
            f"<small>{escape(p.description)}"
            + (f" — {escape(', '.join(hw))}" if hw else "")
            + "</small>"
            + (
                f'<br><small class="lens-reason text-danger">Unavailable: {escape(reason)}</small>'
                if reason
                else ""
            )
            + "</label>"
            + (
                render_options(p.slug, p.profile_options, selected_options if p.slug == chosen else None)
                if p.profile_options and not reason
                else ""
            )
        )
    parts.append("</div>")
    return "\n".join(parts)
