# top comment
FROM alpine
    # indented comment
#no-space comment
RUN echo a
#
# RUN echo not-run
CMD ["sh"]
