# escape=`
# check=skip=all
FROM alpine
RUN a `
  b
