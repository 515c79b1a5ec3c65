"""``--squash``: the target stage's layers above its base become one layer; the flattened
filesystem is the unsquashed build's, whiteouts of base files included."""

from __future__ import annotations

import pytest
from enginekit import Builder

pytestmark = pytest.mark.integration

DOCKERFILE = """\
FROM busybox:latest AS tools
RUN echo tool > /tool

FROM busybox:latest
COPY a.txt b.txt /data/
RUN rm /etc/group && rm -r /var/www && echo changed > /data/a.txt && mkdir -p /var/www/new
COPY --from=tools /tool /usr/local/bin/tool
ENV SQUASHED=yes
RUN rm /data/b.txt && ln -s /data/a.txt /data/link
"""


def test_squash_folds_the_new_layers_into_one(pb: Builder) -> None:
    files = {"a.txt": "a\n", "b.txt": "b\n"}
    plain = pb.build(DOCKERFILE, files)
    squashed = pb.build(DOCKERFILE, files, args=["--squash"])
    base = pb.busybox_history  # busybox:latest has one layer per history entry
    assert len(plain.image.layers) == base + 4
    assert len(squashed.image.layers) == base + 1
    digests = [layer.descriptor.digest for layer in squashed.image.layers]
    assert digests[:base] == [layer.descriptor.digest for layer in plain.image.layers[:base]]
    assert squashed.files == plain.files
    assert "/etc/group" not in squashed.files
    assert "/data/b.txt" not in squashed.files
    assert squashed.files["/var/www/new"].type == "dir"
    assert squashed.files["/data/a.txt"].text == "changed\n"
    assert squashed.config["Env"] == plain.config["Env"]

    # docker's --squash history: the Dockerfile's entries stay, marked empty, then one merge
    added = squashed.history[base:]
    assert [h.get("created_by") for h in added[:-1]] == [
        h.get("created_by") for h in plain.history[base:]
    ]
    assert all(h.get("empty_layer") for h in added[:-1])
    assert added[-1]["comment"].startswith(f"merge {plain.image_id} to sha256:")
    assert not added[-1].get("empty_layer", False)
    assert squashed.image_id != plain.image_id
