FROM alpine
RUN echoab
ENV AB
EXPOSE 80443
