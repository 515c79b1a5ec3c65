FROM alpine
SHELL [null]
