"""Run one probe on a student's code in a child process that cannot reach the references, the marker or the class.

The child is ``python -I -S -c BOOT``: isolated mode (no ``PYTHON*``
variables, no user site, not the current folder) and no site-packages at all,
so neither ``scratchvae`` nor anything else installed is importable. ``BOOT``
first sets the child's resource limits (in the child, before any code of the
student's runs: no code runs between fork and exec in the marker, so it may
start children from several threads), then
puts three folders before the standard library on its path, and nothing more:
the probes (:mod:`scratchvae.classroom.probes`, copied), a folder holding
NumPy, and the scratch copy of the submission. It runs in a fresh scratch copy
of the submission (its regular ``.py`` files, copied without following a
link, see :func:`copy_submission`), in a new session, with

* a wall-clock limit (the parent kills the whole process group),
* a CPU-time limit (``RLIMIT_CPU``: the kernel stops it),
* a memory limit (``RLIMIT_AS``: NumPy raises ``MemoryError``, or the child dies),
* an output limit (``RLIMIT_FSIZE`` on every file it writes, its stdout and
  stderr included, which go to files, never to a pipe the parent must drain).

And it runs in a sandbox made by bubblewrap (``bwrap``, Linux only; the
command line is :func:`bwrap_arguments`):

* its own user namespace, as uid 65534 with no capabilities, and no further
  user namespaces;
* its own PID namespace: it sees only its own processes (``os.getppid()`` is
  bwrap's init, PID 1, which ignores its signals), so it cannot signal the
  marker or read its ``/proc``; and when it ends, or the marker kills it or
  dies, every process it started is killed with it;
* its own network (a loopback of its own, nothing else), IPC and host name;
* a file system made of nothing but ``/usr`` (and ``/lib``...) and the
  loader's cache, read-only; the Python installation, read-only, with every
  ``site-packages`` hidden; NumPy; and, under ``/marking``, the probes, the
  case, the scratch copy (``work``) and the folder for its reports
  (``results``). Those two and a small private ``/tmp`` are all it can write.
  The marker's files, the other submissions, the handout, the repository
  holding ``scratchvae`` and the rest of ``/etc`` and ``/home`` are not there.

It reports what the student's code computed, section by section
(:mod:`scratchvae.classroom.probes`); the parent reads those reports as plain
arrays (no pickles, regular files only, size-checked) and never runs any code
from them; the text of an exception is cut to one line, without paths outside
the scratch copy (:func:`clean`). Where bubblewrap cannot run,
``run_child(..., sandbox=True)`` raises :class:`SandboxUnavailable`;
``sandbox=False`` runs the child with the limits only, which is not a
security sandbox: it runs as the marker's user, can read and write what that
user can, open sockets and signal the marker.
Guide: docs/exercises.md#limits
"""

import functools
import json
import os
import re
import shutil
import signal
import site
import stat
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

import scratchvae
from scratchvae.classroom import probes

__all__ = ["Limits", "ChildResult", "run_child", "Submission", "AsUser", "SandboxUnavailable", "Stopped",
           "sandbox_problem", "require_sandbox", "bwrap_arguments", "copy_submission", "clean", "printable",
           "stop_children", "allow_children", "MAX_FILE", "MAX_FILES"]

MB = 1 << 20
BOOT = ("import resource as r, sys; cpu, memory, output = map(int, sys.argv[5:8]); "
        "r.setrlimit(r.RLIMIT_CPU, (cpu, cpu + 1)); r.setrlimit(r.RLIMIT_AS, (memory, memory)); "
        "r.setrlimit(r.RLIMIT_FSIZE, (output, output)); r.setrlimit(r.RLIMIT_CORE, (0, 0)); "
        "sys.path[:0] = sys.argv[2:5]; import probes; probes.main(sys.argv[1])")
INSIDE = Path("/marking")  # the child's folders, as it sees them in the sandbox
NOBODY = "65534"  # the uid and gid the child has in the sandbox
PRIVATE_TMP = 64 * MB  # the size of the child's own /tmp (memory)
MAX_FILE = 1 * MB  # a submitted file larger than this is not copied
MAX_FILES = 500  # entries of a submitted project looked at, at most
MESSAGE = 500  # characters of an exception's text kept for the feedback
ELSEWHERE = "it is Linux-only: on macOS or Windows, mark on a Linux machine or virtual machine"
INSTALL = f"install it (apt-get install bubblewrap, dnf install bubblewrap, pacman -S bubblewrap); {ELSEWHERE}"


class Limits(NamedTuple):
    """What one child may use. The defaults fit the probes many times over."""

    wall: float = 20.0  # seconds of wall-clock time
    cpu: int = 10  # seconds of CPU time
    memory: int = 1024 * MB  # bytes of address space
    output: int = 8 * MB  # bytes per file written, stdout and stderr included


class Submission(NamedTuple):
    """A student's work: a handout project (a folder holding ``package``), or one ``.py`` file."""

    name: str  # as the CSV and the feedback name it: printable (see printable)
    path: Path
    package: str = None  # "studentvae" for a project; None for a single file


class ChildResult(NamedTuple):
    """What came back: each finished section's arrays, and how the child ended (``""`` if normally)."""

    sections: dict
    ending: str
    output: str  # the start of what it printed, for the feedback (cleaned)
    notes: tuple = ()  # what of the submission was not copied, and why
    sandboxed: bool = False


class AsUser(NamedTuple):
    """``run_child``'s ``sandbox`` for a marker running as root where bubblewrap cannot run (the
    Gradescope autograder's container): no sandbox, but the child runs as this unprivileged user,
    which can write only its scratch copy and its reports, and cannot signal the marker."""

    uid: int
    gid: int


class SandboxUnavailable(RuntimeError):
    """Marks that count were asked for, and bubblewrap cannot sandbox a child here."""


class Stopped(RuntimeError):
    """Marking was stopped (:func:`stop_children`): this child was ended, or never started."""


# --- Names and messages -------------------------------------------------------------


def printable(text):
    """``text`` safe to print, to name a file and to put in a CSV: bytes that are not UTF-8
    (a name read from disk) as ``\\xNN``, control characters escaped (``\\n``, ``\\x1b``)."""
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        pass
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


_STOP = "\\s'\"`,;:()\\[\\]{}<>"  # characters that end a path in a message
_ABSOLUTE = re.compile(f"(?<![\\w.~/-])/[^{_STOP}]+")


def clean(text, roots=(), limit=MESSAGE):
    """``text`` fit for the feedback: one printable line of at most ``limit`` characters in which
    a path in the scratch copy (under one of ``roots``) is shown relative to it, and any other
    absolute path is ``<path>``."""
    text = " ".join(str(text).split())
    for root in roots:
        root = re.escape(str(root).rstrip("/"))
        text = re.sub(f"(?<![\\w.~/-]){root}/", "", text)
        text = re.sub(f"(?<![\\w.~/-]){root}(?=[{_STOP}]|$)", ".", text)
    text = printable(_ABSOLUTE.sub("<path>", text))
    return text if len(text) <= limit else text[:limit - 3] + "..."


# --- The scratch copy ---------------------------------------------------------------


def _kind(mode):
    """What a file that is not copied is, in words."""
    for test, word in ((stat.S_ISLNK, "a symbolic link, not followed"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return word
    return "not a regular file"


def _copy_file(source, target):
    """Copy one regular file of at most MAX_FILE bytes, following no link and opening nothing
    else (not a FIFO, not a device); None, or why it was not copied."""
    try:
        mode = os.lstat(source).st_mode
        if not stat.S_ISREG(mode):
            return _kind(mode)
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        return f"could not be read ({err.strerror})"
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # replaced since it was looked at
            return "not a regular file"
        data = f.read(MAX_FILE + 1)
    if len(data) > MAX_FILE:
        return f"larger than {MAX_FILE // MB} MB"
    Path(target).write_bytes(data)
    return None


def copy_submission(submission, root):
    """Copy the submission's ``.py`` files under ``root``, where the child runs; return notes on what was left out.

    Only regular files are copied (at most MAX_FILE bytes each, and MAX_FILES
    entries in all), and no symbolic link is followed: a link, a FIFO, a device
    or a socket is left out with a note for the feedback (``"studentvae/x.py:
    a FIFO"``). A single file becomes ``student.py``; a project's package keeps
    its layout, and any name works, bytes that are not UTF-8 included.
    """
    notes = []
    if submission.package is None:
        why = _copy_file(submission.path, root / "student.py")
        return [f"{printable(Path(submission.path).name)}: {why}"] if why else []
    base = Path(submission.path)
    if os.path.islink(base):
        return [f"{printable(base.name)}: {_kind(stat.S_IFLNK)}"]
    pending, looked = [Path(submission.package)], 0
    while pending:
        relative = pending.pop()
        source, looked = base / relative, looked + 1
        if looked > MAX_FILES:
            notes.append(f"{printable(str(relative.parent))}: more than {MAX_FILES} files and folders; "
                         "the rest was not copied")
            break
        try:
            mode = os.lstat(source).st_mode
        except OSError as err:
            notes.append(f"{printable(str(relative))}: could not be read ({err.strerror})")
            continue
        if stat.S_ISDIR(mode):
            try:
                names = sorted(os.listdir(source), reverse=True)
            except OSError as err:
                notes.append(f"{printable(str(relative))}: could not be read ({err.strerror})")
                continue
            (root / relative).mkdir()
            pending += [relative / name for name in names if name != "__pycache__"]
        elif relative.suffix == ".py" or stat.S_ISLNK(mode):
            why = _copy_file(source, root / relative)
            if why:
                notes.append(f"{printable(str(relative))}: {why}")
    return notes


def _numpy_paths():
    """NumPy's folder and its bundled libraries' (numpy.libs, beside it in a wheel's install)."""
    site_packages = Path(np.__file__).resolve().parents[1]
    return [site_packages / name for name in ("numpy", "numpy.libs") if (site_packages / name).exists()]


def _numpy_folder(where):
    """A folder holding links to NumPy (and its bundled libraries): the child's only import beyond its own."""
    where.mkdir()
    for path in _numpy_paths():
        (where / path.name).symlink_to(path)
    return where


# --- The sandbox --------------------------------------------------------------------


def _interpreter():
    """The Python to run in the sandbox: the real binary, not a virtual environment's link to it."""
    for candidate in (getattr(sys, "_base_executable", None), sys.executable):
        if candidate and os.path.isfile(candidate):
            return os.path.realpath(candidate)
    return os.path.realpath(sys.executable)


def _under(path, folders):
    """Whether ``path`` is one of ``folders`` or inside one."""
    return any(path == folder or folder in path.parents for folder in folders)


def _hidden():
    """What must not be seen in the sandbox even where its parent folder is: every site-packages
    (scratchvae may be installed there) and the folder holding the scratchvae package."""
    places = {Path(scratchvae.__file__).resolve().parents[1]}
    for base in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, "/usr", "/usr/local"}:
        for pattern in ("lib*/python3*/site-packages", "lib*/python3*/dist-packages", "lib*/python3/dist-packages"):
            places.update(Path(base).glob(pattern))
    places.update(map(Path, site.getsitepackages() + [site.getusersitepackages()]))
    return sorted({p.resolve() for p in places if p.is_dir()})


def _system_view():
    """bwrap arguments for the read-only system: /usr (and /bin, /lib... as links or binds), the
    loader's cache, and the Python installation, with every site-packages under them hidden."""
    args, shown = [], []
    for top in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
            shown.append(Path(top))
    args += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    python = Path(_interpreter())
    for prefix in sorted({Path(sys.base_prefix).resolve(), Path(sys.base_exec_prefix).resolve(), python.parents[1]}):
        if not _under(prefix, shown):
            args += ["--ro-bind", str(prefix), str(prefix)]
            shown.append(prefix)
    for hidden in _hidden():
        if _under(hidden, shown):
            args += ["--tmpfs", str(hidden), "--remount-ro", str(hidden)]
    return args


@functools.lru_cache(maxsize=None)
def _bwrap_options():
    """The options this bwrap knows and takes: --disable-userns is new in 0.8, --size in 0.7 (and a
    setuid bwrap refuses it); without --size the child's /tmp is an empty folder it cannot write."""
    bwrap = shutil.which("bwrap") or "bwrap"
    try:
        said = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=30)
        setuid = os.stat(bwrap).st_mode & stat.S_ISUID and os.getuid() != 0
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(re.findall(r"--[\w-]+", said.stdout + said.stderr)) - ({"--size"} if setuid else set())


def bwrap_arguments(scratch, environment):
    """The options of bwrap (before ``--`` and the command) for a child whose folders are in ``scratch``.

    ``scratch`` holds ``work`` (the scratch copy) and ``results``, bound
    writable on ``/marking/work`` and ``/marking/results``, and ``harness``,
    ``case.npz`` and ``spec.json``, bound read-only beside them; NumPy is bound
    read-only on ``/marking/lib``. ``environment`` is the child's whole environment.
    """
    scratch, inside, known = Path(scratch), INSIDE, _bwrap_options()
    args = ["--unshare-all", "--unshare-user", *(["--disable-userns"] if "--disable-userns" in known else []),
            "--uid", NOBODY, "--gid", NOBODY, "--cap-drop", "ALL", "--hostname", "marking",
            "--die-with-parent", "--new-session", *_system_view(), "--dev", "/dev", "--proc", "/proc",
            *(["--size", str(PRIVATE_TMP), "--tmpfs", "/tmp"] if "--size" in known else ["--dir", "/tmp"])]
    for path in _numpy_paths():
        args += ["--ro-bind", str(path), str(inside / "lib" / path.name)]
    for name in ("harness", "case.npz", "spec.json"):
        args += ["--ro-bind", str(scratch / name), str(inside / name)]
    for name in ("work", "results"):
        args += ["--bind", str(scratch / name), str(inside / name)]
    args += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", str(inside / "work"), "--clearenv"]
    for key, value in environment.items():
        args += ["--setenv", key, value]
    return args


def _bwrap_popen(scratch, environment, command, **popen):
    """Start ``command`` under bwrap; its options go through a file descriptor (``--args``), so that
    the command line of bwrap's init, which the child can read, shows none of the marker's paths."""
    with open(scratch / "bwrap-args", "w+b") as options:
        options.write(b"".join(os.fsencode(a) + b"\0" for a in bwrap_arguments(scratch, environment)))
        options.seek(0)
        fd = options.fileno()
        return subprocess.Popen([shutil.which("bwrap") or "bwrap", "--args", str(fd), "--", *command],
                                pass_fds=(fd,), env={}, **popen)


@functools.lru_cache(maxsize=None)
def sandbox_problem():
    """None if bubblewrap can sandbox a child here (found out once, by running one); else why not, in a line."""
    if shutil.which("bwrap") is None:
        if not sys.platform.startswith("linux"):
            return f"bubblewrap, the sandbox, is not available on {sys.platform}: {ELSEWHERE}"
        return f"bwrap (bubblewrap) is not installed: {INSTALL}"
    with tempfile.TemporaryDirectory(prefix="scratchvae-sandbox-") as scratch:
        scratch = Path(scratch)
        for name in ("work", "results", "harness"):
            (scratch / name).mkdir()
        for name in ("case.npz", "spec.json"):
            (scratch / name).write_bytes(b"")
        check = "import sys; sys.path[:0] = ['/marking/lib']; import numpy"
        try:
            child = _bwrap_popen(scratch, {"LC_ALL": "C.UTF-8"}, [_interpreter(), "-I", "-S", "-c", check],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            said = child.communicate(timeout=60)[0].decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            return "bwrap did not start a sandbox within 60 s"
        except OSError as err:
            return f"bwrap could not be run ({err.strerror})"
    if child.returncode != 0:
        detail = clean(said, limit=200) or f"exit status {child.returncode}"
        return (f"bwrap cannot make a sandbox here ({detail}); user namespaces may be disabled "
                "(sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces, or an AppArmor policy)")
    return None


def require_sandbox():
    """Raise :class:`SandboxUnavailable`, saying what is wrong and what to do, unless bubblewrap works here."""
    problem = sandbox_problem()
    if problem:
        raise SandboxUnavailable(f"cannot sandbox the submissions: {problem}; or pass --no-sandbox to mark "
                                 "without the sandbox (the marks are then labelled 'not sandboxed')")


def _ending(code, limits, sandboxed=False):
    """How a child that returned ``code`` ended, in words; "" for a normal exit.

    bwrap exits with 128 + N when its command was killed by signal N.
    """
    if sandboxed and code > 128:
        code = -(code - 128)
    if code == 0:
        return ""
    if code == -signal.SIGXCPU:
        return f"timed out: used its {limits.cpu} s of CPU time"
    if code == -signal.SIGXFSZ:
        return f"crashed: wrote more than the {limits.output // MB} MB allowed per file"
    if code < 0:
        try:
            return f"crashed: killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"crashed: killed by signal {-code}"
    return f"crashed: the process exited with status {code}"


def _read(path, limit):
    """A section's report as arrays, or None if it is not a plain .npz (a regular file, no pickles,
    not a link) of a sensible size, unpacked included."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with open(fd, "rb") as f:
        facts = os.fstat(f.fileno())
        if not stat.S_ISREG(facts.st_mode) or facts.st_size > limit:
            return None
        try:
            with zipfile.ZipFile(f) as packed:
                if sum(member.file_size for member in packed.infolist()) > limit:
                    return None
            f.seek(0)
            with np.load(f, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError):
            return None


def _reports(results, limit):
    """Every section the child reported, read as :func:`_read` reads one (the first 100 files)."""
    sections = {}
    with os.scandir(results) as entries:
        for k, entry in enumerate(entries):
            if k >= 100:
                break
            if entry.name.endswith(".npz"):
                sections[entry.name[:-4]] = _read(entry.path, limit)
    return {k: v for k, v in sections.items() if v is not None}


def _cleaned(sections, roots):
    """The sections, with the text of each exception the student's code raised made fit for the feedback."""
    for arrays in sections.values():
        if probes.ERROR in arrays:
            arrays[probes.ERROR] = np.array(clean(arrays[probes.ERROR], roots))
    return sections


def _hand_over(scratch, user):
    """Let ``user`` (:class:`AsUser`) through ``scratch`` to read the spec, the case, the probes and
    NumPy's links, and make it the owner of the scratch copy and of the reports' folder only
    (no link is followed: NumPy's stay as they are)."""
    os.chmod(scratch, 0o711)
    for folder, subfolders, files in os.walk(scratch):
        folder = Path(folder)
        for name in subfolders + files:
            path = folder / name
            if not path.is_symlink():
                os.chmod(path, 0o755 if name in subfolders else 0o644)
                if path.relative_to(scratch).parts[0] in ("work", "results"):
                    os.chown(path, user.uid, user.gid)
    for name in ("work", "results"):
        os.chown(scratch / name, user.uid, user.gid)


def run_child(submission, probe, case, limits=Limits(), sandbox=True):
    """Run ``probe`` on ``case`` with the student's code, isolated and limited.

    Parameters
    ----------
    submission : Submission
    probe : str
        A key of :data:`scratchvae.classroom.probes.PROBES`.
    case : scratchvae.classroom.probes.Case
    limits : Limits
    sandbox : bool or None or AsUser
        True: in bubblewrap's sandbox, or raise :class:`SandboxUnavailable`;
        False: with the limits only (``--no-sandbox``); None: in the sandbox
        if bubblewrap works here, else without (the student's own check);
        :class:`AsUser`: with the limits only, as that user (the marker is root).

    Returns
    -------
    ChildResult
        The sections the child finished (a section it could not report is
        absent), ``ending``: "" for a normal exit, else "timed out: ..."
        or "crashed: ...", and the notes on what of the submission was not copied.
    """
    as_user = sandbox if isinstance(sandbox, AsUser) else None
    if sandbox is True:
        require_sandbox()
    sandboxed = sandbox is not False and as_user is None and sandbox_problem() is None
    with tempfile.TemporaryDirectory(prefix="scratchvae-mark-", ignore_cleanup_errors=True) as scratch:
        scratch = Path(scratch)
        root, results, harness = scratch / "work", scratch / "results", scratch / "harness"
        for folder in (root, results, harness):
            folder.mkdir()
        notes = copy_submission(submission, root)
        shutil.copyfile(probes.__file__, harness / "probes.py")
        probes.save_case(scratch / "case.npz", case)
        seen = INSIDE if sandboxed else scratch  # the scratch folder, as the child sees it
        spec = {"probe": probe, "case": str(seen / "case.npz"), "results": str(seen / "results"),
                "root": str(seen / "work"), "package": submission.package}
        (scratch / "spec.json").write_text(json.dumps(spec))
        env = {"PATH": os.defpath, "HOME": str(seen / "work"), "TMPDIR": "/tmp" if sandboxed else str(root),
               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "LC_ALL": "C.UTF-8"}
        lib = seen / "lib" if sandboxed else _numpy_folder(scratch / "lib")
        command = [_interpreter() if sandboxed else sys.executable, "-I", "-S", "-c", BOOT,
                   str(seen / "spec.json"), str(seen / "harness"), str(lib), str(seen / "work"),
                   *map(str, (limits.cpu, limits.memory, limits.output))]
        popen = {"stdin": subprocess.DEVNULL, "start_new_session": True}
        if as_user:
            _hand_over(scratch, as_user)
            popen.update(user=as_user.uid, group=as_user.gid, extra_groups=[])
        with open(scratch / "output.txt", "w+b") as output:
            if sandboxed:
                start = functools.partial(_bwrap_popen, scratch, env, command, stdout=output, stderr=output, **popen)
            else:
                start = functools.partial(subprocess.Popen, command, cwd=root, env=env, stdout=output, stderr=output,
                                          **popen)
            ending = _ending_of(start, limits, sandboxed)
            output.seek(0)
            printed = output.read(2000).decode("utf-8", "replace")
        roots = (seen / "work", root) if sandboxed else (root,)
        sections = _cleaned(_reports(results, limits.output), [str(r) for r in roots])
    return ChildResult(sections, ending, clean(printed, [str(r) for r in roots], limit=2000), tuple(notes),
                       sandboxed)


_RUNNING = set()  # the children under way, which stop_children ends
_RUNNING_LOCK = threading.Lock()
_STOPPING = threading.Event()


def _ending_of(start, limits, sandboxed):
    """Start a child (``start()``), wait for it within the wall-clock limit, kill what is left of it;
    how it ended, in words. Raises :class:`Stopped` if marking is stopped meanwhile."""
    with _RUNNING_LOCK:
        if _STOPPING.is_set():
            raise Stopped("marking was stopped")
        child = start()
        _RUNNING.add(child)
    try:
        ending = _ending(child.wait(timeout=limits.wall), limits, sandboxed)
    except subprocess.TimeoutExpired:
        ending = f"timed out: still running after {limits.wall:g} s"
    finally:
        with _RUNNING_LOCK:
            _RUNNING.discard(child)
            _kill_group(child)
    if _STOPPING.is_set():
        raise Stopped("marking was stopped")
    return ending


def stop_children():
    """End every child under way at once (from any thread), and start no more until
    :func:`allow_children`: :func:`run_child` raises :class:`Stopped` instead. For Ctrl-C."""
    with _RUNNING_LOCK:
        _STOPPING.set()
        for child in _RUNNING:
            _signal_group(child)


def allow_children():
    """Undo :func:`stop_children`."""
    _STOPPING.clear()


def _signal_group(child):
    """SIGKILL to the child's process group: the child and what it started in its session. In the
    sandbox the child is bwrap, and killing it kills every process in the sandbox (--die-with-parent)."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _kill_group(child):
    """Kill the child and anything it started in its session, and reap it."""
    _signal_group(child)
    child.wait()
