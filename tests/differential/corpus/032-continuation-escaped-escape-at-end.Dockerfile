FROM alpine
RUN echo foo\\
RUN echo bar\\\
RUN echo baz \\ 
RUN echo qux
