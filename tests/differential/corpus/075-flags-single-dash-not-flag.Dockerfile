FROM alpine
RUN -x echo
RUN - echo
COPY -a b c
RUN ---triple x
