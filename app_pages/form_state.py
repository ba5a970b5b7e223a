"""The Train form's state: widgets that take their value from session state, presets, and the URL.

Every config field has one widget key (KEYS; rule hyperparameters `rp_<rule>_<name>`). A preset or
a link writes typed values into those keys before the widgets are drawn; the form writes its
non-default config back into the URL (`?rule=ssdp&epochs=5&rp.a_plus=0.001&run=...`), so a link
reproduces the exact config and the run on view.
"""
from __future__ import annotations

import dataclasses

import streamlit as st

from snncore.config import ConfigError, RunConfig
from snncore.rules import get_rule, rule_names

# config field -> widget key, where they differ (the dataset panel owns its ds_* widgets)
KEYS = {"data_dir": "ds_data_dir", "encoding": "ds_encoding", "augment": "ds_augment", "frames": "ds_frames",
        "frame_mode": "ds_frame_mode"}
VIEW_PARAMS = ("run", "lesson")  # query parameters that are not config fields
SHOWN = "_lesson_shown"         # session key: the widget keys a lesson shows (absent: all)
RP = "rp."                      # query-parameter prefix of rule hyperparameters


def key_of(field: str) -> str:
    return KEYS.get(field, field)


def rp_key(rule: str, name: str) -> str:
    return f"rp_{rule}_{name}"


def widget_value(v):
    """A config value in the form its widget holds (lists as comma text)."""
    if isinstance(v, list):
        return ",".join(map(str, v))
    return v


def load_into_widgets(values: dict) -> RunConfig:
    """Validate `values` (a preset or a link) and put every field into its widget's session key.
    Raises ConfigError naming the bad field; nothing is changed then."""
    cfg = RunConfig.from_dict(values)
    ss = st.session_state
    for k, v in cfg.to_dict().items():
        if k == "rule_params":
            continue
        if k == "rule":            # an outside rule by import path goes into its own text box
            own = v not in rule_names()
            ss["rule_path"] = v if own else ""
            if own:
                continue
        ss[key_of(k)] = widget_value(v)
    cls = get_rule(cfg.rule).Params
    params = cfg.rule_object_params()
    for f in dataclasses.fields(cls):
        ss[rp_key(cfg.rule, f.name)] = widget_value(getattr(params, f.name))
    return cfg


def non_default(cfg: RunConfig) -> dict[str, str]:
    """Query parameters for the fields that differ from the defaults (and always the rule)."""
    d, out = RunConfig(), {"rule": cfg.rule}
    for k, v in cfg.to_dict().items():
        if k == "rule_params":
            continue
        if v != getattr(d, k):
            out[k] = str(widget_value(v))
    defaults = get_rule(cfg.rule).Params()
    params = cfg.rule_object_params()
    for f in dataclasses.fields(params):
        v = getattr(params, f.name)
        if v != getattr(defaults, f.name):
            out[RP + f.name] = str(widget_value(v))
    return out


def config_from_query(params: dict[str, str]) -> dict | None:
    """The config a link carries (None when it carries none)."""
    fields = RunConfig.fields()
    values, rp = {}, {}
    for k, v in params.items():
        if k.startswith(RP):
            rp[k[len(RP):]] = v
        elif k in fields and k != "rule_params":
            values[k] = v
    if not values and not rp:
        return None
    if rp:
        values["rule_params"] = rp
    return values


def init_from_url() -> None:
    """Once per session: a link's config fills the form (a bad link: a visible warning, defaults)."""
    if st.session_state.get("_form_from_url_done"):
        return
    st.session_state["_form_from_url_done"] = True
    values = config_from_query(dict(st.query_params))
    if values is None:
        return
    try:
        load_into_widgets(values)
    except ConfigError as e:
        st.session_state["_form_link_error"] = f"The link's settings were not applied: {e}"


def sync_url(cfg: RunConfig | None) -> None:
    """Write the form's config into the URL (keeping the view parameters)."""
    if cfg is None:
        return
    want = non_default(cfg)
    current = {k: v for k, v in st.query_params.items() if k not in VIEW_PARAMS}
    if current != want:
        view = {k: st.query_params[k] for k in VIEW_PARAMS if k in st.query_params}
        st.query_params.from_dict({**want, **view})


# ---- widgets that take their value from session state when it is set -------------------------
def hidden(key: str) -> bool:
    """True when a lesson hides this widget (lesson mode, and the teacher has not shown all)."""
    shown = st.session_state.get(SHOWN)
    return shown is not None and key not in shown


def kept(key: str, default):
    """A hidden widget's value: the one it holds (re-assigned, so Streamlit does not drop the
    state of a widget that is not drawn this run), else the default."""
    v = st.session_state.get(key, default)
    st.session_state[key] = v
    return v


def _init(key: str, default) -> dict:
    """Pass a default only when the key is not set yet (Streamlit warns when both are given)."""
    if key in st.session_state:
        return {}
    return {"value": default}


def number(container, label: str, key: str, default, **kw):
    if hidden(key):
        return kept(key, default)
    return container.number_input(label, key=key, **_init(key, default), **kw)


def text(container, label: str, key: str, default: str, **kw):
    if hidden(key):
        return kept(key, default)
    return container.text_input(label, key=key, **_init(key, default), **kw)


def checkbox(container, label: str, key: str, default: bool, **kw):
    if hidden(key):
        return kept(key, default)
    return container.checkbox(label, key=key, **_init(key, default), **kw)


def slider(container, label: str, lo, hi, key: str, default, step=None, **kw):
    if hidden(key):
        return kept(key, default)
    return container.slider(label, lo, hi, key=key, step=step, **_init(key, default), **kw)


def select(container, label: str, options, key: str, default, **kw):
    options = list(options)
    if key in st.session_state and st.session_state[key] not in options:
        del st.session_state[key]          # e.g. a value of another rule's choices
    if hidden(key):
        return kept(key, default if default in options else options[0])
    if key in st.session_state:
        return container.selectbox(label, options, key=key, **kw)
    return container.selectbox(label, options, key=key, index=options.index(default) if default in options else 0, **kw)


def field_widget(container, label: str, key: str, default, meta: dict):
    """One widget for a dataclass field (a config field or a rule hyperparameter) from its default's
    type and its metadata (choices, help); lists are comma-separated text."""
    help_ = meta.get("help") or None
    if meta.get("choices") is not None and not isinstance(default, list):
        return select(container, label, meta["choices"], key, default, help=help_)
    if isinstance(default, bool):
        return checkbox(container, label, key, default, help=help_)
    if isinstance(default, int):
        return number(container, label, key, default, step=1, help=help_)
    if isinstance(default, float):
        return number(container, label, key, default, format="%.6g", help=help_)
    if isinstance(default, list):
        txt = text(container, label, key, ",".join(map(str, default)),
                   help=(help_ or "") + " (comma-separated; empty = default)")
        return [s.strip() for s in txt.split(",") if s.strip()]
    return text(container, label, key, str(default), help=help_)


def own_rule(container, key: str, rule: str) -> str:
    """The "or your own rule" box: an import path that loads replaces `rule` (one that does not is
    a visible error and `rule` stays)."""
    own = text(container, "or your own rule: package.module:Class", key, "",
               help="a Rule subclass importable from the Python path or the app's folder "
                    "(e.g. examples.triplet_stdp:TripletSTDP); empty: the rule above").strip()
    if own:
        try:
            get_rule(own)
            return own
        except ValueError as e:
            container.error(f"Your rule does not load: {e}")
    return rule
