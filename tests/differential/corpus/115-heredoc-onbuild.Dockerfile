FROM alpine
ONBUILD RUN <<EOF
echo triggered
EOF
ONBUILD COPY <<X /x
x
X
