"""The run report: one self-contained HTML page about a run directory of ``cnnlab train``.

``write_report("runs/NAME", "report.html")`` assembles what the run wrote (config.yaml,
summary.json, metrics.jsonl, curves.png, skipped.json/.txt, environment.json) and what its model
shows on its own held-out data, drawn by the functions that already exist for each job:
:func:`cnnlab.evaluate.evaluate_runs` and its report files (confusion matrix, most confidently
wrong images), :func:`cnnlab.visualize.filter_tiles` and :func:`cnnlab.visualize.gradcam`.

Sections that need the run's images (worst mistakes, Grad-CAM) say why they are empty when the
data cannot be found (e.g. an image folder that has moved; pass ``data=`` to point at it); the
confusion matrix and the per-class table then fall back on the test scores in summary.json.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

import cnnlab
from cnnlab.errors import CnnlabError, ConfigError
from cnnlab.report.html import Section, image, kv_tables, note, page, para, table, text

N_EXAMPLES = 8        # worst mistakes and Grad-CAM examples shown by default
FILTERS_WIDTH = 320   # the filter grid is enlarged to about this many pixels across
GRADCAM_SIDE = 96     # small inputs are enlarged to about this many pixels a side


@dataclass
class Report:
    """The assembled page: header numbers and sections (see :func:`build_report`)."""

    run_dir: str
    title: str
    subtitle: str
    stats: list[tuple[str, str]]
    sections: list[Section]

    @property
    def missing(self) -> dict[str, str]:
        """Section id -> why it could not be drawn, for the sections that could not."""
        return {s.id: s.missing for s in self.sections if s.missing}

    def to_html(self) -> str:
        return page(self.title, self.subtitle, self.stats, self.sections)

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_html(), encoding="utf-8")
        return path


def write_report(run_dir: str | os.PathLike, out_path: str | os.PathLike, *,
                 data: str | None = None, n_examples: int = N_EXAMPLES,
                 device: str = "cpu") -> Path:
    """Write the HTML report of `run_dir` to `out_path`; returns the path written."""
    return build_report(run_dir, data=data, n_examples=n_examples, device=device).save(out_path)


def build_report(run_dir: str | os.PathLike, *, data: str | None = None,
                 n_examples: int = N_EXAMPLES, device: str = "cpu") -> Report:
    """Read `run_dir`, score its model on its held-out split and assemble the sections.

    `data` replaces the run's own data (a moved image folder); `n_examples` is how many worst
    mistakes and Grad-CAM examples are shown.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise ConfigError(f"run {str(run)!r} does not exist; pass a directory written by "
                          "`cnnlab train` (e.g. runs/lenet5-20250101-120000)")
    if n_examples < 1:
        raise ConfigError(f"the number of examples must be >= 1; got {n_examples}")
    summary = _read_json(run / "summary.json")
    cfg, cfg_text = _read_config(run / "config.yaml")
    if not summary and not cfg:
        raise ConfigError(f"{str(run)!r} holds neither summary.json nor config.yaml; is it a run "
                          "directory written by `cnnlab train`?")
    split = "test" if summary.get("test") else "val"
    predictor, result, model_why, data_why = _evaluate(run, data, split, device)
    if result is not None:   # the evaluation keeps its 16 worst; the report shows n_examples
        result = {**result, "confident_errors": result["confident_errors"][:n_examples]}
    scores = result or _summary_scores(summary)

    with tempfile.TemporaryDirectory(prefix="cnnlab-report-") as tmp:
        tmp = Path(tmp)
        pngs = _evaluation_pngs(scores, tmp)
        sections = [
            _config_section(cfg),
            _curves_section(run, tmp),
            _diagnostics_section(summary),
            _per_class_section(scores, result is None),
            _confusion_section(pngs.get("confusion_matrix.png"), data_why),
            _mistakes_section(result, pngs.get("confident_errors.png"), data_why),
            _filters_section(predictor, tmp, model_why),
            _gradcam_section(predictor, result, n_examples, tmp, data_why),
            _skipped_section(run, cfg),
            _environment_section(run, summary),
        ]
    title, subtitle, stats = _header(run, summary, cfg, cfg_text)
    return Report(str(run), title, subtitle, stats, sections)


# -- reading the run ---------------------------------------------------------------------------
def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e}); was the run interrupted while "
                          "writing it?") from None
    return value if isinstance(value, dict) else {}


def _read_config(path: Path) -> tuple[dict, str]:
    import yaml

    if not path.is_file():
        return {}, ""
    raw = path.read_text()
    try:
        cfg = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    return (cfg if isinstance(cfg, dict) else {}), raw


def _read_rows(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:   # a run killed mid-write leaves a partial last line
            continue
    return rows


def _evaluate(run: Path, data, split: str, device: str):
    """(predictor, evaluation, why no model, why no data); a failure becomes its reason."""
    from cnnlab.evaluate import evaluate_runs, load

    try:
        predictor = load(run, device)
    except (CnnlabError, OSError) as e:
        return None, None, f"the model could not be loaded: {e}", f"no model to score: {e}"
    try:
        return predictor, evaluate_runs(predictor, data, split), None, None
    except (CnnlabError, OSError) as e:
        return predictor, None, None, f"the run's data could not be read: {e}"


def _summary_scores(summary: dict) -> dict | None:
    """summary.json's test scores in the shape of an evaluation result (no images)."""
    import torch

    from cnnlab.evaluate.metrics import precision_recall

    test, classes = summary.get("test") or {}, summary.get("classes") or []
    cm = test.get("confusion_matrix")
    if not cm or len(cm) != len(classes):
        return None
    scores = {"confusion_matrix": cm, "acc1": test.get("acc1", math.nan),
              "images": test.get("images", sum(map(sum, cm))),
              "per_class": {"classes": classes, **precision_recall(torch.tensor(cm))}}
    return {"split": "test", "classes": classes, "combined": scores, "confident_errors": [],
            "members": [], "ensemble": None, "_arrays": {"pixels": None}}


def _evaluation_pngs(result: dict | None, tmp: Path) -> dict[str, bytes]:
    """The evaluation's own pictures (confusion matrix, confident errors) as PNG bytes."""
    from cnnlab.evaluate import write_report as write_evaluation

    if result is None:
        return {}
    files = write_evaluation(result, tmp / "evaluation")
    return {f.name: f.read_bytes() for f in files if f.suffix == ".png"}


# -- header ------------------------------------------------------------------------------------
def _duration(seconds) -> str:
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return "unknown"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, s = divmod(round(seconds), 60)
    return f"{minutes} min {s} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def _trained_at(run: Path, cfg_text: str) -> str:
    # config.yaml's first line records when training started; else the summary's file time
    m = re.search(r"resolved config \(([^)]+)\)", cfg_text)
    if m:
        return m.group(1)
    for name in ("summary.json", "config.yaml"):
        if (run / name).is_file():
            return datetime.fromtimestamp((run / name).stat().st_mtime).strftime(
                "%Y-%m-%d %H:%M:%S")
    return "unknown"


def _data_name(summary: dict, cfg: dict) -> str:
    d = summary.get("data")
    if isinstance(d, dict) and d.get("name"):
        return str(d["name"])
    return str(cfg.get("data") or "digits")


def _header(run: Path, summary: dict, cfg: dict, cfg_text: str):
    test, best = summary.get("test") or {}, summary.get("best") or {}
    if isinstance(test.get("acc1"), (int, float)):
        acc = ("test top-1 accuracy", f"{100 * test['acc1']:.2f}%")
    elif isinstance(best.get("val_acc1"), (int, float)):   # a run without a test split
        acc = ("best val top-1 accuracy", f"{100 * best['val_acc1']:.2f}%")
    else:
        acc = ("test top-1 accuracy", "none")
    done, planned = summary.get("epochs_completed"), summary.get("epochs") or cfg.get("epochs")
    epochs = f"{done} of {planned}" if done is not None else str(planned or "unknown")
    stats = [("model", str(summary.get("model") or cfg.get("model") or "unknown")),
             ("data", _data_name(summary, cfg)),
             acc,
             ("epochs", epochs),
             ("wall time", _duration(summary.get("seconds"))),
             ("trained", _trained_at(run, cfg_text))]
    subtitle = f"{run.resolve()} · report by cnnlab {cnnlab.__version__}"
    if summary.get("stop_reason"):
        subtitle += f" · stopped early: {summary['stop_reason']}"
    return f"Run report: {run.resolve().name}", subtitle, stats


# -- sections ----------------------------------------------------------------------------------
def _value(v) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def _config_section(cfg: dict) -> Section:
    if not cfg:
        return Section("config", "Config", note("no config.yaml in this run"), "no config.yaml")
    body = kv_tables([(k, _value(v)) for k, v in cfg.items()])
    return Section("config", "Config", para("The resolved training config (config.yaml); rerun "
                                            "it with `cnnlab train --config`.") + body)


def _curves_section(run: Path, tmp: Path) -> Section:
    from cnnlab.train.plots import save_curves

    rows = _read_rows(run / "metrics.jsonl")
    png = run / "curves.png"
    if not png.is_file() and rows:
        png = save_curves(rows, tmp / "curves.png") or png
    if not png.is_file():
        why = "no curves.png and no metrics.jsonl in this run"
        return Section("curves", "Learning curves", note(why), why)
    body = image(png.read_bytes(), "loss, top-1 accuracy and learning rate per epoch")
    scored = [r for r in rows if isinstance(r.get("val_acc1"), (int, float))]
    if scored:
        best = max(scored, key=lambda r: r["val_acc1"])
        body += para(f"Best validation accuracy {100 * best['val_acc1']:.2f}% at epoch "
                     f"{best.get('epoch')} of {len(rows)}.")
    return Section("curves", "Learning curves", body)


def _diagnostics_section(summary: dict) -> Section:
    diag = summary.get("diagnostics")
    if not isinstance(diag, dict):
        why = "summary.json records no diagnostics (an interrupted or older run)"
        return Section("diagnostics", "Diagnostics", note(why), why)
    findings, flags = diag.get("findings") or [], diag.get("monitor_flags") or []
    body = "" if findings else para("Learning curves: no over- or underfitting, no flat, "
                                    "exploding or non-finite loss.")
    for f in findings:
        sev = str(f.get("severity", "info"))
        body += (f'<p><b class="{text(sev)}">{text(sev)}</b> '
                 f"<code>{text(f.get('code', ''))}</code>: {text(f.get('message', ''))}</p>")
    if flags:
        body += para("Training-monitor flags (first time each fired):")
        body += table(["step", "flag", "layer", "message"],
                      [[f.get("step"), f.get("code"), f.get("layer"), f.get("message")]
                       for f in flags], numeric={0})
    elif diag.get("monitor_flags") is None:
        body += para("Training monitor: off in this run (monitor_every 0).")
    else:
        body += para("Training monitor: no flags (weights, updates and activations looked "
                     "healthy).")
    return Section("diagnostics", "Diagnostics", body)


def _per_class_section(result: dict | None, from_summary: bool) -> Section:
    title = "Per-class accuracy"
    if result is None:
        why = "no test scores in summary.json and the run's data could not be scored"
        return Section("per-class", title, note(why), why)
    comb = result["combined"]
    pc = comb["per_class"]
    rows = [[c, n, f"{100 * r:.1f}%", f"{100 * p:.1f}%", f"{f1:.3f}"]
            for c, n, r, p, f1 in zip(pc["classes"], pc["support"], pc["recall"],
                                      pc["precision"], pc["f1"])]
    where = "summary.json's test scores" if from_summary else f"the {result['split']} split"
    body = para(f"On {where} ({comb['images']} images). A class's accuracy is its recall: "
                "the share of its images predicted right.")
    body += table(["class", "images", "accuracy (recall)", "precision", "F1"], rows,
                  numeric={1, 2, 3, 4})
    return Section("per-class", title, body)


def _confusion_section(png: bytes | None, data_why: str | None) -> Section:
    title = "Confusion matrix"
    if png is None:
        why = f"no test scores in summary.json, and {data_why}"
        return Section("confusion", title, note(why), why)
    return Section("confusion", title, para("Rows: true class; columns: predicted class.")
                   + image(png, "confusion matrix", width=560))


def _mistakes_section(result, png: bytes | None, data_why) -> Section:
    title = "Worst mistakes"
    if result is None:
        return Section("mistakes", title, note(f"Not shown: {data_why}"), data_why)
    errors = result["confident_errors"]
    if not errors:
        return Section("mistakes", title, para(f"No mistakes on the {result['split']} split."))
    rows = [[i, e["path"] or f"#{e['index']}", e["label_name"], e["predicted_name"],
             f"{e['probability']:.3f}", f"{e['p_label']:.3f}"] for i, e in enumerate(errors, 1)]
    body = para(f"The {len(errors)} most confidently wrong images of the {result['split']} split.")
    body += image(png, "most confidently wrong images", width=640)
    body += table(["rank", "image", "true", "predicted", "p(predicted)", "p(true)"], rows,
                  numeric={0, 4, 5}, mono={1})
    return Section("mistakes", title, body)


def _filters_section(predictor, tmp: Path, model_why) -> Section:
    from cnnlab.visualize import default_layer, filter_tiles, save_png, tile_grid

    title = "First-layer filters"
    if predictor is None:
        return Section("filters", title, note(f"Not shown: {model_why}"), model_why)
    layer = default_layer(predictor.model, "first")
    grid = tile_grid(filter_tiles(predictor.model, layer), pad=1)
    png = save_png(tmp / "filters.png", grid, scale=max(1, FILTERS_WIDTH // grid.shape[1]))
    body = para(f"The kernels of {layer} on one shared scale (Krizhevsky et al. 2012, Fig. 3); "
                "grey models show one tile per filter and input channel.")
    return Section("filters", title, body + image(png.read_bytes(), f"filters of {layer}",
                                                  pixels=True))


def _spread(labels: list[int], n: int) -> list[int]:
    """n indices that visit the classes in order: the first image of each class, then the
    second of each, ..."""
    seen: dict[int, int] = {}
    rank = []
    for y in labels:
        rank.append(seen.get(y, 0))
        seen[y] = rank[-1] + 1
    return sorted(range(len(labels)), key=lambda i: (rank[i], labels[i], i))[:n]


def _gradcam_section(predictor, result, n: int, tmp: Path, data_why) -> Section:
    from cnnlab.visualize import default_layer, gradcam, overlay, save_png, tile_grid
    from cnnlab.visualize.overlay import as_uint8

    title = "Grad-CAM examples"
    if predictor is None or result is None:
        return Section("gradcam", title, note(f"Not shown: {data_why}"), data_why)
    arrays, classes = result["_arrays"], result["classes"]
    layer = default_layer(predictor.model, "last")
    figures = []
    for i in _spread(arrays["labels"].tolist(), n):
        pixels = as_uint8(arrays["pixels"][i].permute(1, 2, 0))           # (S, S, 3)
        heat = gradcam(predictor.model, predictor.normalize(arrays["pixels"][i:i + 1]), None,
                       layer)
        pair = tile_grid(np.stack([pixels, overlay(pixels, heat)]), ncols=2, pad=2)
        png = save_png(tmp / f"gradcam-{i}.png", pair, scale=max(1, GRADCAM_SIDE // len(pixels)))
        p = arrays["probs"][i]
        pred = int(p.argmax())
        caption = (f"true {classes[int(arrays['labels'][i])]} · predicted {classes[pred]} "
                   f"({float(p[pred]):.2f})")
        figures.append(f"<figure>{image(png.read_bytes(), caption, pixels=True)}"
                       f"<figcaption>{text(caption)}</figcaption></figure>")
    body = para(f"Where {layer} finds the evidence for the predicted class (Selvaraju et al. "
                f"2017; red is strongest): {result['split']} images, one per class in turn.")
    return Section("gradcam", title, body + f'<div class="figures">{"".join(figures)}</div>')


def _skipped_section(run: Path, cfg: dict) -> Section:
    title = "Bad files"
    report = _read_json(run / "skipped.json")
    if report:
        skipped, ignored = report.get("skipped") or [], report.get("ignored") or []
        body = para(f"{len(skipped)} of {report.get('checked', '?')} files in "
                    f"{report.get('source') or 'the data'} could not be used and were skipped.")
        if skipped:
            body += table(["file", "reason"], [[s.get("path"), s.get("reason")] for s in skipped],
                          mono={0})
        if ignored:
            body += para(f"{len(ignored)} item(s) ignored as not data:")
            body += table(["item", "reason"], [[s.get("path"), s.get("reason")] for s in ignored],
                          mono={0})
        for line in report.get("notes") or []:
            body += note(line)
        return Section("bad-files", title, body)
    if (run / "skipped.txt").is_file():
        return Section("bad-files", title, f"<pre>{text((run / 'skipped.txt').read_text())}</pre>")
    if cfg and cfg.get("data") in (None, "digits"):
        return Section("bad-files", title,
                       para("None: the embedded digits have no files to check."))
    why = "no skipped.json or skipped.txt in this run"
    return Section("bad-files", title, note(why), why)


def _environment_section(run: Path, summary: dict) -> Section:
    env = _read_json(run / "environment.json") or summary.get("environment") or {}
    if not env:
        why = "no environment.json in this run"
        return Section("environment", "Environment", note(why), why)
    return Section("environment", "Environment",
                   kv_tables([(k, _value(v)) for k, v in env.items()], columns=2))
