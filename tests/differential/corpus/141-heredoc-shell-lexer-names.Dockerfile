FROM alpine
RUN cat <<EOF;
a
EOF;
RUN echo $(cat <<EOF)
b
EOF)
RUN <<E$Y
c
E$Y
RUN <<"$X"
e
$X
RUN <<~EOF
f
~EOF
RUN <<'EOF'""
g
EOF
