FROM alpine
RUN echo done