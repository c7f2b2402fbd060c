"""Build the accuracy corpus's clips from their public sources, checked by hash.

Each clip in ``corpus/manifest.yaml`` names a file in a public GitHub repository at a fixed commit
and that file's sha256. This script downloads it (or takes it from ``--sources``, a folder of the
source files named by their sha256 or their repository basename, or from ``--mirror``, a folder of
git snapshots of the source repositories), checks the hash, and writes the
clip the truth files refer to: re-encoded to H.264 for the bundlable ones (every frame kept, same
frame rate), the source file unchanged for the others. Frame indices in ``corpus/truth/*.yaml`` are
those of the written clip, which has exactly the source's decoded frames.

Usage::

    python corpus/fetch.py                       # all clips into corpus/clips/
    python corpus/fetch.py --only motorway_osd_25fps --out /tmp/clips
    python corpus/fetch.py --sources ~/downloads  # offline, from files already downloaded
    python corpus/fetch.py --mirror /work/.mirror  # offline, from git snapshots <owner>+<name>/repo
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import urllib.request
from fractions import Fraction
from pathlib import Path

import av

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from pipeline.yaml_io import read_yaml  # noqa: E402

RAW_URL = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"


def sha256(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def mirrored_bytes(src: dict, mirror: Path) -> bytes | None:
    """The source file at its commit from a git snapshot ``mirror/<owner>+<name>[/repo]``, if there."""
    snapshot = mirror / src["repo"].replace("/", "+")
    # A snapshot is a bare git directory or a checkout's .git, with or without the repo/ level.
    for git_dir in (snapshot / "repo" / ".git", snapshot / "repo", snapshot / ".git", snapshot):
        if (git_dir / "objects").is_dir():
            show = ["git", "--git-dir", str(git_dir), "show", f"{src['commit']}:{src['path']}"]
            result = subprocess.run(show, capture_output=True, check=False)
            if result.returncode == 0:
                return result.stdout
    return None


def source_bytes(clip: dict, sources: Path | None, mirror: Path | None = None) -> bytes:
    """The clip's source file, from ``sources`` or ``mirror`` when they hold it, else downloaded; hash checked."""
    src = clip["source"]
    candidates = [sources / src["sha256"], sources / Path(src["path"]).name] if sources else []
    found = next((p for p in candidates if p.is_file()), None)
    mirrored = mirrored_bytes(src, mirror) if mirror and found is None else None
    if found is not None:
        data = found.read_bytes()
    elif mirrored is not None:
        data = mirrored
    else:
        url = RAW_URL.format(**src)
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                data = response.read()
        except OSError as exc:
            raise OSError(f"{clip['name']}: cannot download {url}: {exc}") from None
    if sha256(data) != src["sha256"]:
        raise ValueError(f"{clip['name']}: sha256 of {src['repo']}/{src['path']} is not {src['sha256']}")
    return data


def reencode(source: Path, target: Path, crf: int) -> int:
    """Re-encode every decoded frame of ``source`` to H.264 at the same rate; returns the frame count."""
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        stream_in = inp.streams.video[0]
        rate = Fraction(stream_in.average_rate).limit_denominator(1001)
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height = stream_in.width, stream_in.height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "slow"}
        frames = 0
        for frame in inp.decode(video=0):
            image = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
            image.pts = frames
            image.time_base = 1 / rate
            out.mux(stream.encode(image))
            frames += 1
        out.mux(stream.encode(None))
    return frames


def decoded_frames(path: Path) -> int:
    """How many frames ``path`` decodes to."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def build(clip: dict, out: Path, sources: Path | None, mirror: Path | None = None) -> Path:
    """Write one clip into ``out``; returns its path."""
    data = source_bytes(clip, sources, mirror)
    target = out / clip["file"]
    if clip["bundled"]:
        raw = out / f".{clip['name']}.source"
        raw.write_bytes(data)
        try:
            frames = reencode(raw, target, clip.get("crf", 23))
        finally:
            raw.unlink()
    else:
        target.write_bytes(data)
        frames = decoded_frames(target)
    if frames != clip["frames"]:
        raise ValueError(f"{clip['name']}: {frames} frames written, the truth expects {clip['frames']}")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "clips", help="folder for the clips (default corpus/clips)")
    parser.add_argument("--sources", type=Path, default=None, help="folder holding source files already downloaded")
    parser.add_argument("--mirror", type=Path, default=None, help="folder of git snapshots named <owner>+<name>")
    parser.add_argument("--only", action="append", default=[], help="build only this clip (repeatable)")
    args = parser.parse_args(argv)
    clips = read_yaml(HERE / "manifest.yaml", "corpus manifest")["clips"]
    unknown = set(args.only) - {c["name"] for c in clips}
    if unknown:
        print(f"error: no clip named {', '.join(sorted(unknown))} in corpus/manifest.yaml", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for clip in clips:
        if args.only and clip["name"] not in args.only:
            continue
        try:
            path = build(clip, args.out, args.sources, args.mirror)
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"{path} ({clip['frames']} frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
