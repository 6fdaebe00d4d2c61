"""The grader's judge: the instructor's checks run on the student's definitions in a fresh process.

:func:`judge` starts ``python -m vae_course.grade.judge`` in a temporary folder and sends it a job on its standard
input: the notebook's name, the instructor's setup cell, the kept definitions of the submission
(:mod:`vae_course.grade.answers`), the exercises to judge, and a random token. The child

1. imports the checks and takes its own references to the check functions, then records the attributes of the
   ``vae_course`` modules and of ``torch``, ``torch.nn.functional``, ``torch.Tensor``, ``math``, ``numpy`` and
   ``builtins`` (:func:`vae_course.checks._guard.snapshot`);
2. sends its standard output and error to ``/dev/null`` (what the student's code prints goes nowhere) and keeps a
   private copy of the output channel;
3. runs the setup, then each kept definition (one that raises is reported for the exercise it defines);
4. runs each exercise's check on the student's function, class or number, and afterwards compares the recorded
   attributes: if the student's code replaced one (a check, ``torch.allclose``, ...), the exercise fails
   ("your code changed ...") and the attributes are put back before the next one;
5. writes one line per exercise, the token followed by the result's JSON record.

The parent reads the lines with a time limit per exercise; an exercise whose check outlives it (``timeout``) or
kills the process (``os._exit``, a crash, memory) is failed, and a new child carries on with the rest. Nothing
the notebook displayed is read. This guards against a notebook that lies about itself, not against hostile
code in the student's own functions: grade in a container or a throwaway account.
"""
from __future__ import annotations

import json
import os
import queue
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["judge", "main", "PROTECTED"]

PROTECTED = ("torch", "torch.nn", "torch.nn.functional", "torch.linalg", "torch.special", "torch.distributions",
             "torch.Tensor", "torch.nn.Module", "math", "numpy", "builtins")


def _record(status: str, message: str, **extra) -> dict:
    return {"status": status, "message": message, "measured": None, "band": "", **extra}


def judge(notebook: str, setup: str, sources: list[tuple[str, str]], todo: list[dict], *, strict: int | None = None,
          timeout: float = 300.0) -> dict[str, dict]:
    """Judge the exercises ``todo`` (``{"id", "value_source", "problem"}`` dicts, in notebook order) of a submission of
    ``notebook``; returns ``{exercise id: record}`` (``status``, ``message``, ``measured``, ``band``)."""
    results: dict[str, dict] = {}
    remaining = list(todo)
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "MPLBACKEND": "Agg"}
    while remaining:
        token = secrets.token_hex(16)
        job = {"token": token, "notebook": notebook, "setup": setup, "sources": sources, "todo": remaining,
               "strict": strict}
        with tempfile.TemporaryDirectory(prefix="vae-course-judge-") as workdir:
            proc = subprocess.Popen([sys.executable, "-m", "vae_course.grade.judge"], cwd=workdir, env=env,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            lines: queue.Queue = queue.Queue()
            threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
            try:
                proc.stdin.write(json.dumps(job))
                proc.stdin.close()
            except OSError:
                pass
            done = 0
            for item in remaining:
                record = _next_record(lines, token, timeout)
                if record is None or record == "eof":
                    what = (f"the check was still running after {timeout:g} s (an endless loop, or far too slow)"
                            if record is None else "the check process died while running your code (os._exit, a "
                                                   "crash, or out of memory)")
                    results[item["id"]] = _record("timeout" if record is None else "fail", what)
                    done += 1
                    break
                results[item["id"]] = record
                done += 1
            proc.kill()
            proc.wait()
        remaining = remaining[done:]
    return results


def _pump(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put("")  # end of the stream


def _next_record(lines: queue.Queue, token: str, timeout: float):
    """The next result line carrying ``token``: its record, ``"eof"`` if the child ended, None on a timeout."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            return None
        if line == "":
            return "eof"
        if line.startswith(token):
            try:
                return json.loads(line[len(token):])
            except json.JSONDecodeError:
                continue


# ---------------------------------------------------------------- the child
def _child() -> None:
    job = json.loads(sys.stdin.read())
    token = job.pop("token")
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    sys.stdout = sys.stderr = open(os.devnull, "w", encoding="utf-8")

    import torch  # noqa: F401  (loaded before the snapshot, with the checks)

    from ..checks import FAIL, CheckResult, exercises_for, set_strict
    from ..checks import _guard
    from .answers import safe_number

    def send(record: dict) -> None:
        channel.write(token + json.dumps(record) + "\n")
        channel.flush()

    exercises = {e.id: e for e in exercises_for(job["notebook"])}
    checks = {i: exercises[i].check for i in exercises}  # our own references, taken before any student code runs
    set_strict(job.get("strict"))
    namespace: dict = {"__name__": "__submission__"}
    try:
        exec(compile(job["setup"], "<setup>", "exec"), namespace)  # noqa: S102 (the instructor's setup cell)
    except Exception as err:  # the reference's setup failed: nothing can be judged
        for item in job["todo"]:
            send(_record(FAIL, f"the instructor's setup cell raised {type(err).__name__}: {err}"))
        return
    before = _guard.snapshot(PROTECTED)
    errors: dict[str, str] = {}
    for name, source in job["sources"]:
        try:
            exec(compile(source, "<your notebook>", "exec"), namespace)  # noqa: S102 (the student's definitions)
        except Exception as err:
            errors[name] = f"defining it raised {type(err).__name__}: {err}"
    tampered = _guard.changes(before)
    _guard.restore(before)
    for item in job["todo"]:
        e = exercises[item["id"]]
        if tampered:
            send(_record(FAIL, f"your notebook's definitions changed the course's code ({', '.join(tampered[:3])}) "
                               "while it was being graded; nothing is graded."))
            continue
        if item.get("problem"):
            send(_record(FAIL, item["problem"]))
            continue
        if e.kind == "value":
            try:
                obj = safe_number(item["value_source"]) if item.get("value_source") else None
            except ValueError as err:
                send(_record(FAIL, str(err)))
                continue
        else:
            obj = namespace.get(e.function)
            if obj is None:
                why = errors.get(e.function, f"no `{e.function}` is defined in your notebook (a def or class at the "
                                             "top of a code cell)")
                send(_record(FAIL, f"`{e.function}`: {why}."))
                continue
        try:
            result = checks[item["id"]](obj)
        except Exception as err:  # a check never raises on student code; this is a bug in the check
            result = CheckResult(e.name, FAIL, f"the check itself raised {type(err).__name__}: {err}")
        changed = _guard.changes(before)
        if changed:
            _guard.restore(before)
            result = CheckResult(e.name, FAIL, f"your code changed the course's code or torch ({', '.join(changed[:3])}) "
                                               "while it was being checked; the exercise is not graded.")
        send(result.record())


def main() -> None:
    _child()


if __name__ == "__main__":
    main()
