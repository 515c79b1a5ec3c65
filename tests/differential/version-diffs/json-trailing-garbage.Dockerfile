FROM alpine
CMD ["a"] b
RUN ["x"]]
ENTRYPOINT [] ["y"]
COPY ["s"] d
