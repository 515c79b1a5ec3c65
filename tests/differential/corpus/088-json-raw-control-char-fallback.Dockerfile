FROM alpine
CMD ["a	b"]
RUN ["xy"]
