FROM alpine
RUN --network=none ["echo", "hi"]
COPY --chown=1 ["a b", "c"]
CMD --x   ["x"]
