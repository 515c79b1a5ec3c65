# syntax=docker/dockerfile:1.4
# escape=`
FROM alpine
RUN echo one `
  two
