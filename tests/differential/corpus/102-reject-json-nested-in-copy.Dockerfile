FROM alpine
COPY [["a"], "b"]
