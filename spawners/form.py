"""The spawn form: one card per profile with its $/h, disabled ones with the reason."""

from __future__ import annotations

from html import escape

from .pricing import format_rate
from .profiles import Catalog


def render_form(
    catalog: Catalog,
    *,
    groups: set[str] | list[str],
    admin: bool,
    rates: dict[str, float | None],
    unavailable: dict[str, str],
    budget_note: str | None = None,
    selected: str | None = None,
) -> str:
    """HTML for JupyterHub's options form (field name: ``profile``)."""
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
        )
    parts.append("</div>")
    return "\n".join(parts)
