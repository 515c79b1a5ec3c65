FROM alpine
ENV A="b\\\
ENV C=d\\\
LABEL x='y\\\
