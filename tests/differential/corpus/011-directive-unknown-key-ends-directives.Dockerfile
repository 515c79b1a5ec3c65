# foo=bar
# escape=`
FROM alpine
RUN echo x `
RUN echo y \
  z
