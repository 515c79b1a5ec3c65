FROM alpine
CMD ['echo', 'a']
RUN ['x']
COPY ['a', 'b']
