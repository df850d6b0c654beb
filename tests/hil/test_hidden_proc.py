"""`pivox status` for a member of the `pivox` group, under the unit's `ProtectProc=invisible`.

The shipped unit hides other users' processes from the service, so the daemon cannot learn a
peer's groups from /proc. Emulated as root: a private pid and mount namespace with /proc
mounted `hidepid=invisible`, the real `pivox run` as user `pivox`, and `pivox status` as a user
whose *supplementary* group is `pivox` (as `usermod -aG pivox $USER` leaves an admin), and as a
user outside the group.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

MEMBER, STRANGER = "pivoxt-member", "pivoxt-stranger"
DEMO_MIC = Path(str(resources.files("pivox") / "data" / "demo_mic.wav"))

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: namespaces, mounts, other users"),
    pytest.mark.skipif(any(shutil.which(t) is None for t in
                           ("unshare", "setpriv", "useradd", "usermod", "userdel")),
                       reason="needs unshare, setpriv and the shadow user tools"),
]


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture
def users() -> Iterator[None]:
    """`pivox` (the service), a member of its group, a stranger; removes what it added."""
    added: list[str] = []
    if not _has_user("pivox"):
        _run("useradd", "--system", "--no-create-home", "--user-group", "pivox")
        added.append("pivox")
    for name in (MEMBER, STRANGER):
        if not _has_user(name):
            _run("useradd", "--no-create-home", "--user-group", name)
            added.append(name)
    _run("usermod", "-aG", "pivox", MEMBER)
    try:
        yield
    finally:
        for name in reversed(added):
            subprocess.run(["userdel", name], capture_output=True)


def _interpreter_mounts(where: Path) -> str:
    """Shell lines that let other users reach this interpreter inside the namespace.

    A Python under a private home (/root is 0700) cannot be run by `pivox`; the private mount
    namespace re-exposes only the interpreter's tree, leaving the real home untouched.
    """
    prefix = Path(os.path.realpath(sys.base_prefix))
    for parent in [*reversed(prefix.parents), prefix]:
        if not parent.stat().st_mode & stat.S_IXOTH:
            break
    else:
        return ""
    child = prefix.relative_to(parent).parts[0]
    stash = where / "stash"
    return (f"mkdir {stash}\nmount --bind {parent / child} {stash}\n"
            f"mount -t tmpfs -o mode=0755 tmpfs {parent}\nmkdir {parent / child}\n"
            f"mount --move {stash} {parent / child}\n")


def test_group_member_gets_status_under_hidden_proc(users: None) -> None:
    where = Path(tempfile.mkdtemp(prefix="pivox-hidden-proc-", dir="/tmp"))
    try:
        os.chmod(where, 0o755)
        state = where / "state"  # the service's own directory; the socket is made in it
        state.mkdir()
        shutil.chown(state, "pivox", "pivox")
        sock = state / "control.sock"
        (where / "pivox.toml").write_text(f"""
[audio.capture]
device = "wav:{DEMO_MIC}"
[audio.playback]
device = "wav:{state / 'speaker.wav'}"
rate = 48000
[link]
url = "ws://127.0.0.1:9/offline"
[control]
socket = "{sock}"
""")
        py = sys.executable
        status = f"{py} -m pivox status --socket {sock}"
        script = f"""
mount -t proc -o hidepid=invisible proc /proc
{_interpreter_mounts(where)}
setpriv --reuid pivox --regid pivox --init-groups env HOME={state} \\
    {py} -m pivox run --config {where / 'pivox.toml'} > {where / 'daemon.log'} 2>&1 &
daemon=$!
i=0
while [ ! -S {sock} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
# The service cannot see its peers' processes (what ProtectProc=invisible does).
setpriv --reuid pivox --regid pivox --init-groups \\
    sh -c 'if [ -e /proc/1/status ]; then echo seen; else echo hidden; fi' > {where / 'pid1'}
setpriv --reuid {MEMBER} --regid {MEMBER} --init-groups id -G > {where / 'member.groups'}
setpriv --reuid {MEMBER} --regid {MEMBER} --init-groups {status} --json \\
    > {where / 'member.out'} 2> {where / 'member.err'}
echo $? > {where / 'member.rc'}
setpriv --reuid {STRANGER} --regid {STRANGER} --init-groups {status} \\
    > {where / 'stranger.out'} 2> {where / 'stranger.err'}
echo $? > {where / 'stranger.rc'}
kill -TERM $daemon
wait $daemon
"""
        done = subprocess.run(["unshare", "--pid", "--fork", "--mount", "sh", "-c", script],
                              capture_output=True, text=True, timeout=90)
        log = (where / "daemon.log").read_text(errors="replace")[-2000:]
        assert done.returncode == 0, f"{done.stderr}\n{log}"
        assert sock.exists() is False, "the daemon did not remove its socket on SIGTERM"

        pivox_gid = str(pwd.getpwnam("pivox").pw_gid)
        member_groups = (where / "member.groups").read_text().split()
        assert member_groups[0] != pivox_gid and pivox_gid in member_groups[1:]
        assert (where / "pid1").read_text().strip() == "hidden", "/proc was not hidden"

        out, err = (where / "member.out").read_text(), (where / "member.err").read_text()
        assert (where / "member.rc").read_text().strip() == "0", f"{out}{err}\n{log}"
        reply = json.loads(out)
        assert "error" not in reply, reply
        assert {"state", "link", "audio", "wake"} <= reply.keys()
        assert reply["link"]["connected"] is False

        err = (where / "stranger.err").read_text()
        assert (where / "stranger.rc").read_text().strip() != "0"
        assert (where / "stranger.out").read_text() == ""
        assert len(err.strip().splitlines()) == 1 and err.startswith("pivox: "), err
        assert "permission" in err.lower(), err
    finally:
        shutil.rmtree(where, ignore_errors=True)
