FROM alpine
ONBUILD CMD ["echo", "on"]
ONBUILD RUN ["a", "b"]
ONBUILD ENTRYPOINT ['not', 'json']
