"""History entries: created_by exactly as BuildKit's commitToHistory calls write them."""

from __future__ import annotations

import pytest
from planfixtures import BASE_HISTORY, target

from builder.plan.history import HISTORY_COMMENT, go_duration, run_command_string

DOCKERFILE = """\
FROM alpine
ARG A=1 B
ENV E=x F="two words"
LABEL l=v "k 2"=w
EXPOSE 8080 53/udp
VOLUME /data /logs
USER app:app
WORKDIR /srv
WORKDIR /
STOPSIGNAL SIGTERM
SHELL ["/bin/bash", "-c"]
HEALTHCHECK --interval=1m30s --timeout=500ms --retries=2 CMD curl x
HEALTHCHECK NONE
MAINTAINER someone
ONBUILD RUN never
CMD ["sh", "-c", "echo \\"hi\\""]
ENTRYPOINT run me
RUN echo $A
RUN ["ls", "-l"]
COPY --chown=1:2 --chmod=644 a b /dst/
COPY --link --from=alpine /etc/passwd /p
COPY --parents src/./x /y/
ADD --checksum=SHA https://example.com/f.tgz /f
COPY <<EOF /inline
data
EOF
""".replace("SHA", "sha256:" + "a" * 64)

EXPECTED = [
    ("ARG A=1 B", True),
    ("ENV E=x F=two words", True),
    ("LABEL l=v k 2=w", True),
    ("EXPOSE [53/udp 8080/tcp]", True),  # ports sorted as written, as BuildKit's parser does
    ("VOLUME [/data /logs]", True),
    ("USER app:app", True),
    ("WORKDIR /srv", False),
    ("WORKDIR /", True),
    ("STOPSIGNAL SIGTERM", True),
    ("SHELL [/bin/bash -c]", True),
    (
        "HEALTHCHECK {Test:[CMD-SHELL curl x] Interval:1m30s Timeout:500ms StartPeriod:0s "
        "StartInterval:0s Retries:2}",
        True,
    ),
    (
        "HEALTHCHECK {Test:[NONE] Interval:0s Timeout:0s StartPeriod:0s StartInterval:0s "
        "Retries:0}",
        True,
    ),
    ("MAINTAINER someone", True),
    ('CMD ["sh" "-c" "echo \\"hi\\""]', True),
    ('ENTRYPOINT ["/bin/bash" "-c" "run me"]', True),
    ("RUN |2 A=1 B= /bin/bash -c echo $A # buildkit", False),
    ("RUN |2 A=1 B= ls -l # buildkit", False),
    ("COPY --chown=1:2 --chmod=644 a b /dst/ # buildkit", False),
    ("COPY /etc/passwd /p # buildkit", False),
    ("COPY --parents src/./x /y/ # buildkit", False),
    ("ADD https://example.com/f.tgz /f # buildkit", False),
    ("COPY <<EOF /inline # buildkit", False),
]


def test_every_instruction_writes_buildkits_history() -> None:
    stage = target(DOCKERFILE)
    history = stage.config.history
    assert history[: len(BASE_HISTORY)] == BASE_HISTORY
    new = history[len(BASE_HISTORY) :]
    assert [(h.created_by, h.empty_layer) for h in new] == EXPECTED
    assert {h.comment for h in new} == {HISTORY_COMMENT}
    assert all(h.created is None for h in new)
    # every step but ONBUILD carries its own entry, in order
    step_entries = [s.history for s in stage.steps if s.history is not None]
    assert tuple(step_entries) == new


def test_layer_steps_have_layer_history_and_config_steps_do_not() -> None:
    stage = target(DOCKERFILE)
    for step in stage.steps:
        if step.history is None:
            continue
        layered = type(step).__name__ in ("RunStep", "CopyStep", "WorkdirStep")
        assert step.history.empty_layer is not layered, step


def test_expose_history_matches_buildkits_own_test() -> None:
    stage = target("FROM alpine\nEXPOSE 2375 5000 1234/udp\n")
    assert stage.steps[0].history is not None
    assert stage.steps[0].history.created_by == "EXPOSE [1234/udp 2375/tcp 5000/tcp]"


def test_run_history_lists_args_in_scope_with_current_values() -> None:
    stage = target("FROM alpine\nARG X=1 Y=2\nARG X=3\nENV Y=env\nRUN true\n")
    assert stage.steps[-1].history is not None
    assert stage.steps[-1].history.created_by == "RUN |2 X=3 Y=env /bin/sh -c true # buildkit"


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1_500, "1.5µs"),
        (2_000_000, "2ms"),
        (1_500_000_000, "1.5s"),
        (30_000_000_000, "30s"),
        (90_000_000_000, "1m30s"),
        (3_600_000_000_000, "1h0m0s"),
        (3_600_500_000_000, "1h0m0.5s"),
        (-5_000_000_000, "-5s"),
        (100_000_000, "100ms"),
        (1_234_567, "1.234567ms"),
    ],
)
def test_go_duration(ns: int, text: str) -> None:
    assert go_duration(ns) == text


def test_run_command_string_without_args() -> None:
    assert run_command_string(("/bin/sh", "-c", "x"), (), {}) == "/bin/sh -c x"
    assert run_command_string(("a",), (("K", None),), {}) == "|1 K= a"
