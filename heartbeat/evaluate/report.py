"""The results report: one HTML page that opens offline, and a Markdown twin for the repository.

Everything here is pure: functions take the pipeline's outputs (metrics,
training info, the evaluate stage's PNG figures, params.yaml) as data and
return strings, so tests can build a report from synthetic numbers without
running the pipeline. ``stages/report.py`` gathers the inputs and writes files.

The HTML page is self-contained on purpose: the figures are ``data:`` URIs and
the style is inline, with no script, font or stylesheet from anywhere else. It
opens from ``file://`` on an air-gapped machine, and survives being mailed or
kept as a CI artifact. The Markdown links the figures by relative path instead
(``../plots/<model>/accuracy.png``) because code hosts render those, and do not
render ``data:`` images.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from heartbeat.core.beat_spec import DATASET_CLASSES

FIGURES: dict[str, str] = {"accuracy": "Accuracy per epoch", "confusion": "Confusion matrix (test split)"}
"""The evaluate stage's figures of each model, in display order: file stem → caption."""

REPORT_HEADERS = (
    "Model",
    "Data set",
    "Test beats",
    "Accuracy",
    "Macro-F1",
    "Macro-F1 N S V F",
    "ROC-AUC",
    "ECE",
    "Weights",
    "Epochs (best)",
)
CLASS_HEADERS = ("Class", "Se (recall)", "+P (precision)", "F1", "Test beats")
EXPORT_HEADERS = ("Model", "File", "Agreement with Keras", "Max |Δprob|", "Δ macro-F1", "Shipped")

DATASET_NAMES = {"ptb": "PTB", "mitbih": "MIT-BIH"}

SUMMARY_NOTE = (
    "Macro-F1 averages the classes equally; for MIT-BIH, Macro-F1 N S V F leaves out Q as the AAMI "
    "convention does. ROC-AUC is for the binary PTB task only; ECE is the expected calibration "
    "error. Weights: the model's parameter count. Epochs: those run, and in brackets the best "
    "epoch that early stopping restored (one per member of a seed ensemble). Per class, Se "
    "(sensitivity) is the share of the class's beats found, +P (positive predictivity) the share "
    "of the beats called that class that are right."
)
EXPORT_NOTE = (
    "TFLite and ONNX copies in models/export/, checked against the Keras model on the test split "
    "(heartbeat predict --backend tflite|onnx). A quantised variant ships only when it agrees with "
    "Keras on enough beats and moves macro-F1 by less than the params' gate."
)


@dataclass(frozen=True)
class ModelResult:
    """What the pipeline produced for one model."""

    name: str
    title: str
    dataset: str
    metrics: Mapping[str, Any]
    """metrics/<name>.json, written by the evaluate stage: the headline numbers."""
    training: Mapping[str, Any]
    """models/<name>.json, written by the model's training stage."""
    figures: Mapping[str, bytes]
    """PNG bytes of plots/<name>/<stem>.png for each stem of :data:`FIGURES` that exists."""
    details: Mapping[str, Any] = field(default_factory=dict)
    """metrics/details/<name>.json, written by the evaluate stage: data, weights, per-class figures."""


@dataclass(frozen=True)
class Report:
    """All the inputs of one report."""

    models: list[ModelResult]
    params_text: str
    """params.yaml as it was, comments included: the params used."""
    export: Mapping[str, Any] = field(default_factory=dict)
    """metrics/export.json, written by the export stage: parity of every exported file."""


@dataclass(frozen=True)
class Comparison:
    """Two revisions side by side, from ``dvc metrics diff``, ``dvc params diff`` and ``dvc plots diff``."""

    old: str
    """Label of the baseline revision, e.g. ``main (1a2b3c4)``."""
    new: str
    """Label of the compared state, usually ``workspace``."""
    models: list[tuple[str, str, str]]
    """(name, title, data set) of each model, in report order."""
    metrics: Mapping[str, Mapping[str, Mapping[str, Any]]]
    """``dvc metrics diff --json`` output: file → flattened key → {old, new, diff}."""
    params: Mapping[str, Mapping[str, Mapping[str, Any]]]
    """``dvc params diff --json`` output: file → flattened key → {old, new}."""
    figures: Mapping[str, tuple[bytes | None, bytes | None]]
    """Figure path (plots/<model>/<stem>.png) → (old PNG, new PNG); None where a revision lacks it."""


# ----------------------------------------------------------------------------- formatting


def fmt_number(value: Any, digits: int = 3) -> str:
    """A metric for a table: fixed decimals, an integer with thousands separators, or an en dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, list | tuple):
        return ", ".join(fmt_number(v, digits) for v in value) or "–"
    return str(value)


def fmt_diff(value: Any, digits: int = 4) -> str:
    """A signed change; blank when there is none to show."""
    if not isinstance(value, int | float) or isinstance(value, bool) or value == 0:
        return ""
    if isinstance(value, int):
        return f"{value:+,}"
    return f"{value:+.{digits}f}"


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def summary_row(m: ModelResult) -> list[str]:
    """One model's cells of the summary table, as plain text in :data:`REPORT_HEADERS` order."""
    mt, tr = m.metrics, m.training
    epochs = tr.get("epochs_run")
    best = tr.get("best_epoch")
    if isinstance(tr.get("ensemble"), Mapping):  # a seed ensemble: each member's best epoch
        best = " / ".join(str(b) for b in tr["ensemble"].get("best_epoch", []))
    return [
        m.title,
        DATASET_NAMES.get(m.dataset, m.dataset),
        fmt_number(m.details.get("test_beats")),
        fmt_number(mt.get("accuracy")),
        fmt_number(mt.get("macro_f1")),
        fmt_number(mt.get("macro_f1_nsvf")),
        fmt_number(mt.get("roc_auc")),
        fmt_number(mt.get("ece")),
        fmt_number(tr.get("weight_count", m.details.get("weight_count"))),
        f"{epochs} ({best})" if epochs is not None else "–",
    ]


def class_rows(m: ModelResult) -> list[list[str]]:
    """Per class: sensitivity, positive predictivity, F1 and test beats, in :data:`CLASS_HEADERS` order."""
    return [
        [
            cls,
            fmt_number(v.get("sensitivity")),
            fmt_number(v.get("positive_predictivity")),
            fmt_number(v.get("f1")),
            fmt_number(v.get("support")),
        ]
        for cls, v in (m.details.get("per_class") or {}).items()
    ]


def export_rows(export: Mapping[str, Any]) -> list[list[str]]:
    """The export stage's parity check, one row per file (or per model not exported)."""
    rows = []
    for name, files in (export.get("models") or {}).items():
        if "skipped" in files:
            rows.append([name, "not exported", "–", "–", "–", str(files["skipped"])])
            continue
        for key, figures in files.items():
            if key == "keras" or not isinstance(figures, Mapping):
                continue
            fmt, _, variant = key.partition("_")
            file = f"{name}.{variant}.{fmt}" if variant else f"{name}.{fmt}"
            if "error" in figures:
                rows.append([name, file, "–", "–", "–", f"no: {figures['error']}"])
                continue
            shipped = figures.get("shipped", True)
            rows.append(
                [
                    name,
                    file,
                    fmt_number(figures.get("argmax_agreement"), 4),
                    f"{figures['max_abs_prob_diff']:.1e}" if "max_abs_prob_diff" in figures else "–",
                    fmt_diff(figures.get("macro_f1_change"), 4) or ("0" if variant else "–"),
                    "yes" if shipped else "no: outside the gates",
                ]
            )
    return rows


def data_facts(models: Iterable[ModelResult]) -> dict[str, str]:
    """Data source, split and whether the data is synthetic, agreed by all models (or listed if not)."""
    models = list(models)

    def values(key: str) -> str:
        seen = {str(m.details.get(key)) for m in models if m.details.get(key) is not None}
        return ", ".join(sorted(seen)) if seen else "unknown"

    synthetic = any(m.details.get("synthetic_data") for m in models)
    return {
        "source": values("data_source"),
        "split": values("split"),
        "synthetic": "yes (synthetic demo records)" if synthetic else "no",
    }


# ----------------------------------------------------------------------------- HTML

_CSS = """
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; margin: 24px auto;
       max-width: 1200px; padding: 0 16px; color: #1b1f23; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #d0d7de; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.facts th { width: 11em; }
.warn { background: #fff8c5; border: 1px solid #d4a72c; padding: 6px 10px; border-radius: 4px; }
.figures { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
figure { margin: 0; }
figure img { display: block; max-width: 100%; border: 1px solid #d0d7de; }
figcaption { font-size: 0.85em; color: #57606a; margin-top: 4px; }
.missing { color: #cf222e; }
.up { color: #1a7f37; } .down { color: #cf222e; }
pre { background: #f6f8fa; padding: 10px; overflow-x: auto; font-size: 0.85em; }
footer { margin-top: 2.5em; font-size: 0.85em; color: #57606a; }
"""

_NUMERIC = {*REPORT_HEADERS[2:-1], *CLASS_HEADERS[1:], *EXPORT_HEADERS[2:5]}
"""Columns whose cells are numbers: right-aligned."""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _table(
    headers: Iterable[str],
    rows: Iterable[Iterable[str]],
    numeric: set[str] | None = None,
    css_class: str = "",
) -> str:
    headers = list(headers)
    numeric = numeric or set()
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{_e(c)}</td>' if h in numeric else f"<td>{_e(c)}</td>"
            for h, c in zip(headers, row, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    cls = f' class="{css_class}"' if css_class else ""
    return (
        f"<table{cls}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>"
    )


def _figure(png: bytes | None, alt: str, caption: str) -> str:
    if png is None:
        return f'<figure><p class="missing">{_e(alt)}: no figure</p><figcaption>{_e(caption)}</figcaption></figure>'
    return (
        f'<figure><img src="{data_uri(png)}" alt="{_e(alt)}"><figcaption>{_e(caption)}</figcaption></figure>'
    )


def _facts_html(report: Report) -> str:
    facts = data_facts(report.models)
    rows = [
        ("Data source", facts["source"]),
        ("Split", facts["split"]),
        ("Synthetic data", facts["synthetic"]),
    ]
    out = _table(("What", "Value"), rows, css_class="facts")
    if facts["synthetic"] != "no":
        out += (
            '\n<p class="warn">These results come from the synthetic demo data set '
            "(<code>data.source: demo</code>). They show that the pipeline works, not how well the "
            "models classify real ECG beats.</p>"
        )
    return out


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page."""
    parts = [
        "<h1>Heartbeat classification: results</h1>",
        "<p>Single-beat ECG classification after Kachuee et al. (2018), made by the <code>report</code> "
        "stage of the DVC pipeline.</p>",
        "<h2>Data</h2>",
        _facts_html(report),
        "<h2>Models</h2>",
        _table(REPORT_HEADERS, (summary_row(m) for m in report.models), _NUMERIC),
        f"<p>{_e(SUMMARY_NOTE)}</p>",
    ]
    for m in report.models:
        parts.append(f'<h2 id="{_e(m.name)}">{_e(m.title)}</h2>')
        rows = class_rows(m)
        if rows:
            parts.append(_table(CLASS_HEADERS, rows, _NUMERIC))
        figs = [
            _figure(
                m.figures.get(stem), f"{m.title}: {caption.lower()}", f"{caption} · plots/{m.name}/{stem}.png"
            )
            for stem, caption in FIGURES.items()
        ]
        parts.append('<div class="figures">' + "".join(figs) + "</div>")
    rows = export_rows(report.export)
    if rows:
        parts += [
            "<h2>Exported models</h2>",
            f"<p>{_e(EXPORT_NOTE)}</p>",
            _table(EXPORT_HEADERS, rows, _NUMERIC),
        ]
    parts += [
        "<h2>Parameters</h2>",
        "<p>params.yaml as the pipeline read it:</p>",
        f"<pre>{_e(report.params_text)}</pre>",
        "<footer>Made by <code>dvc repro report</code> (stages/report.py). This page loads nothing from "
        "the network: figures are embedded, so it opens from a file on an offline machine.</footer>",
    ]
    return _page("Heartbeat classification: results", "\n".join(parts))


# ----------------------------------------------------------------------------- Markdown


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _md_table(headers: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    headers = list(headers)
    lines = [
        "| " + " | ".join(_md_escape(h) for h in headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(report: Report, figure_prefix: str = "../") -> str:
    """The report as Markdown; figures are linked as ``{figure_prefix}plots/<model>/<stem>.png``."""
    facts = data_facts(report.models)
    lines = [
        "# Heartbeat classification: results",
        "",
        "Made by the `report` stage of the DVC pipeline (`dvc repro report`). "
        "Open `report/index.html` for the same page with the figures embedded; it works offline.",
        "",
        f"- Data source: {facts['source']}",
        f"- Split: {facts['split']}",
        f"- Synthetic data: {facts['synthetic']}",
        "",
        *(
            [
                "> These results come from the synthetic demo data set (`data.source: demo`). They show that "
                "the pipeline works, not how well the models classify real ECG beats.",
                "",
            ]
            if facts["synthetic"] != "no"
            else []
        ),
        _md_table(REPORT_HEADERS, (summary_row(m) for m in report.models)),
        "",
        SUMMARY_NOTE,
        "",
    ]
    for m in report.models:
        lines += [f"## {m.title}", ""]
        rows = class_rows(m)
        if rows:
            lines += [_md_table(CLASS_HEADERS, rows), ""]
        for stem, caption in FIGURES.items():
            if stem in m.figures:
                lines.append(f"![{m.title}: {caption.lower()}]({figure_prefix}plots/{m.name}/{stem}.png)")
        lines.append("")
    rows = export_rows(report.export)
    if rows:
        lines += ["## Exported models", "", EXPORT_NOTE, "", _md_table(EXPORT_HEADERS, rows), ""]
    lines += ["## Parameters", "", "```yaml", report.params_text.rstrip("\n"), "```", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- comparison

COMPARE_KEYS: tuple[tuple[str, str], ...] = (
    ("accuracy", "Accuracy"),
    ("macro_f1", "Macro-F1"),
    ("macro_f1_nsvf", "Macro-F1 N S V F"),
    ("roc_auc", "ROC-AUC"),
    ("pr_auc", "PR-AUC"),
    ("ece", "ECE"),
)
CLASS_COMPARE_KEYS: tuple[tuple[str, str], ...] = (("sensitivity", "Se"), ("positive_predictivity", "+P"))


def comparison_rows(cmp: Comparison, name: str, dataset: str) -> list[list[str]]:
    """Metric | old | new | change rows for one model, from ``dvc metrics diff`` of its files."""
    metrics = cmp.metrics.get(f"metrics/{name}.json", {})
    details = cmp.metrics.get(f"metrics/details/{name}.json", {})
    training = cmp.metrics.get(f"models/{name}.json", {})
    wanted: list[tuple[str, str, Mapping[str, Any]]] = [(k, label, metrics) for k, label in COMPARE_KEYS]
    found = {k.split(".")[1] for k in details if k.startswith("per_class.")}
    order = list(DATASET_CLASSES.get(dataset, ()))
    classes = sorted(found, key=lambda c: (order.index(c) if c in order else len(order), c))
    wanted += [
        (f"per_class.{c}.{key}", f"{label} {c}", details)
        for c in classes
        for key, label in CLASS_COMPARE_KEYS
    ]
    wanted += [
        ("weight_count", "Weights", training or details),
        ("epochs_run", "Epochs run", training),
    ]
    rows = []
    for key, label, source in wanted:
        entry = source.get(key)
        if entry is None:
            continue
        old, new, diff = entry.get("old"), entry.get("new"), entry.get("diff")
        rows.append([label, fmt_number(old, 4), fmt_number(new, 4), fmt_diff(diff, 4)])
    return rows


def params_rows(cmp: Comparison) -> list[list[str]]:
    rows = []
    for path, changes in cmp.params.items():
        for key, entry in changes.items():
            rows.append([f"{path}: {key}", fmt_number(entry.get("old"), 6), fmt_number(entry.get("new"), 6)])
    return rows


def render_comparison_html(cmp: Comparison) -> str:
    """Two revisions side by side: metric changes, changed params, and both revisions' figures."""
    title = f"Heartbeat results: {cmp.old} vs {cmp.new}"
    parts = [
        f"<h1>{_e(title)}</h1>",
        f"<p>Left/old: <b>{_e(cmp.old)}</b>; right/new: <b>{_e(cmp.new)}</b>. Numbers from "
        "<code>dvc metrics diff</code>, parameters from <code>dvc params diff</code>, figures from "
        "<code>dvc plots diff</code>.</p>",
        "<h2>Changed parameters</h2>",
    ]
    prows = params_rows(cmp)
    parts.append(
        _table(("Parameter", cmp.old, cmp.new), prows, {cmp.old, cmp.new}) if prows else "<p>None.</p>"
    )
    for name, model_title, dataset in cmp.models:
        parts.append(f'<h2 id="{_e(name)}">{_e(model_title)}</h2>')
        rows = comparison_rows(cmp, name, dataset)
        headers = ("Metric", cmp.old, cmp.new, "Change")
        parts.append(_table(headers, rows, {cmp.old, cmp.new, "Change"}) if rows else "<p>No metrics.</p>")
        for stem, caption in FIGURES.items():
            old, new = cmp.figures.get(f"plots/{name}/{stem}.png", (None, None))
            parts.append(
                '<div class="figures">'
                + _figure(old, f"{model_title}, {cmp.old}: {caption.lower()}", f"{caption} · {cmp.old}")
                + _figure(new, f"{model_title}, {cmp.new}: {caption.lower()}", f"{caption} · {cmp.new}")
                + "</div>"
            )
    parts.append(
        "<footer>Made by <code>python stages/report.py --compare REV</code>. Self-contained: it loads "
        "nothing from the network.</footer>"
    )
    return _page(title, "\n".join(parts))


def render_comparison_markdown(
    cmp: Comparison, figure_links: Mapping[str, tuple[str | None, str | None]]
) -> str:
    """The comparison as Markdown; ``figure_links`` maps each figure path to (old, new) relative links."""
    lines = [
        f"# Heartbeat results: {cmp.old} vs {cmp.new}",
        "",
        "From `dvc metrics diff`, `dvc params diff` and `dvc plots diff`; made by "
        "`python stages/report.py --compare REV`.",
        "",
        "## Changed parameters",
        "",
    ]
    prows = params_rows(cmp)
    lines += [_md_table(("Parameter", cmp.old, cmp.new), prows) if prows else "None.", ""]
    for name, model_title, dataset in cmp.models:
        lines += [f"## {model_title}", ""]
        rows = comparison_rows(cmp, name, dataset)
        if rows:
            lines += [_md_table(("Metric", cmp.old, cmp.new, "Change"), rows), ""]
        fig_rows = []
        for stem, caption in FIGURES.items():
            old, new = figure_links.get(f"plots/{name}/{stem}.png", (None, None))
            fig_rows.append(
                [caption]
                + [
                    f"![{caption}, {label}]({link})" if link else "–"
                    for link, label in ((old, cmp.old), (new, cmp.new))
                ]
            )
        lines += [_md_table(("Figure", cmp.old, cmp.new), fig_rows), ""]
    return "\n".join(lines)
