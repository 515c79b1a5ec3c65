FROM alpine
RUN echo a \
  b # not a comment \
  c
