"""Vendor Vega, Vega-Lite and vega-embed from the npm registry and build DVC's offline plots template.

``dvc plots show`` and ``dvc plots diff`` write an HTML page whose stock
template loads the three libraries from a public CDN, so the page is blank
without internet. ``.dvc/config`` points ``plots.html_template`` at
``dvc-plots.html`` beside this file instead, which carries the three pinned
builds inline. Inline rather than ``<script src=...>`` because DVC writes the
page wherever ``-o`` says (``dvc_plots/`` by default) and only copies images
next to it: a relative path to ``vendor/`` would break as soon as the page is
written elsewhere, moved, or kept as a CI artifact.

Usage, from the project root::

    python vendor/vega/update.py fetch      # npm pack the pinned versions, copy build + LICENSE, rebuild
    python vendor/vega/update.py template   # rebuild dvc-plots.html from the vendored files
    python vendor/vega/update.py check      # exit 1 if files or template differ from versions.json

To move to new versions, edit ``PINS`` and run ``fetch``; then run the browser
test (tests/test_browser.py), which renders DVC's templates with them.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "dvc-plots.html"
VERSIONS = HERE / "versions.json"

# name -> (version, file inside the npm package). Load order matters: vega-lite
# and vega-embed find `vega` (and `vegaLite`) as globals set by the UMD builds.
PINS: dict[str, tuple[str, str]] = {
    "vega": ("6.4.0", "build/vega.min.js"),
    "vega-lite": ("6.5.0", "build/vega-lite.min.js"),
    "vega-embed": ("7.3.0", "build/vega-embed.min.js"),
}

# DVC fills in these placeholders with str.replace, so the inlined code must not contain them.
PLACEHOLDERS = ("{plot_divs}", "{scripts}", "{refresh_tag}")
SOURCE_MAP = re.compile(r"^//# sourceMappingURL=\S*\s*$", re.MULTILINE)

# DVC's templates declare Vega-Lite v5 in `$schema`; vega-embed 7 logs a console
# warning for every plot whose declared major version differs from the library's.
# Vega-Lite 6 renders these specs unchanged (tests/test_browser.py checks it
# with DVC's own templates), so the declared version is updated before embedding.
SHIM = """\
(function () {
  var embed = window.vegaEmbed;
  var v5 = /\\/vega-lite\\/v5(\\.[0-9]+)*\\.json$/;
  window.vegaEmbed = Object.assign(function (el, spec, opts) {
    if (spec && typeof spec.$schema === "string" && v5.test(spec.$schema)) {
      spec = Object.assign({}, spec, {$schema: "https://vega.github.io/schema/vega-lite/v6.json"});
    }
    return embed(el, spec, opts);
  }, embed);
})();"""

STYLE = """\
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; margin: 16px; }
table { border-spacing: 15px; }"""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(name: str) -> tuple[Path, Path]:
    """Where the build and the licence of package ``name`` live in this folder."""
    return HERE / name / Path(PINS[name][1]).name, HERE / name / "LICENSE"


def fetch() -> None:
    """``npm pack`` each pinned package and copy its minified build and LICENSE here."""
    record: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (version, member) in PINS.items():
            out = subprocess.run(
                ["npm", "pack", f"{name}@{version}", "--json", "--pack-destination", tmp],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            info = json.loads(out)[0]
            build, licence = _files(name)
            build.parent.mkdir(parents=True, exist_ok=True)
            with tarfile.open(Path(tmp) / info["filename"]) as tar:
                for src, dst in ((member, build), ("LICENSE", licence)):
                    fh = tar.extractfile(f"package/{src}")
                    if fh is None:
                        raise SystemExit(f"{name}@{version}: package/{src} is missing from the npm package")
                    dst.write_bytes(fh.read())
            record[name] = {
                "version": version,
                "npm_integrity": info["integrity"],
                "from": f"package/{member}",
                "files": {p.relative_to(HERE).as_posix(): _sha256(p) for p in (build, licence)},
            }
    VERSIONS.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    TEMPLATE.write_text(build_template(), encoding="utf-8")


def build_template() -> str:
    """The HTML template for ``dvc plots``, with the vendored builds inline.

    It has no ``{scripts}`` placeholder on purpose: that is where DVC would put
    its CDN ``<script src>`` tags.
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        "{refresh_tag}",
        "<title>DVC plots</title>",
        "<!-- Generated by vendor/vega/update.py; do not edit. It works offline: it has no placeholder",
        "     for DVC's CDN script tags, and carries the three libraries inline. -->",
    ]
    for name, (version, _) in PINS.items():
        build, _licence = _files(name)
        # The source map is not vendored; its comment would only make DevTools look for it.
        code = SOURCE_MAP.sub("", build.read_text(encoding="utf-8"))
        bad = [p for p in (*PLACEHOLDERS, "</script", "<!--") if p.lower() in code.lower()]
        if bad:
            raise SystemExit(f"{build}: contains {bad[0]!r}; it cannot be inlined into the template as is")
        parts.append(f"<!-- {name} {version} from the npm registry; licence: vendor/vega/{name}/LICENSE -->")
        parts.append(f"<script>{code.rstrip()}</script>")
    parts += [
        f"<script>\n{SHIM}\n</script>",
        f"<style>\n{STYLE}\n</style>",
        "</head>",
        "<body>",
        "{plot_divs}",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)


def check() -> list[str]:
    """Differences between the vendored files, versions.json, PINS and the template; empty when in sync."""
    problems: list[str] = []
    record = json.loads(VERSIONS.read_text(encoding="utf-8"))
    if {k: v["version"] for k, v in record.items()} != {k: v[0] for k, v in PINS.items()}:
        problems.append("versions.json does not match PINS; run `update.py fetch`")
    for name, entry in record.items():
        for rel, digest in entry["files"].items():
            path = HERE / rel
            if not path.is_file():
                problems.append(f"{rel}: missing")
            elif _sha256(path) != digest:
                problems.append(f"{rel}: sha256 differs from versions.json")
        if name not in PINS:
            problems.append(f"versions.json: {name} is not pinned")
    if not problems and (not TEMPLATE.is_file() or TEMPLATE.read_text(encoding="utf-8") != build_template()):
        problems.append("dvc-plots.html is out of date; run `update.py template`")
    return problems


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    if command == "fetch":
        fetch()
    elif command == "template":
        TEMPLATE.write_text(build_template(), encoding="utf-8")
    elif command == "check":
        problems = check()
        for p in problems:
            print(f"vendor/vega: {p}", file=sys.stderr)
        return 1 if problems else 0
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
