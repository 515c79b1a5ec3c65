FROM alpine
RUN <<EOF cat && <<EOF cat
one
EOF
two
EOF
