FROM alpine
RUN a
RUN b \
  c
RUN d
