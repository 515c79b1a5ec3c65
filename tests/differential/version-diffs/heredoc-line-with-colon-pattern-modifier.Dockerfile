FROM alpine
RUN <<EOF ${Y:#x}
a
EOF
