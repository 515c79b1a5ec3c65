FROM --platform=linux/amd64 alpine AS a
COPY --from=a --chown=1000:1000 --chmod=755 src /dst
ADD --checksum=sha256:abc https://example.com/x /x
RUN --mount=type=cache,target=/root/.cache --network=none pip install x
