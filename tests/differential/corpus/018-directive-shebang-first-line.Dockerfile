#!/usr/bin/env buildctl-daemonless.sh
# escape=`
FROM alpine
RUN a `
RUN b \
  c
