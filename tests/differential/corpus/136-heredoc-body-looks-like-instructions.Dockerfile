FROM alpine
RUN <<EOF
FROM ubuntu
RUN echo nested
# escape=`
EOF
CMD x
