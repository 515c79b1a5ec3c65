# ESCAPE=`
FROM alpine
RUN echo `
  upper
