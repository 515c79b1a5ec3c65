FROM alpine
ENV a\ b c
LABEL x\ y z
