FROM alpine
COPY \
  --from=build \
  --chown=1:1 \
  /src /dst
