FROM alpine
RUN <<$X
hi
$X
RUN <<${Y}
ho
${Y}
