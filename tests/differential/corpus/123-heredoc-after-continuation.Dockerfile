FROM alpine
RUN cat \
  <<EOF \
  | sh
echo hi
EOF
