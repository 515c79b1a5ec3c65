\
FROM alpine
\
\
RUN x
