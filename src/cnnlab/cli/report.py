"""One self-contained HTML page about a training run, to read, keep or attach to an issue.

RUN is a directory written by `cnnlab train`. The page holds: a header (model, data, date, test
accuracy, wall time), the resolved config, the learning curves, the diagnostics flags and hints,
per-class accuracy/precision/recall, the confusion matrix, the most confidently wrong test images,
the first-layer filters, Grad-CAM heat-maps of a few test images, the bad-file report (files the
data loader skipped, with reasons) and the environment.

The images are embedded in the file (no network, no side files), so the page can be mailed or
opened anywhere. The model is scored on the run's own held-out data; if that data has moved,
point --data at it, or the image sections say why they are empty and the rest still renders.

--screenshot also opens the page in headless Chromium, fails if the browser reports a console
error or an image that does not load, and saves a full-page PNG (needs `chromium` on PATH).

examples:
  cnnlab report runs/lenet5-20260101-120000                 # writes RUN/report.html
  cnnlab report runs/pets -o pets.html --data ~/data/pets   # the folder moved since training
  cnnlab report runs/NAME --examples 16 --screenshot report.png
  cnnlab report runs/NAME --json                           # the path and any missing sections
"""

from __future__ import annotations

VERB = "report"
HELP = "one self-contained HTML page about a run: config, curves, errors, Grad-CAM, bad files"


def add_arguments(parser) -> None:
    a = parser.add_argument
    a("run", metavar="RUN", help="run directory written by `cnnlab train`")
    a("-o", "--output", metavar="HTML", help="where the page goes (default RUN/report.html)")
    a("--data", metavar="PATH", help="image folder or archive to score the model on (default: "
      "the run's own data)")
    a("--examples", type=int, default=None, metavar="N",
      help="worst mistakes and Grad-CAM examples to show (default 8; at most 16 mistakes)")
    a("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    a("--screenshot", metavar="PNG", help="check the page in headless Chromium and save a "
      "full-page screenshot here")
    a("--json", action="store_true", help="print the output path, sections and what is "
      "missing as JSON")


def run(args) -> int:
    import json
    from pathlib import Path

    from cnnlab.report import N_EXAMPLES, build_report

    report = build_report(args.run, data=args.data, device=args.device,
                          n_examples=N_EXAMPLES if args.examples is None else args.examples)
    path = report.save(args.output or Path(args.run) / "report.html")
    out = {"report": str(path), "sections": [s.id for s in report.sections],
           "missing": report.missing}
    rc = 0
    if args.screenshot:
        from cnnlab.report.browser import check_page

        check = check_page(path, args.screenshot)
        out.update(screenshot=str(check.screenshot), browser_errors=check.errors)
        rc = 0 if check.ok else 1
    if args.json:
        print(json.dumps(out, indent=2))
        return rc
    print(f"report written to {path}")
    for sid, why in report.missing.items():
        print(f"  {sid}: not shown ({why})")
    if args.screenshot:
        print(f"screenshot written to {out['screenshot']}")
        for e in out["browser_errors"]:
            print(f"  browser: {e}")
    return rc
