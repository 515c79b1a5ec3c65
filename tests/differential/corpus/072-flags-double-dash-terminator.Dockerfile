FROM alpine
RUN -- --not-a-flag
RUN --a -- --b c
COPY -- a b
RUN --
RUN --x --
