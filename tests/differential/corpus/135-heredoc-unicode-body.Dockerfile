FROM alpine
RUN <<ÉOF
日本語 😀
ÉOF
