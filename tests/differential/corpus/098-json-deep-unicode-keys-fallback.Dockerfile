FROM alpine
CMD {"a": 1}
RUN "just a string"
ENTRYPOINT 1
