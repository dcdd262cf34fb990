"""Serve every script the book needs from the site itself, one copy per site.

- plotly.js, copied from the installed ``plotly`` package, is loaded in every page's head,
  so figures made with ``toybook.plotting.use_book_renderer`` render with no network;
- the circuitsvis bundle (``circuitsvis/dist/cdn/iife.js``) is added only to pages that
  contain a view made by ``toybook.attention_view``;
- MathJax 3 and Thebe 0.9 come from the npm registry at build time (``npm pack``, cached
  in ``~/.cache/toybook/npm`` or ``$TOYBOOK_NPM_CACHE``); Sphinx's ``mathjax_path`` and
  sphinx-thebe's ``THEBE_JS_URL`` point at the local copies;
- ``toybook-thebe.js`` adapts sphinx-thebe 0.3 (written for Thebe 0.8) to Thebe 0.9 and
  lets a local Jupyter server stand in for Binder (see ``toybook.live``);
- the "try it" widget (``toybook.browser``): every shipped model as an ONNX graph in
  ``_static/toybook-models`` (``toybook.export``), the widget's script (``toybook-try.js``
  with each task's ``widget.js`` appended) and style on the pages that show one, and
  onnxruntime-web's WebAssembly build in ``_static/vendor/ort``, which the widget fetches
  only when a reader opens it. Only that one runtime variant is copied (``ORT_FILES``).

Everything is staged outside the book's own ``_static`` folder: Jupyter Book adds every
script found under ``_static`` to every page. Inline scripts that Sphinx 7.4 registers
twice (sphinx-thebe's, togglebutton's) are de-duplicated per page; declared twice they
throw ``Identifier 'THEBE_JS_URL' has already been declared``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import circuitsvis
import plotly
from sphinx.errors import ExtensionError

from toybook import browser
from toybook.attention_view import CSS_CLASS
from toybook.export import export_shipped

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
CIRCUITSVIS_JS = Path(circuitsvis.__file__).parent / "dist" / "cdn" / "iife.js"
HERE = Path(__file__).parent
NPM_PACKAGES = {"mathjax": "3.2.2", "thebe": "0.9.3", "onnxruntime-web": "1.31.1"}
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
MATHJAX_PARTS = ("tex-mml-chtml.js", "input", "output", "ui", "a11y", "adaptors", "sre")
MATHJAX_JS = "vendor/mathjax/es5/tex-mml-chtml.js"
THEBE_JS = "vendor/thebe/lib/index.js"


def npm_cache() -> Path:
    return Path(os.environ.get("TOYBOOK_NPM_CACHE", Path.home() / ".cache" / "toybook" / "npm"))


def npm_package(name: str, version: str) -> Path:
    """The unpacked npm package ``name@version`` (fetched once with ``npm pack``)."""
    target = npm_cache() / f"{name}-{version}"
    if (target / "package.json").exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise ExtensionError(
            f"the book serves {name}@{version} from the site itself and fetches it from the npm "
            "registry at build time, but `npm` is not installed (apt-get install npm)"
        )
    with tempfile.TemporaryDirectory() as scratch:
        result = subprocess.run(
            [npm, "pack", f"{name}@{version}", "--pack-destination", scratch],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise ExtensionError(f"npm pack {name}@{version} failed:\n{result.stderr[-2000:]}")
        archive = next(Path(scratch).glob("*.tgz"))
        with tarfile.open(archive) as tar:
            tar.extractall(scratch, filter="data")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(str(Path(scratch) / "package"), target)
    return target


def stage_assets(app) -> None:
    staging = Path(app.doctreedir).parent / "offline_assets"
    vendor = staging / "vendor"
    vendor.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PLOTLY_JS, vendor / "plotly.min.js")
    shutil.copyfile(CIRCUITSVIS_JS, vendor / "circuitsvis.js")
    shutil.copyfile(HERE / "toybook-thebe.js", vendor / "toybook-thebe.js")
    shutil.copyfile(HERE / "toybook-thebe.css", vendor / "toybook-thebe.css")
    mathjax = npm_package("mathjax", NPM_PACKAGES["mathjax"]) / "es5"
    for part in MATHJAX_PARTS:
        source, target = mathjax / part, vendor / "mathjax" / "es5" / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copyfile(source, target)
    thebe = npm_package("thebe", NPM_PACKAGES["thebe"]) / "lib"
    shutil.copytree(thebe, vendor / "thebe" / "lib", dirs_exist_ok=True)
    ort = npm_package("onnxruntime-web", NPM_PACKAGES["onnxruntime-web"]) / "dist"
    (vendor / "ort").mkdir(exist_ok=True)
    for name in ORT_FILES:
        shutil.copyfile(ort / name, vendor / "ort" / name)
    widget = [(HERE / "toybook-try.js").read_text()]
    widget += [f"// {path.parent.name}/widget.js\n{path.read_text()}" for path in browser.task_scripts()]
    (vendor / "toybook-try.js").write_text("\n".join(widget))
    shutil.copyfile(HERE / "toybook-try.css", vendor / "toybook-try.css")
    export_shipped(staging / "toybook-models")
    app.config.html_static_path.append(str(staging))
    app.add_js_file("vendor/plotly.min.js", priority=200)
    app.add_js_file("vendor/toybook-thebe.js", priority=600)
    app.add_css_file("vendor/toybook-thebe.css")


def configure(app, config) -> None:
    """Local MathJax; a favicon (else browsers ask for a missing /favicon.ico); an explicit
    colour mode (an empty one makes the theme log an error on every first visit)."""
    config.mathjax_path = MATHJAX_JS
    if not config.html_favicon:
        config.html_favicon = str(HERE / "favicon.svg")
    config.html_context = {"default_mode": "auto", **(config.html_context or {})}


def per_page_scripts(app, pagename, templatename, context, doctree) -> None:
    if CSS_CLASS in context.get("body", ""):
        app.add_js_file("vendor/circuitsvis.js", priority=200)
    if f'class="{browser.CSS_CLASS}"' in context.get("body", ""):
        app.add_js_file("vendor/toybook-try.js", priority=600)
        app.add_css_file("vendor/toybook-try.css")
    pathto = context["pathto"]
    unique, seen = [], set()
    for script in context.get("script_files", []):
        body = script.attributes.get("body") if hasattr(script, "attributes") else None
        key = (str(getattr(script, "filename", script) or ""), body)  # None and "" both mean inline
        if key in seen:
            continue
        seen.add(key)
        if body and "THEBE_JS_URL" in body:
            local = pathto(f"_static/{THEBE_JS}", 1)
            body = body.replace(body.split(";")[0], f'const THEBE_JS_URL = "{local}"')
            attributes = {**script.attributes, "body": body}
            script = type(script)(script.filename, priority=script.priority, **attributes)
        unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("config-inited", configure)
    app.connect("builder-inited", stage_assets)
    app.connect("html-page-context", per_page_scripts, priority=900)  # after other extensions
    return {"parallel_read_safe": True, "parallel_write_safe": True}
