"""WTForms' widgets for the flow's forms, writing the same HTML faster.

WTForms builds every attribute with `Markup('{k}="{v}"').format(...)`, which goes through
Python's `string.Formatter`: about 70 µs for an <input>, and as much again for every <option>
of a select, most of the time a page of the flow spends rendering its fields (the inline
validation of one field included). `html_params` here escapes the same way with an f-string.
"""

from __future__ import annotations

from markupsafe import Markup, escape
from wtforms import widgets
from wtforms.widgets.core import clean_key


def html_params(**kwargs) -> Markup:
    """`wtforms.widgets.html_params`, the same output: attributes sorted by name, `True` a
    bare attribute, `False` none, every name and value escaped (a value already Markup keeps
    its markup, its double quotes written `&quot;`)."""
    params = []
    for key, value in sorted(kwargs.items()):
        if value is True:
            params.append(str(escape(clean_key(key))))
        elif value is not False:
            text = str(escape(value)).replace('"', "&quot;")
            params.append(f'{escape(clean_key(key))}="{text}"')
    return Markup(" ".join(params))  # noqa: S704 (each name and value escaped above)


class TextInput(widgets.TextInput):
    html_params = staticmethod(html_params)


class EmailInput(widgets.EmailInput):
    html_params = staticmethod(html_params)


class HiddenInput(widgets.HiddenInput):
    html_params = staticmethod(html_params)


class Select(widgets.Select):
    """The options with `html_params` (the <select> tag itself keeps WTForms' own)."""

    @classmethod
    def render_option(cls, choice, **kwargs):
        value = choice.value
        if isinstance(value, bool):
            value = str(value)
        options = {"value": value, **(choice.render_kw or {}), **kwargs}
        if choice.selected:
            options["selected"] = True
        label = escape(choice.label or choice.value)
        return Markup(f"<option {html_params(**options)}>{label}</option>")  # noqa: S704 (escaped)
