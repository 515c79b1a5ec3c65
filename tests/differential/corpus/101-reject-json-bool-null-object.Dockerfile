FROM alpine
ENTRYPOINT [true, null, {}]
