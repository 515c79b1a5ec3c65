FROM alpine
COPY --chown= x a b
RUN --a=Å echo
