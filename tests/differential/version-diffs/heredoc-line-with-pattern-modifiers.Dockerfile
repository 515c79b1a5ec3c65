FROM alpine
RUN <<EOF ${Y#x} ${Y%x} ${Y/a/b}
a
EOF
