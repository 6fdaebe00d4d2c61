"""Sphinx tweaks of the VAE Course book, loaded from _config.yml (``sphinx: local_extensions``).

1. Cross-references to re-exported names (the API reference, book/api.md).
2. A MathJax 2 shim for the saved ipywidgets: the HTML widget manager typesets widget labels
   with the MathJax 2 call ``MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])``; the book
   loads MathJax 3, where that call raises. The shim forwards it to ``MathJax.typesetPromise``.
3. Each script tag once: sphinx-thebe registers its inline configuration script again on an
   incremental build, and the repeated ``const`` declaration is a JavaScript error in the page.
4. Executing the chapters without nbclient's lost wake-ups (:mod:`vae_course.notebook_run`): the build's
   occasional 300 s stall in a widget cell.

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
    app.add_js_file(None, body=MATHJAX2_SHIM)
    app.connect("html-page-context", dedupe_scripts, priority=100)  # before handlers that stop the event
    return {"parallel_read_safe": True, "parallel_write_safe": True}
