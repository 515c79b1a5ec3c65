FROM alpine
CMD [1e999]
RUN [-1e400, "x"]
