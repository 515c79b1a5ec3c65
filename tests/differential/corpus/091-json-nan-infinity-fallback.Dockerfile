FROM alpine
CMD [NaN]
RUN [Infinity]
ENTRYPOINT [-Infinity]
