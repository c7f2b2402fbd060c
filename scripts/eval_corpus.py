"""Count every clip of the ground-truth corpus with vpipe, and with the baselines users have today,
and match each crossing with the truth.

For each ``corpus/truth/<clip>.yaml`` whose clip is in ``--clips`` (``corpus/fetch.py`` builds them),
runs ``vpipe run`` with the truth file's lines and the default settings (or ``--config``) at each
``--precision``; with ``--baselines`` also supervision's ``LineZone`` over the same detections at
each precision, and Ultralytics' ``ObjectCounter`` as a new user runs it (``corpus_baselines.py``).
Every method's crossings are matched with the truth one by one with the same tolerance
(``pipeline.evaluation``). Prints per clip and method the table per line and direction (truth,
counted, matched, missed, extra), then matched / missed / extra per clip and line for every method,
and the totals per class group (cars; trucks and buses; two-wheelers) with the extras and the
wrong-direction extras. ``--write-docs`` writes the last two tables into ``docs/accuracy.md``.

Usage::

    python scripts/eval_corpus.py                          # vpipe on every clip in corpus/clips/
    python scripts/eval_corpus.py --baselines --precision fp32 int8 --write-docs
    python scripts/eval_corpus.py --only motorway_osd_25fps --config my.yaml --output runs/corpus
    python scripts/eval_corpus.py --frame-steps 1 2 3 5   # also at 1/2, 1/3 and 1/5 of each clip's rate

``--frame-steps`` evaluates every clip at 1/N of its frame rate for each N, as a camera streaming at
that rate delivers it (every Nth frame, re-encoded into ``<output>/clips/``); counts are matched in
the truth's frames with the window widened by the frame gap (:meth:`Tolerance.for_run`). The tables
per clip are for the first N; the totals are for each.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmark import cpu_name  # noqa: E402
from corpus_baselines import object_counter_crossings, supervision_crossings, truth_lines  # noqa: E402

from pipeline.config import ModelConfig  # noqa: E402
from pipeline.evaluation import (  # noqa: E402
    CountedCrossing,
    MatchResult,
    Tolerance,
    TruthCrossing,
    format_table,
    load_counted,
    load_truth,
    match_crossings,
    subsample_clip,
)
from pipeline.io.sources.files import open_source  # noqa: E402
from pipeline.models.resolve import resolve_model  # noqa: E402
from pipeline.yaml_io import read_yaml  # noqa: E402

GROUPS = {"car": "cars", "truck": "trucks and buses", "bus": "trucks and buses"}
"""Class group of a truth crossing's class; anything else (motorcycle, bicycle) is a two-wheeler."""
GROUP_ORDER = ("cars", "trucks and buses", "two-wheelers")
DOCS = REPO / "docs" / "accuracy.md"


@dataclass(frozen=True)
class Clip:
    """A corpus clip with its truth: ``path`` holds every ``step``-th frame of the clip the truth
    was made on, whose rate was ``fps``."""

    name: str
    path: Path
    truth_file: Path
    document: dict
    fps: float
    step: int = 1

    @property
    def label(self) -> str:
        """The clip's name, with the step when it is a subsampled copy."""
        return self.name if self.step == 1 else f"{self.name}_every_{self.step}"

    @property
    def truth(self) -> list[TruthCrossing]:
        return load_truth(self.truth_file)

    def group(self, crossing: TruthCrossing) -> str:
        """The class group of a truth crossing (by line, direction and frame)."""
        for entry in self.document["lines"][crossing.line]["crossings"]:
            if (entry["direction"], int(entry["frame"])) == (crossing.direction, crossing.frame):
                return GROUPS.get(entry.get("class", "car"), "two-wheelers")
        raise KeyError(crossing)


Method = Callable[[Clip], list[CountedCrossing]]
"""Counts a clip: its crossings, frames in the clip's numbering."""


def line_flags(clip: Clip) -> list[str]:
    """``--line NAME:x1,y1,x2,y2`` for each line of a truth file."""
    flags = []
    for name, (start, end) in truth_lines(clip.document).items():
        flags += ["--line", f"{name}:{','.join(f'{value:g}' for value in (*start, *end))}"]
    return flags


def vpipe_method(precision: str, output: Path, config: Path | None) -> Method:
    """``vpipe run`` with the truth's lines at ``precision``, default settings or ``config``."""

    def count(clip: Clip) -> list[CountedCrossing]:
        out = output / precision / clip.label
        command = [sys.executable, "-m", "pipeline", "run", str(clip.path), *line_flags(clip)]
        command += ["--precision", precision, "--no-video", "--quiet", "--overwrite", "--output", str(out)]
        if config is not None:
            command += ["--config", str(config)]
        result = subprocess.run(command, cwd=REPO, env={**os.environ, "YOLO_OFFLINE": "1"}, check=False)
        if result.returncode not in (0, 3):
            raise SystemExit(f"vpipe failed on {clip.path} (exit {result.returncode})")
        return load_counted(out / "events.jsonl", frame_step=clip.step, truth_fps=clip.fps)

    return count


def methods(args: argparse.Namespace) -> dict[str, Method]:
    """The methods to evaluate, by label: vpipe at each precision, then the baselines."""
    precisions = {resolve_model(ModelConfig(precision=p), (640, 640)).precision: p for p in args.precision}
    found = {f"vpipe {label}": vpipe_method(p, args.output, args.config) for label, p in precisions.items()}
    if args.baselines:
        for label, precision in precisions.items():
            found[f"supervision {label}"] = lambda clip, p=precision: supervision_crossings(
                clip.path, truth_lines(clip.document), p, clip.step
            )
        found["ObjectCounter"] = lambda clip: object_counter_crossings(clip.path, truth_lines(clip.document), clip.step)
    return found


def wrong_direction(extra: CountedCrossing, truth: list[TruthCrossing]) -> bool:
    """Whether the truth crossing of the same line nearest in time went the other way: on a
    one-way line, any count against the traffic."""
    same_line = [t for t in truth if t.line == extra.line]
    if not same_line:
        return False
    return min(same_line, key=lambda t: abs(t.frame - extra.frame)).direction != extra.direction


def tally(clip: Clip, result: MatchResult, line: str | None = None) -> Counter[str]:
    """truth/matched per class group, extra and wrong-direction counts of a match (on one line, if given)."""
    counts: Counter[str] = Counter()
    for crossing in result.truth:
        if not crossing.ambiguous and line in (None, crossing.line):
            counts[f"truth {clip.group(crossing)}"] += 1
            counts["truth"] += 1
    for crossing, _ in result.matched:
        if line in (None, crossing.line):
            counts[f"matched {clip.group(crossing)}"] += 1
            counts["matched"] += 1
    for crossing in result.extra:
        if line in (None, crossing.line):
            counts["extra"] += 1
            counts["wrong direction"] += wrong_direction(crossing, result.truth)
    return counts


def clip_table(clips: list[Clip], results: dict[str, dict[str, MatchResult]]) -> str:
    """Markdown: per clip and line, the truth and each method's matched / missed / extra."""
    labels = list(next(iter(results.values())))
    rows = [f"| clip | line | truth | {' | '.join(labels)} |", f"|{'---|' * (3 + len(labels))}"]
    for clip in clips:
        for line in truth_lines(clip.document):
            cells = []
            for label in labels:
                counts = tally(clip, results[clip.name][label], line)
                cell = f"{counts['matched']} / {counts['truth'] - counts['matched']} / {counts['extra']}"
                wrong = counts["wrong direction"]
                cells.append(cell + (f" ({wrong} wrong direction)" if wrong else ""))
            truth = tally(clip, next(iter(results[clip.name].values())), line)["truth"]
            rows.append(f"| `{clip.name}` | {line} | {truth} | {' | '.join(cells)} |")
    return "\n".join(rows)


def totals_table(clips: list[Clip], results: dict[str, dict[str, MatchResult]]) -> str:
    """Markdown: per method, truth crossings matched per class group, extras and wrong-direction extras."""
    labels = list(next(iter(results.values())))
    totals = {label: sum((tally(clip, results[clip.name][label]) for clip in clips), Counter()) for label in labels}
    groups = [group for group in GROUP_ORDER if totals[labels[0]][f"truth {group}"]]
    header = ["method", *groups, "all", "extra", "wrong direction (of the extra)"]
    rows = [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}"]
    for label, total in totals.items():
        cells = [_share(total[f"matched {group}"], total[f"truth {group}"]) for group in groups]
        cells.append(_share(total["matched"], total["truth"]))
        cells.append(f"{total['extra']} ({total['extra'] / total['truth']:.1%} of the truth)")
        rows.append(f"| {label} | {' | '.join(cells)} | {total['wrong direction']} |")
    return "\n".join(rows)


def _share(part: int, whole: int) -> str:
    return f"{part} of {whole} ({part / whole:.1%})"


def write_docs(
    path: Path,
    clips: list[Clip],
    tables: tuple[str, str],
    command: str,
    baselines: bool,
    rates: dict[int, tuple[str, str]],
) -> None:
    """``docs/accuracy.md``: the corpus, how matching works, the two tables, the totals at each lower
    rate (``rates``: step to (frame rates, table)) and how to reproduce them."""
    truth = sum(not crossing.ambiguous for clip in clips for crossing in clip.truth)
    lower = "".join(f"\nOne frame in {step} of each clip ({fps}):\n\n{table}\n" for step, (fps, table) in rates.items())
    if lower:
        lower = f"""
## At lower frame rates

Each clip as a camera streaming at 1/N of its rate delivers it (every Nth frame, re-encoded), the
same truth, the window widened by the frame gap (from 0.2 s before the truth frame to 0.2 s plus
two frame gaps after it):
{lower}"""
    methods_text = "- **vpipe**: `vpipe run` with the truth file's lines and the default settings.\n"
    if baselines:
        methods_text += f"""\
- **supervision**: the same detections (vpipe's detector with the default model settings, at the
  same precision), tracked by Roboflow's `trackers.ByteTrackTracker` {version("trackers")} (where
  supervision's ByteTrack moved) with its defaults at the clip's frame rate, counted by one
  `sv.LineZone` per line on the box's bottom centre, vpipe's anchor (supervision {version("supervision")}).
- **ObjectCounter**: `ultralytics.solutions.ObjectCounter` {version("ultralytics")} as a new user runs it:
  `model=models/yolo11n.pt` (PyTorch fp32), `tracker="bytetrack.yaml"`, everything else default;
  one counter per line, since it has one region. It counts when the box centre crosses; each of
  its counts is timed when that track's bottom centre crosses the line, the point the truth was
  taken on, so that a count right for its vehicle is not judged by where its anchor sits.
  A vpipe count stands for the span from its `crossed_s` (when its anchor was on the line,
  interpolated between the sightings either side) to the frame that confirmed it.
  supervision's counts keep their own time, the frame that confirmed the crossing, which for
  small, slow vehicles (1 px a frame) can be outside the window although the count is right for
  its vehicle.

All three keep every class of the model. The baselines' in and out are mapped onto each line's
directions as vpipe names them (`scripts/corpus_baselines.py`).
"""
    path.write_text(
        f"""# Accuracy on the ground-truth corpus

The corpus: {len(clips)} clips of real traffic from public repositories, {truth} vehicle crossings counted
by eye without any detector; sources, licences and how each truth was made are in
[corpus/PROVENANCE.md](../corpus/PROVENANCE.md).

Matching is event by event (`pipeline.evaluation.match_crossings`): each counted crossing is paired
with at most one truth crossing of the same line and direction whose frame is from 0.2 s before to
0.2 s after it (rounded up to whole frames at the clip's rate; for a count that spans from its
anchor on the line to its confirmation, 0.2 s around that span), pairing as many as possible. A truth
crossing left unpaired is *missed*, a count left unpaired is *extra*, so a total that is right
only because a miss and an extra cancel shows up. An extra is *wrong direction* when the truth
crossing of its line nearest in time went the other way. Every method below is matched the same way.

{methods_text}
## Per clip and line

matched / missed / extra:

{tables[0]}

## Totals

Truth crossings matched per class group, and counts that match none:

{tables[1]}
{lower}
Reproduce with `{command}` (the clips: `python corpus/fetch.py`). Measured on {cpu_name()} ({os.cpu_count()} CPUs).
"""
    )


def load_clips(args: argparse.Namespace, step: int) -> list[Clip]:
    """The corpus clips to evaluate (those with a truth file, asked for and built), every ``step``-th
    frame of each (copies made once into ``<output>/clips/``)."""
    clips = []
    for truth_file in sorted(args.truth.glob("*.yaml")):
        document = read_yaml(truth_file, "truth file")
        path = args.clips / document["clip"]
        if args.only and truth_file.stem not in args.only:
            continue
        if not path.exists():
            print(f"skipped {truth_file.stem}: {path} not found (python corpus/fetch.py builds it)", file=sys.stderr)
            continue
        source = open_source(str(path))
        source.close()
        clip = Clip(truth_file.stem, path, truth_file, document, float(source.fps))
        if step > 1:
            clip = replace(clip, step=step)
            copy = args.output / "clips" / f"{clip.label}.mp4"
            if not copy.exists():
                copy.parent.mkdir(parents=True, exist_ok=True)
                subsample_clip(path, copy, step)
            clip = replace(clip, path=copy)
        clips.append(clip)
    return clips


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=Path, default=REPO / "corpus" / "clips", help="folder of the clips")
    parser.add_argument("--truth", type=Path, default=REPO / "corpus" / "truth", help="folder of the truth files")
    parser.add_argument("--config", type=Path, help="a vpipe config for vpipe's runs (its lines are the truth's)")
    parser.add_argument("--output", type=Path, default=REPO / "runs" / "corpus", help="run folders go here")
    parser.add_argument("--only", nargs="*", help="clip names to evaluate (default: all)")
    parser.add_argument("--precision", nargs="+", default=["auto"], choices=["auto", "fp32", "int8"])
    parser.add_argument("--baselines", action="store_true", help="also supervision's LineZone and ObjectCounter")
    parser.add_argument(
        "--frame-steps", type=int, nargs="+", default=[1], metavar="N", help="every Nth frame of a clip (1/N its rate)"
    )
    parser.add_argument("--write-docs", action="store_true", help=f"write the tables into {DOCS.relative_to(REPO)}")
    args = parser.parse_args(argv)
    if any(step < 1 for step in args.frame_steps):
        parser.error("--frame-steps: each N must be 1 or more")
    counters = methods(args)
    results: dict[int, tuple[list[Clip], dict[str, dict[str, MatchResult]]]] = {}
    for step in args.frame_steps:
        clips = load_clips(args, step)
        if not clips:
            print("error: no clip to evaluate", file=sys.stderr)
            return 2
        results[step] = clips, evaluate(clips, counters)
    first, *others = args.frame_steps
    clips, by_clip = results[first]
    tables = clip_table(clips, by_clip), totals_table(clips, by_clip)
    print(f"\nmatched / missed / extra per clip and line:\n{tables[0]}\n\n{len(clips)} clips, in total:\n{tables[1]}")
    rates = {step: (rates_of(results[step][0]), totals_table(*results[step])) for step in others}
    for step, (fps, table) in rates.items():
        print(f"\nevery {step} frames ({fps}), in total:\n{table}")
    if args.write_docs:
        command = shlex.join(["python", "scripts/eval_corpus.py", *(sys.argv[1:] if argv is None else argv)])
        write_docs(DOCS, clips, tables, command, args.baselines, rates)
        print(f"written {DOCS}")
    return 0


def evaluate(clips: list[Clip], counters: dict[str, Method]) -> dict[str, dict[str, MatchResult]]:
    """Each method's crossings on each clip, matched with the truth; prints each clip's tables."""
    results: dict[str, dict[str, MatchResult]] = {}
    for clip in clips:
        print(f"\n{clip.label} ({clip.fps / clip.step:g} fps)")
        results[clip.name] = {}
        for label, count in counters.items():
            result = match_crossings(clip.truth, count(clip), Tolerance.for_run(clip.fps, clip.step))
            results[clip.name][label] = result
            print(f"{label}:\n{format_table(result)}")
    return results


def rates_of(clips: list[Clip]) -> str:
    """The range of frame rates the clips run at, e.g. ``5-12 fps``."""
    rates = sorted(clip.fps / clip.step for clip in clips)
    return f"{rates[0]:.3g}-{rates[-1]:.3g} fps" if rates[0] != rates[-1] else f"{rates[0]:.3g} fps"


if __name__ == "__main__":
    sys.exit(main())
