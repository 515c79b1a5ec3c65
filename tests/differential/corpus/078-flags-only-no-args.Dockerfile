FROM alpine
RUN --network=none
COPY --from=a --chown=b
ONBUILD --x
