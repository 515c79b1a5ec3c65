# escape=
# syntax=foo
FROM alpine
RUN echo \
  x
