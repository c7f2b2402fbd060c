"""Count every clip of the ground-truth corpus with vpipe and match each crossing with the truth.

For each ``corpus/truth/<clip>.yaml`` whose clip is in ``--clips`` (``corpus/fetch.py`` builds them),
runs ``vpipe run`` with the truth file's lines and the default settings (or ``--config``), then
matches the counted crossings one by one (``pipeline.evaluation``). Prints a table per
clip (truth, counted, matched, missed, extra per line and direction) and the totals per class group
(cars; trucks and buses; two-wheelers) of the truth crossings matched and missed.

Usage::

    python scripts/eval_corpus.py                          # every clip in corpus/clips/
    python scripts/eval_corpus.py --only motorway_osd_25fps --config my.yaml --output runs/corpus
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.evaluation import (  # noqa: E402
    Tolerance,
    format_table,
    load_counted,
    load_truth,
    match_crossings,
)
from pipeline.yaml_io import read_yaml  # noqa: E402

GROUPS = {"car": "cars", "truck": "trucks and buses", "bus": "trucks and buses"}
"""Class group of a truth crossing's class; anything else (motorcycle, bicycle) is a two-wheeler."""


def line_flags(truth_file: Path) -> list[str]:
    """``--line NAME:x1,y1,x2,y2`` for each line of a truth file."""
    document = read_yaml(truth_file, "truth file")
    flags = []
    for name, line in document["lines"].items():
        coordinates = ",".join(f"{value:g}" for value in (*line["start"], *line["end"]))
        flags += ["--line", f"{name}:{coordinates}"]
    return flags


def truth_classes(truth_file: Path) -> dict[tuple[str, str, int], str]:
    """(line, direction, frame) -> class of every truth crossing."""
    document = read_yaml(truth_file, "truth file")
    return {
        (name, crossing["direction"], int(crossing["frame"])): crossing.get("class", "car")
        for name, line in document["lines"].items()
        for crossing in line["crossings"]
    }


def evaluate(truth_file: Path, clip: Path, out: Path, config: Path | None) -> Counter[str]:
    """Run vpipe on ``clip`` and print the match; returns matched/missed/extra counts per class group."""
    command = [sys.executable, "-m", "pipeline", "run", str(clip), *line_flags(truth_file)]
    command += ["--no-video", "--quiet", "--overwrite", "--output", str(out)]
    if config is not None:
        command += ["--config", str(config)]
    result = subprocess.run(command, cwd=REPO, env={**os.environ, "YOLO_OFFLINE": "1"}, check=False)
    if result.returncode not in (0, 3):
        raise SystemExit(f"vpipe failed on {clip} (exit {result.returncode})")
    fps = float(json.loads((out / "summary.json").read_text())["fps"])
    matched = match_crossings(load_truth(truth_file), load_counted(out / "events.jsonl"), Tolerance.for_run(fps))
    print(f"\n{clip.name} ({fps:g} fps)\n{format_table(matched)}")
    classes = truth_classes(truth_file)
    tally: Counter[str] = Counter()
    for item in matched.missed:
        tally[f"missed {GROUPS.get(classes[item.line, item.direction, item.frame], 'two-wheelers')}"] += 1

    for name in classes.values():
        tally[f"truth {GROUPS.get(name, 'two-wheelers')}"] += 1
    tally["extra"] += len(matched.extra)
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=Path, default=REPO / "corpus" / "clips", help="folder of the clips")
    parser.add_argument("--truth", type=Path, default=REPO / "corpus" / "truth", help="folder of the truth files")
    parser.add_argument("--config", type=Path, help="a vpipe config (its lines are replaced by the truth's)")
    parser.add_argument("--output", type=Path, default=REPO / "runs" / "corpus", help="run folders go here")
    parser.add_argument("--only", nargs="*", help="clip names to evaluate (default: all)")
    args = parser.parse_args(argv)
    total: Counter[str] = Counter()
    clips = 0
    for truth_file in sorted(args.truth.glob("*.yaml")):
        clip = args.clips / read_yaml(truth_file, "truth file")["clip"]
        if args.only and truth_file.stem not in args.only:
            continue
        if not clip.exists():
            print(f"skipped {truth_file.stem}: {clip} not found (python corpus/fetch.py builds it)", file=sys.stderr)
            continue
        total += evaluate(truth_file, clip, args.output / truth_file.stem, args.config)
        clips += 1
    if not clips:
        print("error: no clip to evaluate", file=sys.stderr)
        return 2
    print(f"\n{clips} clips; truth crossings matched per class group:")
    for group in ("cars", "trucks and buses", "two-wheelers"):
        truth, missed = total[f"truth {group}"], total[f"missed {group}"]
        if truth:
            print(f"  {group:<17} {truth - missed} of {truth} ({(truth - missed) / truth:.1%})")
    truth_all = sum(v for k, v in total.items() if k.startswith("truth"))
    print(f"  extra            {total['extra']} ({total['extra'] / truth_all:.1%} of the truth)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
