FROM busybox

ENV key value
ENV key2="value with \" escaped quote"
ENV key3 value with spaces
ENV key4="double" key5='single' key6=no\ quotes
RUN echo hello world
RUN echo "hello \
  world"
RUN echo hello\world
CMD ['not', 'json']
VOLUME ["/vol1", \
        "/vol2"]
COPY foo\
bar /baz
