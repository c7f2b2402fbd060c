"""``vpipe edit``: a local web page to draw a config's lines, lanes, zones and parking bays on a frame of the source.

- :mod:`pipeline.editor.document`: the YAML round trip (other keys and comments kept);
- :mod:`pipeline.editor.session`: what the page loads and saves, validated as ``vpipe run`` does;
- :mod:`pipeline.editor.frames`: frames of the source on request;
- :mod:`pipeline.editor.preview`: the config's detector on the frame shown, with each object's anchor;
- :mod:`pipeline.editor.server`: the HTTP server and its guards; ``static/`` holds the page;
- :mod:`pipeline.editor.cli`: the subcommand, and the editors ``vpipe run --serve`` links to.
"""
