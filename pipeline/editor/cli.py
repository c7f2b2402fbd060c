"""``vpipe edit SOURCE [--config FILE]``: draw lines, zones and parking bays on a frame in the browser."""

from __future__ import annotations

import argparse
import contextlib
import secrets
import sys
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any

EPILOG = """\
The page shows a frame of SOURCE with the config's lines (and their "in" arrow), lanes, zones
and parking slots; drag corners, add, rename, flip and delete them, and Save: the file is written
only if `vpipe run` would load it, keeping its other keys and comments.

examples:
  vpipe edit sample_videos/highway.mp4 --config configs/traffic.yaml
  vpipe edit rtsp://camera.local/stream --config site.yaml --port 8800
  vpipe edit lot.mp4 --config lot.yaml --host 0.0.0.0 --allow-remote-edits   # open the printed ?token= URL"""


def add_parser(commands: Any) -> None:
    """Add the ``edit`` subcommand to the CLI's subparsers."""
    edit = commands.add_parser(
        "edit",
        help="draw lines, zones and parking bays on a frame of SOURCE in the browser",
        description="Serve a local web page to edit the geometry of a config file on a frame of SOURCE.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    edit.add_argument("source", metavar="SOURCE", help="video file, image folder or glob, webcam index or stream URL")
    edit.add_argument(
        "--config", "-c", metavar="YAML", help="config file to edit, created if missing (default: <source name>.yaml)"
    )
    edit.add_argument("--port", type=int, default=8765, help="port of the page (default 8765; 0: any free port)")
    edit.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only)")
    edit.add_argument(
        "--allow-remote-edits",
        action="store_true",
        help="let other machines edit the config through a --host other than loopback (the page then needs the "
        "token printed at start)",
    )


def command_edit(args: argparse.Namespace) -> int:
    """Serve the editor until Ctrl-C (or SIGTERM)."""
    from pipeline.editor.frames import FrameGrabber
    from pipeline.editor.server import EditorServer
    from pipeline.editor.session import ConfigEditor
    from pipeline.errors import PipelineError
    from pipeline.io.live.local_http import is_loopback

    config = Path(args.config) if args.config else _default_config(args.source)
    remote = not is_loopback(args.host)
    if remote and not args.allow_remote_edits:
        raise PipelineError(
            f"--host {args.host} would let other machines edit {config}: add --allow-remote-edits to allow it "
            "(the page then asks for a token printed at start)"
        )
    token = secrets.token_urlsafe(24) if remote else None
    frames = FrameGrabber(args.source)
    editor = ConfigEditor(config, frames.width, frames.height)
    editor.state()  # a file that is not YAML is reported now, as one line
    with EditorServer(editor, frames, host=args.host, port=args.port, token=token) as server:
        if remote:
            print(
                f"vpipe: warning: config editor listens on {server.address}: anyone who can reach this machine and "
                f"has the token below can edit {config}",
                file=sys.stderr,
            )
        print(f"editing {config} on {frames.width}x{frames.height} frames of {frames.display_name}", file=sys.stderr)
        print(f"open {server.describe(f'?token={token}' if token else '')} (Ctrl-C to stop)", file=sys.stderr)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


def _default_config(spec: str) -> Path:
    """``<source name>.yaml`` in the working folder (``camera.yaml`` for a webcam or stream)."""
    name = Path(spec.rstrip("/")).stem
    return Path(f"{name if name and not spec.isdigit() and '://' not in spec else 'camera'}.yaml")


def start_editors(stack: ExitStack, specs: list[str], config: str | None) -> dict[str, str]:
    """Serve an editor for each source of a ``vpipe run --serve``, closed with ``stack``.

    Only files, folders and globs get one: a webcam opens once and the run holds it, and a second
    connection to a network camera at start could be refused or, for a dead camera, delay every
    other source (``vpipe edit URL`` edits a camera's geometry). Edits apply from the next run.
    The editors listen on 127.0.0.1 whatever ``--host`` says: the page is for watching, editing
    from elsewhere is ``vpipe edit --allow-remote-edits``.

    Returns:
        Link text -> the editor's URL on this machine, for :class:`~pipeline.io.live.view.LiveView`'s ``links``.
    """
    from pipeline.editor.frames import FrameGrabber
    from pipeline.editor.server import EditorServer
    from pipeline.editor.session import ConfigEditor
    from pipeline.errors import PipelineError

    links = {}
    for spec in specs:
        if spec.isdigit() or "://" in spec:
            continue
        try:
            frames = FrameGrabber(spec)
        except PipelineError:
            continue
        editor = ConfigEditor(Path(config) if config else _default_config(spec), frames.width, frames.height)
        server = stack.enter_context(EditorServer(editor, frames, host="127.0.0.1", port=0))
        links[f"edit lines and zones of {frames.display_name}"] = server.url
    return links
