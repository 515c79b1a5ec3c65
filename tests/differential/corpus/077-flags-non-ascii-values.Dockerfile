FROM alpine
COPY --chown=élève a b
RUN --mount=type=bind,target=/日本 echo
COPY --from=Ångström x y
