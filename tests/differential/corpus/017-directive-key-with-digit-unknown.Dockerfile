# escape2=`
# escape=`
FROM alpine
RUN a `
RUN b \
  c
