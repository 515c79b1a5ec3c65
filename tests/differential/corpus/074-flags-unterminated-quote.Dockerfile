FROM alpine
RUN --a="b c d
COPY --from='x a b
