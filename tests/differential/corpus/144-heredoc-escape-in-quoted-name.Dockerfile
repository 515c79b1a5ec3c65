FROM alpine
RUN <<'E\\OF'
x
E\\OF
RUN <<"A\\"B" cat
y
