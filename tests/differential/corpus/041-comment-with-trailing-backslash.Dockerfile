FROM alpine
# comment \
RUN echo a
  # indented comment \
RUN echo b
