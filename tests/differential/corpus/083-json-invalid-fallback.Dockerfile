FROM alpine
CMD ["a", ]
CMD ["unterminated"
CMD [
CMD ["a" "b"]
CMD ["a",,"b"]
CMD ["\x41"]
RUN [a, b]
COPY [ "a" b ]
VOLUME ["/a" /b]
