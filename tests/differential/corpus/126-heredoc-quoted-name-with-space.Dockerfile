FROM alpine
RUN <<"E F"
x
E F
RUN <<'G  H' cat
y
G  H
