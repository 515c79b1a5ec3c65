FROM alpine
COPY --chown=a\ b src dst
COPY --from=x\"y a b
RUN --a="b\"c" --d='e\'f echo
RUN --x=end\
