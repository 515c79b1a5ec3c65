"""The groups a RUN process gets after ``USER``, compared with BuildKit's.

BuildKit's executor (``executor/oci/user.go``) resolves the user with moby/sys/user's
``GetExecUser``: supplementary gids are the /etc/group entries that list the user *name* as a
member, only when no group was given; ``uid:gid`` with both numeric takes a fast path with no
lookup. ``WithUIDGID`` then runs ``ensureAdditionalGids`` (BuildKit since v0.11.4, the
containerd CVE-2023-25173 fix): the primary gid is put first in ``additionalGids`` unless it is
already there. So busybox ``id`` in a BuildKit RUN always prints ``groups=`` starting with the
primary group, followed by the groups listing the user as a member.
"""

from __future__ import annotations

import pytest
from enginekit import Builder

pytestmark = pytest.mark.integration

SETUP = (
    "FROM busybox\n"
    "RUN echo 'app:x:4242:4242:app:/home/app:/bin/sh' >> /etc/passwd"
    " && echo 'solo:x:4545:4545:solo:/:/bin/sh' >> /etc/passwd"
    " && echo 'app:x:4242:' >> /etc/group"
    " && echo 'extra:x:4343:other,app' >> /etc/group"
    " && echo 'other:x:4444:' >> /etc/group"
    " && echo 'third:x:4646:app' >> /etc/group\n"
)

# what BuildKit's rules give for each USER value (busybox ``id`` output)
EXPECTED = {
    # a name: primary gid from passwd, then every group listing "app" as a member
    "app": "uid=4242(app) gid=4242(app) groups=4242(app),4343(extra),4646(third)",
    # name:group: the group replaces the primary gid; no member groups are added
    "app:other": "uid=4242(app) gid=4444(other) groups=4444(other)",
    # a number matching a passwd entry: looked up like the name it belongs to
    "4242": "uid=4242(app) gid=4242(app) groups=4242(app),4343(extra),4646(third)",
    # numeric uid:gid: BuildKit's fast path, no file read, no member groups
    "4242:4444": "uid=4242(app) gid=4444(other) groups=4444(other)",
    # a user that no group lists, whose primary gid has no /etc/group entry
    "solo": "uid=4545(solo) gid=4545 groups=4545",
    # a number with no passwd entry: gid 0
    "5000": "uid=5000 gid=0(root) groups=0(root)",
}


def test_run_groups_match_buildkit(pb: Builder) -> None:
    users = list(EXPECTED)
    steps = "".join(f"USER {user}\nRUN id > /tmp/id-{i}\n" for i, user in enumerate(users))
    built = pb.build(SETUP + steps)
    files = built.files
    got = {user: files[f"/tmp/id-{i}"].text.rstrip("\n") for i, user in enumerate(users)}
    assert got == EXPECTED
