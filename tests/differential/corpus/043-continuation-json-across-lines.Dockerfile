FROM alpine
CMD ["a", \
     "b", \
     "c"]
