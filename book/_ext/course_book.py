"""Sphinx tweaks of the VAE Course book, loaded from _config.yml (``sphinx: local_extensions``).

1. Cross-references to re-exported names (the API reference, book/api.md).
2. A MathJax 2 shim for the saved ipywidgets: the HTML widget manager typesets widget labels
   with the MathJax 2 call ``MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])``; the book
   loads MathJax 3, where that call raises. The shim forwards it to ``MathJax.typesetPromise``.
3. Each script tag once: sphinx-thebe registers its inline configuration script again on an
   incremental build, and the repeated ``const`` declaration is a JavaScript error in the page.
4. Executing the chapters without nbclient's lost wake-ups (:mod:`vae_course.notebook_run`): the build's
   occasional 300 s stall in a widget cell.
5. An alt text for every image (:class:`ImageAltText`). Diagrams carry their own (``:alt:`` of the figure
   directive), and a figure a chapter draws gets one from its code cell's metadata
   (``"mystnb": {"image": {"alt": "..."}}``, which myst-nb applies). An image with neither gets one made from
   what its cell says about it: a ``# alt: ...`` comment, else the titles the cell gives its plots, else the plotting
   functions it calls, with the section it belongs to.

Re-exported names. The package re-exports names: chapters call ``vc.plotting.image_grid``, which autodoc documents
where it is defined, ``vae_course.plotting.common.image_grid``. A cross-reference to the name a
reader uses (``vae_course.plotting.image_grid``, or with the chapters' alias
``vc.plotting.image_grid``) would be unresolved, which the nitpicky build (``-n -W``) reports as
an error. This extension, on Sphinx's ``missing-reference`` event:

1. resolves a reference to the one documented object of that name inside the named package
   (also for a bare name used in a module's own docstring, e.g. ``:func:`register_model```, and
   for a chapter's Markdown link ``[vc.plotting.image_grid](#vc.plotting.image_grid)``);
2. renders a reference to a real but undocumented module attribute (a constant such as
   ``SUM_TOL``, which autodoc cannot document without a ``#:`` comment) as plain code;

and leaves every other reference alone, so a reference to a name that does not exist still fails
the build.
"""
from __future__ import annotations

import importlib
import re
from functools import lru_cache

import nbformat
from docutils import nodes
from sphinx import addnodes

from vae_course import notebook_run
from sphinx.transforms.post_transforms import SphinxPostTransform

PACKAGE = "vae_course"


def _targets(node) -> list[str]:
    """Full names the reference may mean: as written, then relative to the current module/class."""
    target = node.get("reftarget", "").lstrip(".~")
    if target.startswith("vc."):
        target = PACKAGE + target[2:]
    module, cls = node.get("py:module") or "", node.get("py:class") or ""
    names = [target]
    if module and not target.startswith(PACKAGE + "."):
        if cls:
            names.append(f"{module}.{cls}.{target}")
        names.append(f"{module}.{target}")
    return [n for n in names if n.startswith(PACKAGE + ".")]


def _runtime_name(target: str) -> str | None:
    """Where the object that ``target`` names at run time is defined (``module.qualname``), if known."""
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
        return f"{module}.{qualname}" if isinstance(module, str) and isinstance(qualname, str) else None
    return None


def _documented(objects, target: str) -> list[str]:
    """Documented full names that ``target`` stands for: itself, the object it is at run time
    (a re-export from a submodule), or else the one object of that name in a submodule."""
    if target in objects:
        return [target]
    real = _runtime_name(target)
    if real in objects:
        return [real]
    package, _, name = target.rpartition(".")
    return sorted(full for full in objects
                  if full.startswith(package + ".") and full.rpartition(".")[2] == name
                  and full.count(".") == target.count(".") + 1)


def _exists(target: str) -> bool:
    """Whether ``target`` (``package.module.attr``) is a real attribute of an importable module."""
    module, _, attr = target.rpartition(".")
    try:
        return hasattr(importlib.import_module(module), attr)
    except ImportError:
        return False


def resolve_reexport(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    domain = env.get_domain("py")
    for target in _targets(node):
        found = _documented(domain.objects, target)
        if len(found) == 1 and found[0] != node.get("reftarget"):
            return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], found[0], node, contnode)
    for target in _targets(node):
        if _exists(target):
            return contnode
    return None


class MarkdownApiLinks(SphinxPostTransform):
    """Point a chapter's Markdown link ``[text](#vc.plotting.image_grid)`` at the documented object.

    MyST resolves ``#target`` links itself (before Sphinx's ``missing-reference`` event), so the
    target is rewritten to the documented full name just before MyST looks it up.
    """

    default_priority = 8  # MyST's resolver runs at 9

    def run(self, **kwargs) -> None:
        domain = self.env.get_domain("py")
        for node in self.document.findall(addnodes.pending_xref):
            if node.get("reftype") != "myst" or node.get("refdomain") == "doc":
                continue
            for target in _targets(node):
                found = _documented(domain.objects, target)
                if len(found) == 1:
                    node["reftarget"] = found[0]
                    break


_TITLE = re.compile(r"""(?:\btitle\s*=\s*|(?:set_title|suptitle|plt\.title)\(\s*)[rfbRFB]{0,2}(["'])(.+?)(?<!\\)\1""")
_PLOT_CALL = re.compile(r"\bvc\.plotting\.(?:diagrams\.)?([A-Za-z_]\w*)\s*\(")
_TEX_WRAPPED = re.compile(r"\\(?:mathcal|mathrm|mathbf|mathbb|operatorname|text|hat|bar|tilde)\{([^{}]*)\}")
_TEX_WORD = {"sim": "~", "mid": "|", "to": "->", "in": "in", "le": "<=", "ge": ">=", "approx": "~", "cdot": "*",
             "odot": "*", "times": "x", "infty": "infinity", "ne": "!="}


def plain_text(text: str) -> str:
    """A title as a screen reader should say it: TeX turned into words, f-string fields into "...", one line."""
    text = re.sub(r"\{[^{}]*\}(?=[^$]*(?:\$[^$]*\$[^$]*)*$)", "...", text) if "{" in text and "$" not in text else text
    text = _TEX_WRAPPED.sub(r"\1", text)
    text = re.sub(r"\\([A-Za-z]+)", lambda m: f" {_TEX_WORD[m.group(1)]} " if m.group(1) in _TEX_WORD else m.group(1), text)
    text = text.replace("$", "").replace("{", "").replace("}", "").replace("\\n", " ").replace("\\", "")
    return re.sub(r"\s+", " ", text).strip(" ,;:")


def alt_from_source(source: str, section: str = "") -> str:
    """The alt text of a figure drawn by a code cell that does not give one in its metadata.

    In order: a ``# alt: ...`` comment in the cell; the titles the cell gives its plots (``title=...``,
    ``set_title``, ``suptitle``), joined; the ``vc.plotting`` functions it calls, in words; with ``section``, the
    heading the figure sits under, added in every case after the first.
    """
    for line in source.splitlines():
        m = re.match(r"\s*#\s*alt:\s*(.+)", line)
        if m:
            return m.group(1).strip()
    where = f" (section {section})" if section else ""
    titles = [plain_text(m.group(2)) for m in _TITLE.finditer(source)]
    titles = [t for i, t in enumerate(titles) if t and t not in titles[:i]]
    if titles:
        return "Figure: " + "; ".join(titles) + where
    calls = [m.group(1) for m in _PLOT_CALL.finditer(source)]
    calls = [c for i, c in enumerate(calls) if c not in calls[:i]]
    if calls:
        return "Figure drawn by " + ", ".join(f"vc.plotting.{c}" for c in calls) + where
    return f"Figure of section {section}" if section else "Figure computed by the code cell above"


@lru_cache(maxsize=64)
def _notebook_sources(path: str) -> tuple[str, ...]:
    return tuple(cell.source for cell in nbformat.read(path, as_version=4).cells)


class ImageAltText(SphinxPostTransform):
    """Give every image an alt text (item 5 of the module docstring); a test checks the built pages."""

    default_priority = 100

    def run(self, **kwargs) -> None:
        for image in self.document.findall(nodes.image):
            if str(image.get("alt", "")).strip():
                continue
            figure = image.parent if isinstance(image.parent, nodes.figure) else None
            caption = next(iter(figure.findall(nodes.caption)), None) if figure is not None else None
            if caption is not None and caption.astext().strip():
                image["alt"] = caption.astext().strip()
                continue
            image["alt"] = alt_from_source(self._cell_source(image), self._section(image))

    def _cell_source(self, image) -> str:
        cell = image.parent
        while cell is not None and cell.get("nb_element") != "cell_code":
            cell = cell.parent
        if cell is None:
            return ""
        source = self.document.get("source", "")
        if source.endswith(".ipynb") and isinstance(cell.get("cell_index"), int):
            return _notebook_sources(source)[cell["cell_index"]]
        block = next(iter(cell.findall(nodes.literal_block)), None)
        return block.astext() if block is not None else ""

    @staticmethod
    def _section(image) -> str:
        node = image.parent
        while node is not None and not isinstance(node, nodes.section):
            node = node.parent
        title = next(iter(node.findall(nodes.title)), None) if node is not None else None
        return title.astext().strip() if title is not None else ""


# Runs after the deferred MathJax 3 script (DOMContentLoaded comes after deferred scripts) and
# before the widget manager renders (it waits for the window's load event).
MATHJAX2_SHIM = """document.addEventListener("DOMContentLoaded", () => {
  const mj = window.MathJax;
  if (!mj || !mj.startup || mj.Hub) return;
  mj.Hub = {Queue: (...commands) => {
    for (const c of commands) {
      if (Array.isArray(c) && c[0] === "Typeset" && c[2]) {
        mj.startup.promise.then(() => mj.typesetPromise([c[2]])).catch(err => console.warn("MathJax:", err));
      }
    }
  }};
});"""


def dedupe_scripts(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for js in context.get("script_files", []):
        # the same inline script is registered once with filename None and once with ""
        key = (str(getattr(js, "filename", js) or ""), tuple(sorted((k, str(v)) for k, v in getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"][:] = unique


def setup(app):
    notebook_run.install()  # the chapters execute in this process: no lost wake-ups (vae_course.notebook_run)
    app.connect("missing-reference", resolve_reexport)
    app.add_post_transform(MarkdownApiLinks)
    app.add_post_transform(ImageAltText)
    app.add_js_file(None, body=MATHJAX2_SHIM)
    app.connect("html-page-context", dedupe_scripts, priority=100)  # before handlers that stop the event
    return {"parallel_read_safe": True, "parallel_write_safe": True}
