FROM alpine
ENV a
