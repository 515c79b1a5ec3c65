# syntax = docker/dockerfile:1 // some opts
FROM alpine
RUN true
