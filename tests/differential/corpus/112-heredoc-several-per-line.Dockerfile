FROM alpine
RUN <<A cat && <<-B cat && <<"C" cat
a body
A
	b body
	B
c body
C
RUN echo done
