FROM alpine
COPY --link a b
COPY --link --parents a/ b/
ADD --keep-git-dir https://github.com/x/y.git /y
RUN --a --b --c echo
