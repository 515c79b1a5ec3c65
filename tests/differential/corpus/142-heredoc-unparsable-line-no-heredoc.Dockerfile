FROM alpine
RUN echo "oops <<EOF
x
RUN echo 'also <<EOF
EOF
