FROM alpine
COPY --chown="user name" a b
COPY --chown='x y' --from="st""age" a b
RUN --mount="type=secret,id=x" cat /run/secrets/x
RUN --a="" --b='' echo
