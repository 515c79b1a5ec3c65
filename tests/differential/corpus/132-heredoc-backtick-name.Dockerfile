# escape=`
FROM alpine
RUN <<E`OF
a
E`OF
RUN <<E\OF
b
EOF
