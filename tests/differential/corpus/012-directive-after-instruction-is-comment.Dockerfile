FROM alpine
# escape=`
RUN echo x `
RUN echo y \
  z
