FROM alpine
run <<eof
x
eof
RUN <<123
y
123
RUN 1<<2
z
2
