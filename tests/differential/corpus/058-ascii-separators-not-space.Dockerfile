FROM alpine
ENV A=bC=d
RUN echox
ARG ab
