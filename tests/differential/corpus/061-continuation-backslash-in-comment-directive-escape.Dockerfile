# escape=`
FROM alpine
RUN echo C:\ `
  # comment `
  D:\
