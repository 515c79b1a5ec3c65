FROM alpine
RUN <<E${Y:-z}
d
E${Y:-z}
